import assert from "node:assert/strict";
import { compareUtf8 } from "./utf8_order.ts";

Deno.test("compareUtf8 orders strings as their UTF-8 bytes", () => {
  const keys = ["z\uffff", "z😀", "zé", "z\ue000", "z", "za", "z\u0000", "😀", "\uffff", "a"];
  const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual([...keys].sort(compareUtf8), byBytes);
});

import assert from "node:assert/strict";
import { compareUtf8, utf8Prefix } from "./utf8_order.ts";

Deno.test("compareUtf8 orders strings as their UTF-8 bytes", () => {
  const keys = ["z\uffff", "z😀", "zé", "z\ue000", "z", "za", "z\u0000", "😀", "\uffff", "a"];
  const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual([...keys].sort(compareUtf8), byBytes);
});

Deno.test("utf8Prefix keeps whole characters within a number of bytes", () => {
  const utf8Bytes = (s: string) => new TextEncoder().encode(s).byteLength;
  for (const unit of ["a", "é", "€", "😀"]) {
    const text = ("x" + unit).repeat(800);
    for (const max of [1000, 1001, 1002, 1003, 1024]) {
      const cut = utf8Prefix(text, max);
      assert.ok(text.startsWith(cut) && utf8Bytes(cut) <= max);
      // One character more would not fit.
      const next = text.slice(cut.length).match(/^./u)![0];
      assert.ok(utf8Bytes(cut + next) > max, `${unit} at ${max}`);
    }
  }
  assert.equal(utf8Prefix("short", 1024), "short");
});

import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";

Deno.test("crc32c matches the standard check value and continues across calls", () => {
  const check = new TextEncoder().encode("123456789");
  assert.equal(crc32c(check), 0xe3069283);
  const data = new Uint8Array(1000).map((_, i) => (i * 31) % 256);
  assert.equal(crc32c(data.subarray(300), crc32c(data.subarray(0, 300))), crc32c(data));
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { hmacSha256Hex } from "./hash.ts";

Deno.test("hmacSha256Hex equals node:crypto's HMAC for short, block-sized and long keys", () => {
  for (const keySize of [0, 1, 32, 63, 64, 65, 200]) {
    const key = new Uint8Array(keySize).map((_, i) => (i * 7 + keySize) % 256);
    for (const data of ["", "AWS4-HMAC-SHA256\n20261125T000000Z\nscope\nhash", "é€😀".repeat(50)]) {
      const expected = createHmac("sha256", key).update(data).digest("hex");
      assert.equal(hmacSha256Hex(key, data), expected, `key of ${keySize} bytes`);
      assert.equal(hmacSha256Hex(key, data), expected, "again, with the pads cached");
    }
  }
});

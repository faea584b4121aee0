import assert from "node:assert/strict";
import { type CombinableCrc, combineCrcs, isCombinableCrc } from "./crc_combine.ts";
import { checksumHasher } from "./hash.ts";
import { seededRandom } from "./seeded_random.ts";

function crcOf(algorithm: CombinableCrc, data: Uint8Array): Uint8Array {
  const hasher = checksumHasher(algorithm);
  hasher.update(data);
  return hasher.digest();
}

Deno.test("combineCrcs equals the CRC of the pieces put end to end", () => {
  const random = seededRandom(7);
  const sizes = [[1], [0, 5], [3, 0, 1], [1000, 1, 65_539], [
    5 * 1024 * 1024,
    777,
    5 * 1024 * 1024,
  ]];
  for (const algorithm of ["CRC32", "CRC32C", "CRC64NVME"] as const) {
    for (const pieceSizes of sizes) {
      const pieces = pieceSizes.map((size) =>
        Uint8Array.from({ length: size }, () => Math.floor(random() * 256))
      );
      const whole = new Uint8Array(pieceSizes.reduce((a, b) => a + b, 0));
      let offset = 0;
      for (const piece of pieces) {
        whole.set(piece, offset);
        offset += piece.byteLength;
      }
      const combined = combineCrcs(
        algorithm,
        pieces.map((piece) => ({ crc: crcOf(algorithm, piece), size: piece.byteLength })),
      );
      assert.deepEqual(combined, crcOf(algorithm, whole), `${algorithm} of ${pieceSizes}`);
    }
    assert.deepEqual(combineCrcs(algorithm, []), crcOf(algorithm, new Uint8Array(0)));
  }
});

Deno.test("only CRCs combine", () => {
  assert.equal(isCombinableCrc("CRC32"), true);
  assert.equal(isCombinableCrc("CRC64NVME"), true);
  assert.equal(isCombinableCrc("SHA256"), false);
  assert.equal(isCombinableCrc("SHA1"), false);
});

import assert from "node:assert/strict";
import { toHex } from "./hash.ts";
import { XxHasher } from "./xxhash.ts";

/** Reference digests from xxHash 0.8.1's xxhsum (-H1, -H3, -H2), canonical (big-endian) form. */
const VECTORS: [string, number | string, string, string, string][] = [
  ["empty", "", "ef46db3751d8e999", "2d06800538d394c2", "99aa06d3014798d86001c324468d497f"],
  ["a", "a", "d24ec4f1a98c6e5b", "e6c632b61e964e1f", "a96faf705af16834e6c632b61e964e1f"],
  ["abc", "abc", "44bc2cf5ad770999", "78af5f94892f3950", "06b05ab6733a618578af5f94892f3950"],
  ["16 B", 16, "434850232b787be2", "b8c859b0f030b585", "ce0b9647ab24f88460d75c5e47d40a24"],
  ["17 B", 17, "1efa7025f1b97a7a", "714a04408e79b80f", "bfd327edcc2fbd12eeed7654312a26d7"],
  ["128 B", 128, "a0a0ae06f88ab606", "4634ae6a253a60e4", "a04233e3c9599748ef7e4d57ed67de26"],
  ["240 B", 240, "3e675f9e43d97699", "887af00281f75d38", "9a8457fec9cfea5e2288b3c22f48dea4"],
  ["241 B", 241, "c2d85dd2fcc8dc06", "82b1de299f6e411e", "07870750a974395682b1de299f6e411e"],
  ["1000 B", 1000, "021f7a7424085ea4", "d45f5a87c5c20462", "c9b8608879afb00fd45f5a87c5c20462"],
  ["1 KiB", 1024, "bcc14bbbbb35ede2", "f75e768c7cdd54b2", "f96a1bbdb2fef572f75e768c7cdd54b2"],
  ["100000 B", 100000, "d39ec2f9e6803bb3", "d449c3d3e190d6d6", "c0f903c0bf0d5d15d449c3d3e190d6d6"],
  [
    "1 MiB + 3",
    1048579,
    "d0b8ed81455a77fb",
    "8c966c041a5a2003",
    "a19c169d3200a6ce8c966c041a5a2003",
  ],
];

function input(spec: number | string): Uint8Array {
  if (typeof spec === "string") return new TextEncoder().encode(spec);
  return new Uint8Array(spec).map((_, i) => (i * 7 + 3) % 251);
}

/** The digest of `data` fed whole, and fed in uneven pieces (as reads of a body arrive). */
function digests(algorithm: "XXHASH64" | "XXHASH3" | "XXHASH128", data: Uint8Array): string[] {
  const whole = new XxHasher(algorithm);
  whole.update(data);
  const pieces = new XxHasher(algorithm);
  for (let at = 0, step = 1; at < data.byteLength; at += step, step = (step * 3 + 5) % 70_001 + 1) {
    pieces.update(data.subarray(at, at + step));
  }
  return [toHex(whole.digest()), toHex(pieces.digest())];
}

Deno.test("xxHash digests match xxHash's reference, fed whole or in pieces", () => {
  for (const [name, spec, xxh64, xxh3, xxh128] of VECTORS) {
    const data = input(spec);
    assert.deepEqual(digests("XXHASH64", data), [xxh64, xxh64], `XXH64 of ${name}`);
    assert.deepEqual(digests("XXHASH3", data), [xxh3, xxh3], `XXH3 of ${name}`);
    assert.deepEqual(digests("XXHASH128", data), [xxh128, xxh128], `XXH128 of ${name}`);
  }
});

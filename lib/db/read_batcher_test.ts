import assert from "node:assert/strict";
import { ReadBatcher } from "./read_batcher.ts";

/** A real Deno KV connection that records the key count of each read it serves. */
async function countingKv(): Promise<{ kv: Deno.Kv; reads: number[] }> {
  const kv = await Deno.openKv(":memory:");
  const reads: number[] = [];
  const get = kv.get.bind(kv);
  const getMany = kv.getMany.bind(kv);
  Object.assign(kv, {
    get: (key: Deno.KvKey) => {
      reads.push(1);
      return get(key);
    },
    getMany: (keys: Deno.KvKey[]) => {
      reads.push(keys.length);
      return getMany(keys);
    },
  });
  return { kv, reads };
}

Deno.test("ReadBatcher sends a lone read at once and batches reads that queue meanwhile", async () => {
  const { kv, reads } = await countingKv();
  try {
    const bytes = (i: number) => new Uint8Array([i, i + 1]);
    for (let i = 0; i < 25; i++) await kv.set(["k", i], bytes(i));
    const batcher = new ReadBatcher([kv]);

    assert.deepEqual(await batcher.get(["k", 3]), bytes(3));
    assert.deepEqual(reads, [1], "a lone read is a plain get");

    reads.length = 0;
    const keys = [...Array(25).keys(), 99];
    const got = await Promise.all(keys.map((i) => batcher.get(["k", i])));
    keys.forEach((k, i) => assert.deepEqual(got[i], k === 99 ? null : bytes(k), `key ${k}`));
    // The first read leaves alone; the 25 queued behind it leave in getMany batches of 10.
    assert.deepEqual(reads, [1, 10, 10, 5]);
  } finally {
    kv.close();
  }
});

Deno.test("ReadBatcher fails only the read the engine refuses, not the rest of its batch", async () => {
  const { kv, reads } = await countingKv();
  const batcher = new ReadBatcher([kv]);
  await kv.set(["k"], new Uint8Array([7]));
  const first = batcher.get(["k"]);
  // Queued behind the first read, so they leave as one getMany; the key over
  // Deno KV's 2 KiB limit fails it, and each is then read alone.
  const good = batcher.get(["k"]);
  const tooLong = batcher.get(["k", "x".repeat(3000)]);
  const absent = batcher.get(["none"]);
  assert.deepEqual(await first, new Uint8Array([7]));
  assert.deepEqual(await good, new Uint8Array([7]));
  await assert.rejects(tooLong);
  assert.equal(await absent, null);
  assert.deepEqual(reads, [1, 3, 1, 1, 1]);
  assert.deepEqual(await batcher.get(["k"]), new Uint8Array([7]));
  kv.close();
  await assert.rejects(batcher.get(["k"]), "a closed connection fails its reads");
});

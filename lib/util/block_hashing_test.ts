import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type BlockHashing, inlineHashing, WorkerHashing } from "./block_hashing.ts";

function bytes(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 31 + seed) % 251);
}

const hex = (algorithm: string, data: Uint8Array) =>
  createHash(algorithm).update(data).digest("hex");

async function checkHashing(hashing: BlockHashing) {
  const blocks = [bytes(1 << 20, 1), bytes(4096, 2), bytes(0, 3), bytes(777, 4)];
  const whole = new Uint8Array(blocks.reduce((n, b) => n + b.byteLength, 0));
  blocks.reduce((at, b) => (whole.set(b, at), at + b.byteLength), 0);

  // SHA-256 of each block at once, MD5 of all of them in order.
  const md5 = hashing.md5();
  const results = await Promise.all(blocks.map(async (block) => {
    const copy = block.slice();
    const md5Back = await md5.update(copy);
    assert.deepEqual(md5Back, block, "the MD5 session gives the bytes back unchanged");
    return await hashing.sha256(md5Back);
  }));
  results.forEach((r, i) => {
    assert.equal(r.hex, hex("sha256", blocks[i]));
    assert.deepEqual(r.data, blocks[i]);
  });
  assert.equal(Buffer.from(await md5.digest()).toString("hex"), hex("md5", whole));

  // A view on part of a buffer is hashed alone, and the rest of the buffer stays usable.
  const buffer = bytes(10_000, 5);
  const view = buffer.subarray(100, 5100);
  const r = await hashing.sha256(view);
  assert.equal(r.hex, hex("sha256", buffer.subarray(100, 5100)));
  assert.equal(buffer.byteLength, 10_000);
  assert.deepEqual(r.data, bytes(10_000, 5).subarray(100, 5100));

  // A session with no data is the MD5 of nothing; an abandoned one is forgotten.
  assert.equal(
    Buffer.from(await hashing.md5().digest()).toString("hex"),
    hex("md5", new Uint8Array()),
  );
  const abandoned = hashing.md5();
  await abandoned.update(bytes(10, 6));
  abandoned.abandon();
}

Deno.test("inline hashing: SHA-256 per block, MD5 in order", () => checkHashing(inlineHashing));

Deno.test("worker hashing gives the same digests and bytes as hashing inline", async () => {
  const hashing = new WorkerHashing(2);
  try {
    await checkHashing(hashing);
    // Many uploads at once, each session on its own worker in turn.
    const sessions = Array.from({ length: 5 }, (_, i) => ({ md5: hashing.md5(), seed: i }));
    await Promise.all(sessions.map(async ({ md5, seed }) => {
      for (let n = 0; n < 4; n++) await md5.update(bytes(65536, seed * 10 + n));
    }));
    for (const { md5, seed } of sessions) {
      const all = new Uint8Array(4 * 65536);
      for (let n = 0; n < 4; n++) all.set(bytes(65536, seed * 10 + n), n * 65536);
      assert.equal(Buffer.from(await md5.digest()).toString("hex"), hex("md5", all));
    }
  } finally {
    hashing.close();
  }
});

Deno.test("worker hashing fails pending hashes when it is closed", async () => {
  const hashing = new WorkerHashing(1);
  const pending = hashing.sha256(bytes(8 << 20, 7));
  hashing.close();
  await assert.rejects(pending, /Cannot hash a block: hashing stopped/);
});

Deno.test("worker hashing refuses at once, rather than waits, once closed", async () => {
  const hashing = new WorkerHashing(1);
  const md5 = hashing.md5();
  hashing.close();
  await assert.rejects(hashing.sha256(bytes(10, 8)), /hashing stopped/);
  await assert.rejects(md5.update(bytes(10, 9)), /hashing stopped/);
  await assert.rejects(md5.digest(), /hashing stopped/);
});

Deno.test("worker hashing copies a Buffer that shares its memory instead of moving that memory", async () => {
  const hashing = new WorkerHashing(1);
  try {
    const pool = Buffer.alloc(64, 3);
    const view = pool.subarray(8, 24);
    const r = await hashing.sha256(view);
    assert.equal(r.hex, hex("sha256", new Uint8Array(16).fill(3)));
    assert.equal(pool.byteLength, 64, "the shared memory stays with its owner");
    assert.equal(view.byteLength, 16);
  } finally {
    hashing.close();
  }
});

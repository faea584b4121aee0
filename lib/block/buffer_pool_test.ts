import assert from "node:assert/strict";
import { BlockBufferPool } from "./buffer_pool.ts";

Deno.test("BlockBufferPool hands back whole block buffers, once each, up to its size", () => {
  const pool = new BlockBufferPool(1024, 3 * 1024);
  const a = pool.take();
  assert.equal(a.byteLength, 1024);
  pool.give(a);
  pool.give(a);
  assert.equal(pool.kept, 1, "a buffer given twice is kept once (it would go to two uploads)");
  assert.equal(pool.take(), a);
  assert.equal(pool.kept, 0);

  pool.give(new Uint8Array(512));
  pool.give(new Uint8Array(2048).subarray(0, 1024));
  pool.give(new Uint8Array(2048).subarray(1024));
  const moved = new Uint8Array(1024);
  structuredClone(moved.buffer, { transfer: [moved.buffer] });
  pool.give(moved);
  assert.equal(pool.kept, 0, "other sizes, views and moved-away buffers are not kept");

  for (let i = 0; i < 5; i++) pool.give(new Uint8Array(1024));
  assert.equal(pool.kept, 3, "no more than the pool's size");
});

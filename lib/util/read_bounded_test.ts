import assert from "node:assert/strict";
import { readBounded, readInto } from "./read_bounded.ts";

function streamOf(...chunks: number[][]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => new Uint8Array(c)));
}

Deno.test("readBounded joins the chunks of a stream up to its limit", async () => {
  const tooLarge = () => new Error("too large");
  assert.deepEqual(
    await readBounded(streamOf([1, 2], [], [3]), 3, tooLarge),
    new Uint8Array([1, 2, 3]),
  );
  assert.deepEqual(await readBounded(streamOf(), 0, tooLarge), new Uint8Array());
  await assert.rejects(readBounded(streamOf([1, 2], [3, 4]), 3, tooLarge), /too large/);
});

Deno.test("readInto fills its buffer exactly, and refuses a stream that is shorter or longer", async () => {
  const wrongSize = (n: number) => new Error(`got ${n} bytes`);
  const buffer = new Uint8Array(3);
  await readInto(streamOf([1, 2], [], [3]), buffer, wrongSize);
  assert.deepEqual(buffer, new Uint8Array([1, 2, 3]));
  await assert.rejects(readInto(streamOf([1], [2]), new Uint8Array(3), wrongSize), /got 2 bytes/);
  let cancelled = false;
  const longer = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array([9, 9])),
    cancel: () => void (cancelled = true),
  });
  await assert.rejects(readInto(longer, new Uint8Array(3), wrongSize), /got 4 bytes/);
  assert.ok(cancelled, "the stream carrying too much is cancelled");
});

import assert from "node:assert/strict";
import { readBounded } from "./read_bounded.ts";

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

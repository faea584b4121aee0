import assert from "node:assert/strict";
import { type BodyPiece, cutIntoBlocks } from "./body_blocks.ts";
import { BYOB_MIN_BYTES } from "../util/byob_reader.ts";

const BLOCK = 256 * 1024;

/** A byte stream of `data` that records the size of every view it is asked to fill. */
function byteBody(data: Uint8Array, viewSizes: number[]): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      const view = c.byobRequest!.view!;
      viewSizes.push(view.byteLength);
      if (offset === data.byteLength) {
        c.close();
        c.byobRequest!.respond(0);
        return;
      }
      const n = Math.min(view.byteLength, data.byteLength - offset);
      new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(offset, offset + n));
      offset += n;
      c.byobRequest!.respond(n);
    },
  });
}

function dataOf(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31) % 251);
}

Deno.test("a body of announced size is cut into blocks read 64 KiB at a time, the last one last", async () => {
  const data = dataOf(3 * BLOCK + 1000);
  const viewSizes: number[] = [];
  let taken = 0;
  const pieces: BodyPiece[] = [];
  for await (
    const piece of cutIntoBlocks(byteBody(data, viewSizes), {
      blockSize: BLOCK,
      newBlock: () => {
        taken++;
        return new Uint8Array(BLOCK);
      },
      sizeHint: data.byteLength,
      firstBytes: BLOCK,
      onChunk: () => {},
    })
  ) {
    // A block is handed out before the next buffer is taken: a body waiting
    // for its block's turn holds that block only.
    if (!piece.last) assert.equal(taken, pieces.length + 1, "buffers taken when a block goes out");
    pieces.push({ bytes: piece.bytes.slice(), last: piece.last });
  }
  assert.deepEqual(pieces.map((p) => [p.bytes.byteLength, p.last]), [
    [BLOCK, false],
    [BLOCK, false],
    [BLOCK, false],
    [1000, true],
  ]);
  assert.deepEqual(new Uint8Array(await new Blob(pieces.map((p) => p.bytes)).arrayBuffer()), data);
  assert.equal(Math.max(...viewSizes), 64 * 1024, "reads ask for 64 KiB at most");
});

Deno.test("a body of exactly whole blocks ends with its last block marked last", async () => {
  const data = dataOf(2 * BLOCK);
  const pieces: [number, boolean][] = [];
  for await (
    const piece of cutIntoBlocks(byteBody(data, []), {
      blockSize: BLOCK,
      newBlock: () => new Uint8Array(BLOCK),
      sizeHint: data.byteLength,
      firstBytes: BLOCK,
      onChunk: () => {},
    })
  ) pieces.push([piece.bytes.byteLength, piece.last]);
  assert.deepEqual(pieces, [[BLOCK, false], [BLOCK, true]]);
});

Deno.test("data beyond the announced size goes on in blocks", async () => {
  const data = dataOf(BLOCK + 10);
  let seen = 0;
  const pieces: [number, boolean][] = [];
  for await (
    const piece of cutIntoBlocks(byteBody(data, []), {
      blockSize: BLOCK,
      newBlock: () => new Uint8Array(BLOCK),
      sizeHint: BYOB_MIN_BYTES,
      firstBytes: BLOCK,
      onChunk: (chunk) => seen += chunk.byteLength,
    })
  ) pieces.push([piece.bytes.byteLength, piece.last]);
  assert.equal(seen, data.byteLength);
  assert.equal(pieces.reduce((sum, [n]) => sum + n, 0), data.byteLength);
  assert.deepEqual(pieces.at(-1)![1], true);
});

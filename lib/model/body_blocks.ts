/**
 * Cuts a request body into the buffers remise stores: block-sized ones as
 * they fill, then a last one with what remains (possibly empty, and the only
 * one of small data, which may stay inline).
 *
 * Data of announced size (64 KiB or more) from a byte stream (a request
 * body) is read with a BYOB reader straight into buffers of that size or a
 * block's: no chunk to allocate, nothing to copy. Other bodies are copied
 * from their chunks into a buffer that starts at `firstBytes` and grows
 * fourfold up to a block (small objects are the common case).
 */

import { byobReader } from "../util/byob_reader.ts";

/**
 * The most one read of a body asks for. Deno fills a BYOB read from a native
 * buffer of the view's size: 40 uploads reading 1 MiB views held ~190 MiB of
 * native memory (and glibc kept much of it), 64 KiB views ~56 MiB, at the
 * same CPU per MiB. Views of varying sizes fragmented it worse than either.
 */
const BYOB_VIEW_MAX_BYTES = 64 * 1024;

export interface BodyPiece {
  /** A block (a whole buffer, which may be moved), or the last piece (a view). */
  bytes: Uint8Array<ArrayBuffer>;
  last: boolean;
}

export interface CutOptions {
  blockSize: number;
  /** A buffer for a whole block (`blockSize` bytes, which the cut overwrites). */
  newBlock: () => Uint8Array<ArrayBuffer>;
  /** The size the body is announced to have (Content-Length), when known. */
  sizeHint?: number;
  /** Size of the first buffer of a body read in chunks. */
  firstBytes: number;
  /** Sees every chunk read, in order, before it is cut (sizes, checksums); may throw. */
  onChunk: (chunk: Uint8Array) => void;
}

export async function* cutIntoBlocks(
  body: ReadableStream<Uint8Array>,
  options: CutOptions,
): AsyncGenerator<BodyPiece> {
  // Not a byte stream, a small body, or one of unknown size: read in chunks.
  const byob = byobReader(body, options.sizeHint);
  const reader = byob ?? body.getReader();
  let finished = false;
  try {
    if (byob) yield* readInto(byob, options.sizeHint!, options);
    else yield* readChunks(reader as ReadableStreamDefaultReader<Uint8Array>, options);
    finished = true;
  } finally {
    // A failed read, a chunk refused or a consumer that stopped: the rest is not wanted.
    // (A finished reader is not released: that builds an error object, ~10 us a request.)
    if (!finished) await reader.cancel().catch(() => {});
  }
}

async function* readInto(
  reader: ReadableStreamBYOBReader,
  hint: number,
  { blockSize, newBlock, onChunk }: CutOptions,
): AsyncGenerator<BodyPiece> {
  let size = 0;
  // Buffers of a block, or of what remains when less; a last 1-byte one reads
  // the end of the stream (and data beyond the hint goes on in blocks).
  const nextBuffer = () => {
    const remaining = hint - size;
    if (remaining >= blockSize || remaining < 0) return newBlock();
    return new Uint8Array(remaining === 0 ? 1 : remaining);
  };
  let buffer = nextBuffer();
  let filled = 0;
  // A full buffer that reaches the hint is given out once more data comes, so
  // that the last one stays last. One short of it goes before the next buffer
  // is taken: a body waiting for its block's turn to be stored holds one.
  let full: Uint8Array<ArrayBuffer> | undefined;
  while (true) {
    if (filled === buffer.byteLength) {
      if (size < hint) yield { bytes: buffer, last: false };
      else full = buffer;
      buffer = nextBuffer();
      filled = 0;
    }
    const end = Math.min(buffer.byteLength, filled + BYOB_VIEW_MAX_BYTES);
    const { done, value } = await reader.read(buffer.subarray(filled, end));
    // The read moved the buffer's memory into `value`: take it back.
    if (value) buffer = new Uint8Array(value.buffer as ArrayBuffer);
    if (done) break;
    if (full) {
      yield { bytes: full, last: false };
      full = undefined;
    }
    onChunk(value);
    size += value.byteLength;
    filled += value.byteLength;
  }
  yield { bytes: full ?? buffer.subarray(0, filled), last: true };
}

async function* readChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  { blockSize, newBlock, firstBytes, onChunk }: CutOptions,
): AsyncGenerator<BodyPiece> {
  let buffer = firstBytes === blockSize ? newBlock() : new Uint8Array(firstBytes);
  let filled = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    onChunk(value);
    let consumed = 0;
    while (consumed < value.byteLength) {
      if (filled === buffer.byteLength) {
        if (buffer.byteLength < blockSize) {
          const grownSize = Math.min(buffer.byteLength * 4, blockSize);
          const grown = grownSize === blockSize ? newBlock() : new Uint8Array(grownSize);
          grown.set(buffer);
          buffer = grown;
        } else {
          yield { bytes: buffer, last: false };
          buffer = newBlock();
          filled = 0;
        }
      }
      const n = Math.min(buffer.byteLength - filled, value.byteLength - consumed);
      buffer.set(value.subarray(consumed, consumed + n), filled);
      filled += n;
      consumed += n;
    }
  }
  yield { bytes: buffer.subarray(0, filled), last: true };
}

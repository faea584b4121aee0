/**
 * Streaming object data in and out of blocks. Incoming bytes are cut into
 * `blockSize` blocks, each stored (and referenced by `dataId` in the version
 * table) while the next is being received, with a bounded number of blocks in
 * flight; small objects stay in memory to be stored inline.
 */
import {
  type ChecksumAlgorithm,
  checksumHasher,
  type Hasher,
  md5Hasher,
  sha256Hex,
  toBase64,
  toHex,
} from "../util/hash.ts";
import { INLINE_THRESHOLD_BYTES } from "../util/limits.ts";
import type { DataPart } from "./object_table.ts";
import type { Store } from "./store.ts";

/** First buffer of an upload that may stay inline; it grows fourfold up to a block. */
const SMALL_BUFFER_BYTES = 1024;

/** Blocks being stored while the next one is received: bounds memory per upload. */
const BLOCKS_IN_FLIGHT_MAX = 4;

/** The object is larger than allowed; thrown while streaming, before anything is committed. */
export class DataTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The data is larger than the limit of ${limit} bytes`);
    this.name = "DataTooLargeError";
  }
}

export interface WrittenData {
  size: number;
  md5Hex: string;
  /** Base64 checksum of the requested algorithm. */
  checksum?: string;
  /** Set when the data is small enough to be stored inline; otherwise it is in blocks under the data id. */
  inline?: Uint8Array;
}

export interface WriteDataOptions {
  dataId: string;
  maxSize: number;
  checksumAlgorithm?: ChecksumAlgorithm;
  /** May keep small data inline instead of writing blocks. */
  allowInline: boolean;
  /** Called once, before the first block is stored (e.g. to record an upload in progress). */
  beforeFirstBlock?: () => Promise<void>;
}

export async function writeData(
  store: Store,
  body: ReadableStream<Uint8Array> | null,
  options: WriteDataOptions,
): Promise<WrittenData> {
  const md5 = md5Hasher();
  const checksum: Hasher | undefined = options.checksumAlgorithm
    ? checksumHasher(options.checksumAlgorithm)
    : undefined;
  const blockSize = store.blockSize;
  // Small objects are the common case: start small and grow, rather than
  // allocate a block (or the inline threshold) for every request.
  let buffer = new Uint8Array(options.allowInline ? SMALL_BUFFER_BYTES : blockSize);
  let filled = 0;
  let offset = 0;
  let size = 0;
  let started = false;
  const inFlight: Promise<void>[] = [];
  let failure: unknown;

  const flushBlock = async (block: Uint8Array) => {
    if (!started) {
      started = true;
      await options.beforeFirstBlock?.();
    }
    const blockOffset = offset;
    offset += block.byteLength;
    const write = storeBlock(store, options.dataId, blockOffset, block).catch((e) => {
      failure ??= e;
    });
    inFlight.push(write);
    if (inFlight.length >= BLOCKS_IN_FLIGHT_MAX) await inFlight.shift();
    if (failure) throw failure;
  };

  if (body) {
    const reader = body.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > options.maxSize) throw new DataTooLargeError(options.maxSize);
        md5.update(value);
        checksum?.update(value);
        let consumed = 0;
        while (consumed < value.byteLength) {
          if (filled === buffer.byteLength) {
            if (buffer.byteLength < blockSize) {
              const grown = new Uint8Array(Math.min(buffer.byteLength * 4, blockSize));
              grown.set(buffer);
              buffer = grown;
            } else {
              await flushBlock(buffer);
              buffer = new Uint8Array(blockSize);
              filled = 0;
            }
          }
          const n = Math.min(buffer.byteLength - filled, value.byteLength - consumed);
          buffer.set(value.subarray(consumed, consumed + n), filled);
          filled += n;
          consumed += n;
        }
      }
    } catch (e) {
      await reader.cancel(e).catch(() => {});
      await Promise.all(inFlight);
      throw e;
    } finally {
      reader.releaseLock();
    }
  }
  const result: WrittenData = {
    size,
    md5Hex: toHex(md5.digest()),
    checksum: checksum ? toBase64(checksum.digest()) : undefined,
  };
  if (!started && options.allowInline && size <= INLINE_THRESHOLD_BYTES) {
    result.inline = buffer.slice(0, filled);
    return result;
  }
  if (filled > 0) await flushBlock(buffer.subarray(0, filled));
  await Promise.all(inFlight);
  if (failure) throw failure;
  return result;
}

async function storeBlock(
  store: Store,
  dataId: string,
  offset: number,
  block: Uint8Array,
): Promise<void> {
  const hash = sha256Hex(block);
  await store.blocks.putBlock(hash, block);
  await store.versions.insert({ dataId, offset, hash, size: block.byteLength, deleted: false });
}

/** A byte range [start, end) of an object. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Streams the bytes of `parts` within `range`, one block at a time with one
 * block read ahead. The first block is read before this resolves, so that a
 * failure to reach the data is an error answer rather than a cut stream.
 */
export async function readParts(
  store: Store,
  parts: DataPart[],
  range: ByteRange,
): Promise<ReadableStream<Uint8Array>> {
  const pieces = blockPieces(store, parts, range);
  let next: Promise<IteratorResult<Piece>> | undefined;
  const advance = () => {
    next = pieces.next().then((r) => {
      if (!r.done) r.value.data.catch(() => {}); // errors surface when the piece is awaited
      return r;
    });
  };
  advance();
  const first = await next!;
  if (!first.done) await first.value.data;
  next = Promise.resolve(first);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await next!;
      if (r.done) {
        controller.close();
        return;
      }
      advance();
      controller.enqueue(await r.value.data);
    },
    async cancel() {
      await pieces.return?.(undefined);
    },
  }, { highWaterMark: 0 });
}

/** A piece of bytes to send, read as soon as it is listed (wrapped: a generator would await a bare promise). */
interface Piece {
  data: Promise<Uint8Array>;
}

async function* blockPieces(
  store: Store,
  parts: DataPart[],
  range: ByteRange,
): AsyncGenerator<Piece> {
  let partStart = 0;
  for (const part of parts) {
    const partEnd = partStart + part.size;
    if (partEnd > range.start && partStart < range.end) {
      for await (const block of store.versions.scan(part.dataId)) {
        if (block.deleted) continue;
        const blockStart = partStart + block.offset;
        const blockEnd = blockStart + block.size;
        if (blockEnd <= range.start) continue;
        if (blockStart >= range.end) break;
        const from = Math.max(range.start, blockStart) - blockStart;
        const to = Math.min(range.end, blockEnd) - blockStart;
        yield { data: store.blocks.getBlock(block.hash).then((data) => data.subarray(from, to)) };
      }
    }
    partStart = partEnd;
    if (partStart >= range.end) break;
  }
}

/**
 * Streaming object data in and out of blocks. Incoming bytes are cut into
 * `blockSize` blocks, each stored (and referenced by `dataId` in the version
 * table) while the next is being received, with a bounded number of blocks in
 * flight; small objects stay in memory to be stored inline.
 */
import {
  type ChecksumAlgorithm,
  checksumHasher,
  crc32 as crc32Of,
  type Hasher,
  md5Hex,
  toBase64,
  toHex,
} from "../util/hash.ts";
import { type BlockHashing, inlineHashing, type OrderedMd5 } from "../util/block_hashing.ts";
import {
  BLOCKS_IN_FLIGHT_PER_UPLOAD,
  HASH_ON_REQUEST_THREAD_MAX_BYTES,
  INLINE_THRESHOLD_BYTES,
} from "../util/limits.ts";
import type { DataPart } from "./object_table.ts";
import type { VersionBlock } from "./version_table.ts";
import { blockCheck } from "../block/block_store.ts";
import { cutIntoBlocks } from "./body_blocks.ts";
import type { Store } from "./store.ts";
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import type { DataKey } from "./data_key.ts";

/** First buffer of an upload that may stay inline; it grows fourfold up to a block. */
const SMALL_BUFFER_BYTES = 1024;

/** Blocks read ahead of the one being sent: bounds memory per download. */
const READ_AHEAD_BLOCKS = 2;

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
  /** The size the data is announced to have (Content-Length), when known. */
  sizeHint?: number;
  /** Encrypts every block (SSE-C or SSE-S3); the data may then not stay inline. */
  encryptWith?: DataKey;
}

export async function writeData(
  store: Store,
  body: ReadableStream<Uint8Array> | null,
  options: WriteDataOptions,
): Promise<WrittenData> {
  const small = options.sizeHint !== undefined &&
    options.sizeHint <= HASH_ON_REQUEST_THREAD_MAX_BYTES;
  const hashing = small ? inlineHashing : store.blocks.store.hashing;
  // The MD5 goes block by block (off this thread when there are hash workers,
  // unless the data is small); data that stays inline is hashed here at the end.
  let md5: OrderedMd5 | undefined;
  const checksum: Hasher | undefined = options.checksumAlgorithm
    ? checksumHasher(options.checksumAlgorithm)
    : undefined;
  let offset = 0;
  let size = 0;
  let started = false;
  // Blocks whose bytes are still held (hashing, storing): bounded. Their
  // version entries are recorded after, without holding the bytes, in
  // batches: those stored while one batch commits go together in the next.
  const inFlight: Promise<void>[] = [];
  const unrecorded: VersionBlock[] = [];
  let recording: Promise<void> = Promise.resolve();
  let failure: unknown;
  const fail = (e: unknown) => {
    failure ??= e;
  };
  const record = (entry: VersionBlock) => {
    unrecorded.push(entry);
    recording = recording.then(() => {
      const batch = unrecorded.splice(0);
      return batch.length > 0 ? store.recordBlocks(batch) : undefined;
    }).catch(fail);
  };

  const flushBlock = async (block: Uint8Array) => {
    if (!started) {
      started = true;
      await options.beforeFirstBlock?.();
    }
    md5 ??= hashing.md5();
    const blockOffset = offset;
    offset += block.byteLength;
    const permit = await store.blocksInFlight.acquire();
    // MD5 updates are queued in block order; each block is stored once hashed.
    const key = options.encryptWith;
    const stored = md5.update(block).then(async (hashed) => {
      if (!key) return storeBlock(store, hashed, true, hashing);
      const sealed = await key.transformBlock(hashed, options.dataId, blockOffset);
      store.blockBuffers.give(hashed);
      return storeBlock(store, sealed, false, hashing);
    });
    stored.finally(permit).catch(() => {});
    inFlight.push(
      stored.then(
        ({ hash, size, crc32 }) =>
          record({
            dataId: options.dataId,
            offset: blockOffset,
            hash,
            size,
            crc32,
            deleted: false,
          }),
        fail,
      ),
    );
    if (inFlight.length >= BLOCKS_IN_FLIGHT_PER_UPLOAD) await inFlight.shift();
    if (failure) throw failure;
  };

  // What remains after the last full block: small data may stay inline.
  let last: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  if (body) {
    const pieces = cutIntoBlocks(body, {
      blockSize: store.blockSize,
      newBlock: () => store.blockBuffers.take(),
      sizeHint: options.sizeHint,
      firstBytes: options.allowInline ? SMALL_BUFFER_BYTES : store.blockSize,
      onChunk: (chunk) => {
        size += chunk.byteLength;
        if (size > options.maxSize) throw new DataTooLargeError(options.maxSize);
        checksum?.update(chunk);
      },
    });
    try {
      for await (const piece of pieces) {
        if (piece.last) last = piece.bytes;
        else await flushBlock(piece.bytes);
      }
    } catch (e) {
      await Promise.all(inFlight);
      await recording;
      md5?.abandon();
      throw e;
    }
  }
  const checksumBase64 = checksum ? toBase64(checksum.digest()) : undefined;
  if (!started && options.allowInline && !options.encryptWith && size <= INLINE_THRESHOLD_BYTES) {
    // A view of a larger buffer is copied: the entry keeps only its bytes.
    const inline = last.byteLength === last.buffer.byteLength ? last : last.slice();
    return { size, md5Hex: md5Hex(inline), checksum: checksumBase64, inline };
  }
  try {
    if (last.byteLength > 0) await flushBlock(last);
    await Promise.all(inFlight);
    await recording;
    if (failure) throw failure;
  } catch (e) {
    md5?.abandon();
    throw e;
  }
  // An empty body that may not stay inline has no block, hence no MD5 session.
  const md5OfData = md5 ? toHex(await md5.digest()) : md5Hex(new Uint8Array());
  return { size, md5Hex: md5OfData, checksum: checksumBase64 };
}

/** A block as a version entry names it. */
export type StoredBlock = Pick<VersionBlock, "hash" | "size" | "crc32">;

/**
 * Stores a block on its replicas; resolves to what names it once a write
 * quorum has it. With `reuse`, the block's buffer goes back to the store's
 * pool once every replica has it: the caller must not keep it. `hashing`
 * computes its SHA-256 (the store's, by default).
 */
export async function storeBlock(
  store: Store,
  block: Uint8Array,
  reuse = false,
  hashing: BlockHashing = store.blocks.store.hashing,
): Promise<StoredBlock> {
  const { hex: hash, data } = await hashing.sha256(block);
  const crc32 = crc32Of(data);
  await store.blocks.putBlock(
    hash,
    data,
    reuse ? () => store.blockBuffers.give(data) : undefined,
    { size: data.byteLength, crc32 },
  );
  return { hash, size: data.byteLength, crc32 };
}

/** An object whose block entries do not cover its size. */
export class IncompleteDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IncompleteDataError";
  }
}

/** A byte range [start, end) of an object. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Streams the bytes of `parts` within `range`, one block at a time with a
 * few blocks read ahead. The first block is read before this resolves, so that a
 * failure to reach the data is an error answer rather than a cut stream.
 * Blocks are decrypted with `decryptWith` when given.
 */
export async function readParts(
  store: Store,
  parts: DataPart[],
  range: ByteRange,
  decryptWith?: DataKey,
): Promise<ReadableStream<Uint8Array>> {
  const pieces = blockPieces(store, parts, range, decryptWith);
  const ahead: Promise<IteratorResult<Piece>>[] = [];
  let listed = false;
  const readAhead = () => {
    while (!listed && ahead.length < READ_AHEAD_BLOCKS) {
      const next = pieces.next().then((r) => {
        if (r.done) listed = true;
        else r.value.data.catch(() => {}); // errors surface when the piece is awaited
        return r;
      });
      // A listing that fails surfaces when awaited too, or not at all once the reader is gone.
      next.catch(() => {});
      ahead.push(next);
    }
  };
  readAhead();
  const first = await ahead[0];
  if (!first.done) await first.value.data;
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await ahead.shift();
        if (r === undefined || r.done) {
          controller.close();
          return;
        }
        readAhead();
        controller.enqueue(await r.value.data);
      } catch (e) {
        // The client went away while this pull waited for its block: nothing failed.
        if (cancelled) return;
        // The answer's headers are sent: the client gets a body cut short. Said here, in the
        // node's log, rather than thrown to the HTTP server, which prints a bare stack.
        log("remise::model", "warn", `a read failed after its answer began: ${errorMessage(e)}`);
        controller.error(e);
      }
    },
    async cancel() {
      cancelled = true;
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
  decryptWith?: DataKey,
): AsyncGenerator<Piece> {
  for await (const block of blocksInRange(store, parts, range)) {
    const { hash, from, to } = block;
    const stored = store.blocks.getBlock(hash, blockCheck(block));
    const data = decryptWith
      ? stored.then((bytes) => decryptWith.transformBlock(bytes, block.dataId, block.offset))
      : stored;
    yield { data: data.then((bytes) => bytes.subarray(from, to)) };
  }
}

/** A block of an object that overlaps a range: the overlap is [from, to) of the block's bytes. */
export interface BlockInRange extends StoredBlock {
  /** Where the block is: its part's data id, and its offset in that part's data. */
  dataId: string;
  offset: number;
  from: number;
  to: number;
}

/** Parts of up to this many blocks (most) are read from this node's copy first. */
const LOCAL_FIRST_MAX_BLOCKS = 256;

/**
 * The block entries of a part, in offset order: this node's copy when it
 * holds the whole part, else a quorum read. A data id is used once, its
 * entries are written once and only ever become deleted: a copy whose live
 * entries cover the part from its first byte to its last, none deleted, is
 * what a quorum would answer, and saves a round trip to another replica.
 */
async function* partBlocks(store: Store, part: DataPart): AsyncGenerator<VersionBlock> {
  const local = await store.versions.scanLocal(part.dataId, LOCAL_FIRST_MAX_BLOCKS + 1);
  if (local !== undefined && coversPart(local, part.size)) {
    yield* local;
    return;
  }
  yield* store.versions.scan(part.dataId);
}

function coversPart(blocks: VersionBlock[], size: number): boolean {
  if (blocks.length > LOCAL_FIRST_MAX_BLOCKS) return false;
  let next = 0;
  for (const block of blocks) {
    if (block.deleted || block.offset !== next) return false;
    next += block.size;
  }
  return next === size;
}

/**
 * The blocks of `parts` that overlap `range`, in order. Blocks that do not
 * cover the range without a gap (block entries lost, as from metadata
 * restored after their object was deleted) are an error, never a short body.
 */
export async function* blocksInRange(
  store: Store,
  parts: DataPart[],
  range: ByteRange,
): AsyncGenerator<BlockInRange> {
  let partStart = 0;
  for (const part of parts) {
    const partEnd = partStart + part.size;
    if (partEnd > range.start && partStart < range.end) {
      // The next byte of the range to find a block for, and where the range ends in this part.
      let next = Math.max(range.start, partStart);
      const end = Math.min(range.end, partEnd);
      for await (const block of partBlocks(store, part)) {
        if (block.deleted) continue;
        const blockStart = partStart + block.offset;
        const blockEnd = blockStart + block.size;
        if (blockEnd <= range.start) continue;
        if (blockStart >= range.end) break;
        if (blockStart > next) break;
        next = Math.min(end, blockEnd);
        yield {
          hash: block.hash,
          size: block.size,
          crc32: block.crc32,
          dataId: part.dataId,
          offset: block.offset,
          from: Math.max(range.start, blockStart) - blockStart,
          to: Math.min(range.end, blockEnd) - blockStart,
        };
      }
      if (next < end) {
        throw new IncompleteDataError(
          `The data ${part.dataId} has no block at offset ${
            next - partStart
          } of its ${part.size} bytes`,
        );
      }
    }
    partStart = partEnd;
    if (partStart >= range.end) break;
  }
}

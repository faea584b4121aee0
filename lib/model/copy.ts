/**
 * Copies of object data: whole blocks are shared (a new version entry and a
 * new block reference, no new file); only the partial blocks at the edges of
 * a range are read and written again.
 */
import {
  type ChecksumAlgorithm,
  checksumHasher,
  md5Hasher,
  toBase64,
  toHex,
} from "../util/hash.ts";
import {
  blocksInRange,
  type ByteRange,
  readParts,
  storeBlock,
  type StoredBlock,
  writeData,
} from "./object_data.ts";
import type { CurrentObject } from "./objects.ts";
import { commitChecked, versionedFlag, type Versioning } from "./objects.ts";
import {
  type DataPart,
  type ObjectMeta,
  type ObjectVersion,
  type VersionData,
} from "./object_table.ts";
import type { Store } from "./store.ts";
import { type DataKey, etagOfData } from "./data_key.ts";
import { lockRegisters, type LockRequest } from "./object_lock.ts";
import { lww } from "../util/crdt.ts";
import { blockCheck } from "../block/block_store.ts";

/** The keys of a copy: the one its source is encrypted with, and the one the copy is encrypted with. */
export interface CopyKeys {
  source?: DataKey;
  destination?: DataKey;
}

/**
 * Copies `range` of the source data into `dataId`; returns its size and,
 * when asked (`digests`), its MD5 and its checksum in that algorithm (base64).
 * Encrypted data, or data to be, is read and written again.
 */
export async function copyRange(
  store: Store,
  source: CurrentObject,
  range: ByteRange,
  dataId: string,
  digests?: { checksumAlgorithm?: ChecksumAlgorithm },
  keys: CopyKeys = {},
): Promise<{ size: number; md5Hex?: string; checksum?: string }> {
  if (keys.source || keys.destination) {
    return await rewriteRange(store, source, range, dataId, digests?.checksumAlgorithm, keys);
  }
  const md5 = digests ? md5Hasher() : undefined;
  const checksum = digests?.checksumAlgorithm
    ? checksumHasher(digests.checksumAlgorithm)
    : undefined;
  let out = 0;
  const addBlock = async ({ hash, size, crc32 }: StoredBlock) => {
    await store.recordBlocks([{ dataId, offset: out, hash, size, crc32, deleted: false }]);
    out += size;
  };
  const addBytes = async (bytes: Uint8Array) => await addBlock(await storeBlock(store, bytes));
  const data = source.data;
  if (data.type === "inline") {
    const bytes = data.bytes.subarray(range.start, range.end);
    md5?.update(bytes);
    checksum?.update(bytes);
    if (bytes.byteLength > 0) await addBytes(bytes);
  } else {
    for await (const block of blocksInRange(store, data.parts, range)) {
      const whole = block.from === 0 && block.to === block.size;
      if (whole && !md5) {
        await addBlock(block);
        continue;
      }
      const slice = (await store.blocks.getBlock(block.hash, blockCheck(block)))
        .subarray(block.from, block.to);
      md5?.update(slice);
      checksum?.update(slice);
      if (whole) await addBlock(block);
      else await addBytes(slice);
    }
  }
  return {
    size: out,
    md5Hex: md5 ? toHex(md5.digest()) : undefined,
    checksum: checksum ? toBase64(checksum.digest()) : undefined,
  };
}

/** Copies `range` of the source into `dataId` through its bytes: decrypted, then encrypted, as `keys` say. */
async function rewriteRange(
  store: Store,
  source: CurrentObject,
  range: ByteRange,
  dataId: string,
  checksumAlgorithm: ChecksumAlgorithm | undefined,
  keys: CopyKeys,
): Promise<{ size: number; md5Hex: string; checksum?: string }> {
  const data = source.data;
  const body = data.type === "inline"
    ? new Blob([data.bytes.subarray(range.start, range.end) as Uint8Array<ArrayBuffer>]).stream()
    : await readParts(store, data.parts, range, keys.source);
  const written = await writeData(store, body, {
    dataId,
    maxSize: range.end - range.start,
    allowInline: false,
    checksumAlgorithm,
    encryptWith: keys.destination,
  });
  return { size: written.size, md5Hex: written.md5Hex, checksum: written.checksum };
}

export interface CopyOptions {
  /** The copy's headers (content type, x-amz-meta-*, ...). */
  headers: [string, string][];
  /** Checks the destination's current object just before the copy is committed. */
  precondition?: (current: CurrentObject | undefined) => void;
  /** The copy's tags; the source's when undefined. */
  tags?: [string, string][];
  /** The destination bucket's versioning. */
  versioning?: Versioning;
  /**
   * The checksum algorithm the copy's checksum is in: computed over the data
   * unless the source has a full-object one in it; the source's when undefined.
   */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** The keys (SSE-C or SSE-S3): the source's, checked by the caller, and the copy's. */
  keys?: CopyKeys;
  /** Object lock: the copy's retention and legal hold (the source's are not copied). */
  lock?: LockRequest;
}

/** The full-object checksum (base64) of an object's data, read from its blocks. */
async function checksumOfData(
  store: Store,
  source: CurrentObject,
  algorithm: ChecksumAlgorithm,
): Promise<string> {
  const hasher = checksumHasher(algorithm);
  const data = source.data;
  if (data.type === "inline") {
    hasher.update(data.bytes);
  } else {
    for await (
      const chunk of await readParts(store, data.parts, { start: 0, end: data.meta.size })
    ) {
      hasher.update(chunk);
    }
  }
  return toBase64(hasher.digest());
}

/** Makes a copy of `source` the current version of the destination key. */
export async function copyObject(
  store: Store,
  source: CurrentObject,
  destination: { bucketId: string; key: string },
  options: CopyOptions,
): Promise<{ version: ObjectVersion; meta: ObjectMeta }> {
  const { headers, precondition, tags, versioning, checksumAlgorithm, keys = {} } = options;
  const {
    tags: sourceTags,
    encryption: _sourceEncryption,
    retention: _sourceRetention,
    legalHold: _sourceLegalHold,
    ...sourceMeta
  } = source.data.meta;
  const copiedTags = tags === undefined ? sourceTags : lww(store.nowMs(), tags);
  const meta: ObjectMeta = {
    ...sourceMeta,
    headers,
    ...(copiedTags ? { tags: copiedTags } : {}),
    ...lockRegisters(options.lock, store.nowMs()),
  };
  const sourceChecksum = sourceMeta.checksum;
  const rewrite = keys.source !== undefined || keys.destination !== undefined;
  const newChecksum = checksumAlgorithm !== undefined && !rewrite &&
    (sourceChecksum?.algorithm !== checksumAlgorithm || sourceChecksum.type !== "FULL_OBJECT");
  if (newChecksum) {
    meta.checksum = {
      algorithm: checksumAlgorithm,
      value: await checksumOfData(store, source, checksumAlgorithm),
      type: "FULL_OBJECT",
    };
  }
  const flag = versionedFlag(versioning);
  const sourceData = source.data;
  // The data the copy writes: one part for data read and written again, or
  // inline data kept out of a versioned key's entry (as putObject does);
  // none for inline data copied inline; else one per part of the source.
  const created = sourceData.type === "parts" && !rewrite
    ? sourceData.parts.map(() => crypto.randomUUID())
    : rewrite || flag.versioned
    ? [crypto.randomUUID()]
    : [];
  const { bucketId, key } = destination;
  const versionUuid = crypto.randomUUID();
  // Noted first (see DataJournal): a copy cut off by its node's death leaves
  // its data to the node's next process, which releases it unless the
  // copy's version shows.
  await store.journal.beginAll(created, { kind: "copy", bucketId, key, versionUuid });
  let data: VersionData;
  let committing = false;
  try {
    if (rewrite) {
      // Encrypted data is read and written again as one part; its checksum
      // is computed on the way, in the algorithm asked for or the source's.
      const algorithm = checksumAlgorithm ??
        sourceChecksum?.algorithm as ChecksumAlgorithm | undefined;
      const copied = await rewriteRange(
        store,
        source,
        { start: 0, end: meta.size },
        created[0],
        algorithm,
        keys,
      );
      const destination = keys.destination;
      meta.etag = etagOfData(copied.md5Hex, destination);
      if (destination) meta.encryption = destination.newEncryption();
      if (algorithm && copied.checksum) {
        meta.checksum = { algorithm, value: copied.checksum, type: "FULL_OBJECT" };
      }
      data = {
        type: "parts",
        meta,
        parts: [{ partNumber: 1, dataId: created[0], size: copied.size, etag: meta.etag }],
      };
    } else if (sourceData.type === "inline" && created.length === 0) {
      data = { type: "inline", meta, bytes: sourceData.bytes };
    } else if (sourceData.type === "inline") {
      const dataId = created[0];
      const { size } = await copyRange(store, source, { start: 0, end: meta.size }, dataId);
      data = { type: "parts", meta, parts: [{ partNumber: 1, dataId, size, etag: meta.etag }] };
    } else {
      const parts: DataPart[] = [];
      for (const [i, part] of sourceData.parts.entries()) {
        const dataId = created[i];
        const single: CurrentObject = {
          version: source.version,
          data: { type: "parts", meta: sourceData.meta, parts: [part] },
        };
        await copyRange(store, single, { start: 0, end: part.size }, dataId);
        // A part's checksum is in the source's algorithm: a copy with another has none.
        const { checksum: _partChecksum, ...rest } = part;
        parts.push(newChecksum ? { ...rest, dataId } : { ...part, dataId });
      }
      data = { type: "parts", meta, parts };
    }
    const version = await commitChecked(store, bucketId, key, precondition, (timestampMs) => {
      committing = true;
      return {
        uuid: versionUuid,
        timestampMs,
        ...flag,
        state: { state: "complete", data },
      };
    });
    store.journal.endAll(created);
    return { version, meta };
  } catch (e) {
    // A copy whose write failed may have reached some replicas and show yet:
    // its data stays, noted, for the journal's settling.
    const released = !committing && await store.releaseFailedUploadData(created);
    if (released) store.journal.endAll(created);
    else store.journal.leave(created);
    throw e;
  }
}

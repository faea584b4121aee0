/**
 * Multipart uploads: an upload is an object version in state "uploading"
 * (its uuid is the upload id) with an mpu entry listing the parts received.
 * Completing turns the version into a complete one made of the chosen parts;
 * the object stays invisible until then.
 */
import { lww, lwwAfter } from "../util/crdt.ts";
import { compareUtf8, objectKeyTooLong, utf8Prefix } from "../util/utf8_order.ts";
import { OBJECT_KEY_MAX_BYTES } from "../util/limits.ts";
import {
  type ChecksumAlgorithm,
  checksumHasher,
  fromBase64,
  fromHex,
  md5Hasher,
  toBase64,
  toHex,
} from "../util/hash.ts";
import { combineCrcs, isCombinableCrc } from "../util/crc_combine.ts";
import {
  type MultipartUpload,
  uploadDataIds,
  type UploadedPart,
  uploadEnded,
} from "./mpu_table.ts";
import {
  type DataPart,
  mergeablePick,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectVersion,
  type StoredChecksum,
  versionedOf,
} from "./object_table.ts";
import { type ByteRange, writeData, type WrittenData } from "./object_data.ts";
import { type CopyKeys, copyRange } from "./copy.ts";
import {
  abortVersion,
  commitChecked,
  type CurrentObject,
  nextTimestamp,
  versionedFlag,
  type Versioning,
} from "./objects.ts";
import type { Store } from "./store.ts";
import { type DataEncryption, type DataKey, etagOfData } from "./data_key.ts";
import { lockRegisters, type LockRequest } from "./object_lock.ts";

/** S3's minimum size of every part but the last. */
export const PART_SIZE_MIN_BYTES = 5 * 1024 * 1024;
/** S3's maximum size of one part. */
export const PART_SIZE_MAX_BYTES = 5 * 1024 * 1024 * 1024;
/** S3's part numbers. */
export const PART_NUMBER_MAX = 10_000;

/** Why a multipart request cannot proceed, named as S3 names it. */
export class MultipartError extends Error {
  constructor(
    readonly code:
      | "NoSuchUpload"
      | "InvalidPart"
      | "InvalidPartOrder"
      | "EntityTooSmall"
      | "BadDigest"
      | "InvalidRequest",
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
    this.name = "MultipartError";
  }
}

export interface ActiveUpload {
  upload: MultipartUpload;
  version: ObjectVersion;
  headers: [string, string][];
  checksumAlgorithm?: ChecksumAlgorithm;
  /** How the object's checksum is made of its parts' (with a checksum algorithm). */
  checksumType: ChecksumType;
  tags?: [string, string][];
  /** Set when the parts are encrypted (SSE-C or SSE-S3). */
  encryption?: DataEncryption;
  /** Object lock: the completed object's retention and legal hold. */
  lock: LockRequest;
}

export type ChecksumType = StoredChecksum["type"];

/** The checksum an upload keeps, as CreateMultipartUpload asked for it. */
export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  type: ChecksumType;
}

/**
 * The checksum type of an upload: the one asked for, or S3's default for
 * the algorithm (CRC64NVME has only full-object checksums). SHA-1 and
 * SHA-256 cannot be combined, so have only composite ones.
 */
export function uploadChecksumType(
  algorithm: ChecksumAlgorithm,
  requested: ChecksumType | undefined,
): ChecksumType {
  const type = requested ?? (algorithm === "CRC64NVME" ? "FULL_OBJECT" : "COMPOSITE");
  if (type === "FULL_OBJECT" && !isCombinableCrc(algorithm)) {
    throw new MultipartError(
      "InvalidRequest",
      `The FULL_OBJECT checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`,
    );
  }
  if (type === "COMPOSITE" && algorithm === "CRC64NVME") {
    throw new MultipartError(
      "InvalidRequest",
      "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
    );
  }
  return type;
}

export interface CreateUploadOptions {
  checksum?: UploadChecksum;
  tags?: [string, string][];
  /** The bucket's versioning when the upload starts decides whether the object will be versioned. */
  versioning?: Versioning;
  /** The parts are to be encrypted with the key (SSE-C or SSE-S3) this record is of. */
  encryption?: DataEncryption;
  /** Object lock: the completed object's retention and legal hold. */
  lock?: LockRequest;
}

export async function createUpload(
  store: Store,
  bucketId: string,
  key: string,
  headers: [string, string][],
  options: CreateUploadOptions = {},
): Promise<string> {
  const { checksum, tags, versioning, encryption, lock } = options;
  const uploadId = crypto.randomUUID();
  const now = store.nowMs();
  const entry = await store.objects.get(bucketId, key);
  await store.uploads.insert({
    uploadId,
    bucketId,
    key,
    initiatedMs: now,
    parts: {},
    deleted: lww(now, false),
  });
  await store.objects.insert({
    bucketId,
    key,
    versions: [{
      uuid: uploadId,
      timestampMs: nextTimestamp(store, entry),
      ...versionedFlag(versioning),
      state: {
        state: "uploading",
        multipart: true,
        headers,
        checksumAlgorithm: checksum?.algorithm,
        ...(checksum?.type === "FULL_OBJECT" ? { checksumType: "FULL_OBJECT" as const } : {}),
        ...(tags ? { tags } : {}),
        ...(encryption ? { encryption } : {}),
        ...(lock?.retention ? { retention: lock.retention } : {}),
        ...(lock?.legalHold ? { legalHold: true } : {}),
      },
    }],
  });
  return uploadId;
}

function noSuchUpload(
  uploadId: string,
  message =
    "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
): MultipartError {
  return new MultipartError("NoSuchUpload", message, { UploadId: uploadId });
}

/** The upload, if it is still in progress for this bucket and key. */
export async function getUpload(
  store: Store,
  bucketId: string,
  key: string,
  uploadId: string,
): Promise<ActiveUpload> {
  const upload = await store.uploads.get(uploadId);
  if (!upload || uploadEnded(upload) || upload.bucketId !== bucketId || upload.key !== key) {
    throw noSuchUpload(uploadId);
  }
  const entry = await store.objects.get(bucketId, key);
  const version = entry?.versions.find((v) => v.uuid === uploadId);
  if (!version || version.state.state !== "uploading") throw noSuchUpload(uploadId);
  return {
    upload,
    version,
    headers: version.state.headers,
    checksumAlgorithm: version.state.checksumAlgorithm as ChecksumAlgorithm | undefined,
    checksumType: version.state.checksumType ?? "COMPOSITE",
    tags: version.state.tags,
    encryption: version.state.encryption,
    lock: { retention: version.state.retention, legalHold: version.state.legalHold },
  };
}

export interface UploadPartOptions {
  checksumAlgorithm?: ChecksumAlgorithm;
  /** The size the body is announced to have (Content-Length), when known. */
  sizeHint?: number;
  verify?: (written: WrittenData) => void | Promise<void>;
  /** The upload's key, when its parts are encrypted; checked by the caller. */
  encryptWith?: DataKey;
}

/** Streams one part; a part number uploaded again replaces the earlier upload. */
export function uploadPart(
  store: Store,
  active: ActiveUpload,
  partNumber: number,
  body: ReadableStream<Uint8Array> | null,
  options: UploadPartOptions,
): Promise<UploadedPart> {
  return storePart(store, active, partNumber, options.encryptWith, async (dataId) => {
    const written = await writeData(store, body, {
      dataId,
      maxSize: PART_SIZE_MAX_BYTES,
      allowInline: false,
      checksumAlgorithm: options.checksumAlgorithm ?? active.checksumAlgorithm,
      sizeHint: options.sizeHint,
      encryptWith: options.encryptWith,
    });
    await options.verify?.(written);
    return written;
  });
}

/**
 * Copies `range` of an object into a part (UploadPartCopy), encrypted with
 * the upload's key if it has one; a part number copied again replaces the
 * earlier part.
 */
export function copyPart(
  store: Store,
  active: ActiveUpload,
  partNumber: number,
  source: CurrentObject,
  range: ByteRange,
  keys: CopyKeys,
): Promise<UploadedPart> {
  return storePart(store, active, partNumber, keys.destination, async (dataId) => {
    const copied = await copyRange(store, source, range, dataId, {
      checksumAlgorithm: active.checksumAlgorithm,
    }, keys);
    return { size: copied.size, md5Hex: copied.md5Hex!, checksum: copied.checksum };
  });
}

/**
 * Writes a part's data under a new data id (`write`), then records it in
 * the upload; its ETag is `key`'s (keyed for SSE-C) when the upload is encrypted.
 */
async function storePart(
  store: Store,
  active: ActiveUpload,
  partNumber: number,
  key: DataKey | undefined,
  write: (dataId: string) => Promise<{ size: number; md5Hex: string; checksum?: string }>,
): Promise<UploadedPart> {
  const dataId = crypto.randomUUID();
  const { bucketId, key: objectKey, uploadId } = active.upload;
  // Durable before the part's first block is referenced: that takes a block
  // read, hashed and written first, and the journal's commit is queued before.
  const noting = store.journal.begin(dataId, {
    kind: "part",
    bucketId,
    key: objectKey,
    uploadId,
    partNumber,
  });
  noting.catch(() => {}); // awaited below
  let recording = false;
  try {
    const written = await write(dataId);
    await noting;
    const part: UploadedPart = {
      dataId,
      size: written.size,
      etag: etagOfData(written.md5Hex, key),
      checksum: written.checksum,
    };
    recording = true;
    await recordPart(store, active, partNumber, part);
    store.journal.end(dataId);
    return part;
  } catch (e) {
    // A part whose record failed may have reached some replicas, and be
    // completed yet: its data stays (released with its upload, or, if the
    // record never shows, when the journal's settling finds no replica with it).
    const released = !recording && await store.releaseFailedUploadData([dataId]);
    if (await noting.then(() => true, () => false)) {
      if (released) store.journal.end(dataId);
      else store.journal.leave([dataId]);
    }
    throw e;
  }
}

/** Adds a part to the upload; if the upload ended meanwhile, the part's data is released. */
export async function recordPart(
  store: Store,
  active: ActiveUpload,
  partNumber: number,
  part: UploadedPart,
) {
  const { uploadId } = active.upload;
  const number = String(partNumber);
  // A part uploaded again replaces the one before, even through a node whose clock is behind.
  const replacing = lwwAfter(active.upload.parts[number], store.nowMs(), part);
  const recorded: MultipartUpload = { ...active.upload, parts: { [number]: replacing } };
  // The entry of an upload that ended is left as it is: once cleared and
  // removed, a part recorded anyway would bring back an entry nothing would
  // clear. Alone, the node checks the entry as it writes it. With replicas,
  // the entry's tombstone is collected a day after the end, so a part whose
  // upload outlasted that finds the upload's version no longer uploading.
  const alone = await store.uploads.updateIfAlone(
    uploadId,
    "",
    (old) => uploadEnded(old) ? undefined : recorded,
  );
  let ended: boolean;
  if (alone) {
    ended = uploadEnded(alone.old);
  } else if ((await store.uploadVersion(active.upload))?.state.state !== "uploading") {
    ended = true;
  } else {
    await store.uploads.insert(recorded);
    ended = uploadEnded(await store.uploads.get(uploadId));
  }
  if (ended) {
    await store.releaseParts(active.upload, [part.dataId]);
    throw noSuchUpload(
      uploadId,
      "The multipart upload was completed or aborted during this part's upload",
    );
  }
}

export function sortedParts(
  upload: MultipartUpload,
): { partNumber: number; part: UploadedPart; lastModifiedMs: number }[] {
  return Object.entries(upload.parts)
    .map(([n, p]) => ({ partNumber: Number(n), part: p.v, lastModifiedMs: p.t }))
    .sort((a, b) => a.partNumber - b.partNumber);
}

/**
 * The checksum of the object an upload makes, from its parts' checksums (all
 * of them in the upload's algorithm): the CRC of the whole object for a
 * full-object upload, else the composite "checksum of checksums-N".
 */
function uploadChecksum(
  active: ActiveUpload,
  parts: DataPart[],
  completionType: ChecksumType | undefined,
): StoredChecksum | undefined {
  const algorithm = active.checksumAlgorithm;
  if (!algorithm || !parts.every((p) => p.checksum)) return undefined;
  if (
    isCombinableCrc(algorithm) &&
    (active.checksumType === "FULL_OBJECT" || completionType === "FULL_OBJECT")
  ) {
    const crc = combineCrcs(
      algorithm,
      parts.map((p) => ({ crc: fromBase64(p.checksum!), size: p.size })),
    );
    return { algorithm, value: toBase64(crc), type: "FULL_OBJECT" };
  }
  return {
    algorithm,
    value: compositeChecksum(algorithm, parts.map((p) => p.checksum!)),
    type: "COMPOSITE",
  };
}

/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-N". */
export function multipartEtag(partEtags: string[]): string {
  const md5 = md5Hasher();
  for (const etag of partEtags) md5.update(fromHex(etag));
  return `${toHex(md5.digest())}-${partEtags.length}`;
}

/** A composite checksum: the checksum of the concatenated part checksums, then "-N". */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partChecksums: string[]): string {
  const h = checksumHasher(algorithm);
  for (const c of partChecksums) h.update(fromBase64(c));
  return `${toBase64(h.digest())}-${partChecksums.length}`;
}

export interface CompleteOptions {
  /** The whole object's checksum the client announced (x-amz-checksum-*), in the upload's algorithm. */
  expectedChecksum?: string;
  /**
   * The checksum type the completion names: FULL_OBJECT makes a CRC upload
   * created without a type (composite by default) a full-object one.
   */
  checksumType?: ChecksumType;
  /** Checks the current object just before the upload's version is committed; throwing keeps the upload. */
  precondition?: (current: CurrentObject | undefined) => void;
  /** The object's size the client announced (x-amz-mp-object-size). */
  expectedSize?: number;
}

export async function completeUpload(
  store: Store,
  active: ActiveUpload,
  requested: { partNumber: number; etag: string; checksum?: string }[],
  options: CompleteOptions = {},
): Promise<{ version: ObjectVersion; meta: ObjectMeta }> {
  if (requested.length === 0) {
    throw new MultipartError("InvalidRequest", "You must specify at least one part");
  }
  if (
    active.checksumAlgorithm && active.checksumType === "FULL_OBJECT" &&
    options.checksumType === "COMPOSITE"
  ) {
    throw new MultipartError(
      "InvalidRequest",
      "The upload was created with the FULL_OBJECT checksum type; its completion cannot ask for COMPOSITE.",
    );
  }
  const uploaded = new Map(sortedParts(active.upload).map((p) => [p.partNumber, p.part]));
  // The whole list's order is checked first, as S3 does: a misordered list is
  // InvalidPartOrder whatever its parts' sizes.
  if (requested.some((r, i) => i > 0 && r.partNumber <= requested[i - 1].partNumber)) {
    throw new MultipartError(
      "InvalidPartOrder",
      "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
    );
  }
  const parts: DataPart[] = [];
  for (const [i, r] of requested.entries()) {
    const part = uploaded.get(r.partNumber);
    const etag = r.etag.trim().replace(/^"|"$/g, "");
    if (!part || part.etag !== etag) {
      throw new MultipartError(
        "InvalidPart",
        `One or more of the specified parts could not be found. Part ${r.partNumber} was not uploaded or its ETag does not match.`,
        { PartNumber: String(r.partNumber), ETag: r.etag },
      );
    }
    // A part's checksum, when the list gives it, is the one its upload verified.
    if (r.checksum !== undefined && r.checksum !== part.checksum) {
      throw new MultipartError(
        "InvalidPart",
        `One or more of the specified parts could not be found. The checksum given for part ${r.partNumber} is not the checksum of the part uploaded.`,
        { PartNumber: String(r.partNumber), ETag: r.etag },
      );
    }
    if (i < requested.length - 1 && part.size < PART_SIZE_MIN_BYTES) {
      throw new MultipartError(
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed object size.",
        {
          PartNumber: String(r.partNumber),
          ProposedSize: String(part.size),
          MinSizeAllowed: String(PART_SIZE_MIN_BYTES),
        },
      );
    }
    parts.push({
      partNumber: r.partNumber,
      dataId: part.dataId,
      size: part.size,
      etag: part.etag,
      checksum: part.checksum,
    });
  }
  const checksum = uploadChecksum(active, parts, options.checksumType);
  const expectedChecksum = options.expectedChecksum;
  // A composite checksum is written "value-N": compared without the count.
  const withoutCount = (v: string) => v.replace(/-\d+$/, "");
  if (
    expectedChecksum !== undefined &&
    (!checksum || withoutCount(expectedChecksum) !== withoutCount(checksum.value))
  ) {
    throw new MultipartError(
      "BadDigest",
      `The ${
        active.checksumAlgorithm ?? "checksum"
      } you specified did not match the calculated checksum.`,
    );
  }
  const size = parts.reduce((s, p) => s + p.size, 0);
  if (options.expectedSize !== undefined && options.expectedSize !== size) {
    throw new MultipartError(
      "InvalidRequest",
      `The object's size, ${size} bytes, is not the size announced (x-amz-mp-object-size: ${options.expectedSize})`,
    );
  }
  const meta: ObjectMeta = {
    size,
    etag: multipartEtag(parts.map((p) => p.etag)),
    headers: active.headers,
    checksum,
    ...(active.tags ? { tags: lww(store.nowMs(), active.tags) } : {}),
    ...(active.encryption ? { encryption: active.encryption } : {}),
    ...lockRegisters(active.lock, store.nowMs()),
  };
  const { bucketId, key, uploadId } = active.upload;
  // A completion is a conditional write, serialized with the key's others
  // through every node: of two completions, the later finds the upload
  // completed, where it would have written its parts over the first's, each
  // then releasing the parts the other kept. Where writes go to one node
  // (consistency_mode "dangerous"), so does the lock: it needs no majority
  // that the write does without.
  const stillUploading = (current: CurrentObject | undefined, entry: ObjectEntry | undefined) => {
    const now = entry?.versions.find((v) => v.uuid === uploadId);
    if (now?.state.state !== "uploading") {
      throw noSuchUpload(uploadId, "The multipart upload was completed or aborted meanwhile");
    }
    options.precondition?.(current);
  };
  const replicas = store.replication.readSet(store.objects.partitionOf(bucketId)).length;
  // The completed version is newer than everything written before completion.
  const version = await commitChecked(
    store,
    bucketId,
    key,
    stillUploading,
    (timestampMs) => ({
      uuid: active.version.uuid,
      timestampMs,
      ...versionedOf(active.version),
      state: { state: "complete", data: { type: "parts", meta, parts } },
    }),
    options.precondition !== undefined || store.replication.writeQuorum(replicas) > 1,
  );
  // Every part recorded before the end is in the ended entry, as are the
  // parts that newer uploads of their number replaced; one recorded after the
  // end releases its own data.
  const ended = await store.endUpload(uploadId) ?? active.upload;
  await store.releaseUnheld(version, uploadDataIds(ended));
  await store.clearUpload(ended);
  return { version, meta };
}

/** The object a multipart upload made, if it was completed and that version is still there. */
export async function completedUpload(
  store: Store,
  bucketId: string,
  key: string,
  uploadId: string,
): Promise<{ version: ObjectVersion; meta: ObjectMeta } | undefined> {
  const entry = await store.objects.get(bucketId, key);
  const version = entry?.versions.find((v) => v.uuid === uploadId);
  const state = version?.state;
  if (state?.state !== "complete" || state.data.type !== "parts") return undefined;
  return { version: version!, meta: state.data.meta };
}

export async function abortUpload(store: Store, active: ActiveUpload): Promise<void> {
  await abortVersion(store, active.upload.bucketId, active.upload.key, active.version);
}

export interface UploadListing {
  uploads: {
    key: string;
    uploadId: string;
    initiatedMs: number;
    /** The upload's checksum, if it was created with an algorithm. */
    checksum?: UploadChecksum;
  }[];
  commonPrefixes: string[];
  truncated: boolean;
}

/** What listing uploads reads of an object entry: no headers, parts or inline data. */
const UPLOADS_PICK = mergeablePick({ state: { checksumAlgorithm: true, checksumType: true } });

/** Uploads in progress in a bucket, ordered by key then upload id. */
export async function listUploads(
  store: Store,
  bucketId: string,
  query: {
    prefix: string;
    delimiter?: string;
    keyMarker?: string;
    uploadIdMarker?: string;
    maxUploads: number;
  },
): Promise<UploadListing> {
  const result: UploadListing = { uploads: [], commonPrefixes: [], truncated: false };
  const count = () => result.uploads.length + result.commonPrefixes.length;
  // No key is longer than S3 allows: a longer prefix matches none, and a
  // longer marker is read from its start (keys before it are skipped below).
  if (objectKeyTooLong(query.prefix)) return result;
  const start = query.keyMarker && utf8Prefix(query.keyMarker, OBJECT_KEY_MAX_BYTES);
  for await (
    const entry of store.objects.scan(bucketId, {
      prefix: query.prefix,
      start,
      pick: UPLOADS_PICK,
    })
  ) {
    const marker = entry.key === query.keyMarker && query.uploadIdMarker !== undefined
      ? entry.versions.find((v) => v.uuid === query.uploadIdMarker)
      : undefined;
    const uploads = entry.versions
      .flatMap((v) => {
        const state = v.state;
        if (state.state !== "uploading" || !state.multipart) return [];
        const algorithm = state.checksumAlgorithm as ChecksumAlgorithm | undefined;
        const checksum = algorithm
          ? { algorithm, type: state.checksumType ?? "COMPOSITE" as const }
          : undefined;
        return [{ key: entry.key, uploadId: v.uuid, initiatedMs: v.timestampMs, checksum }];
      })
      .sort((a, b) => a.initiatedMs - b.initiatedMs || (a.uploadId < b.uploadId ? -1 : 1));
    for (const u of uploads) {
      if (query.keyMarker !== undefined) {
        if (compareUtf8(u.key, query.keyMarker) < 0) continue;
        if (u.key === query.keyMarker) {
          if (query.uploadIdMarker === undefined) continue;
          // After the marker upload; aborted since the last page, its record keeps its place.
          // Completed or gone, the key's uploads are all listed again.
          if (
            marker !== undefined && marker.state.state !== "complete" &&
            (u.initiatedMs < marker.timestampMs ||
              u.initiatedMs === marker.timestampMs && u.uploadId <= marker.uuid)
          ) continue;
        }
      }
      if (query.delimiter) {
        const i = u.key.indexOf(query.delimiter, query.prefix.length);
        if (i >= 0) {
          const cp = u.key.slice(0, i + query.delimiter.length);
          if (result.commonPrefixes.at(-1) === cp) continue;
          if (query.keyMarker !== undefined && compareUtf8(cp, query.keyMarker) <= 0) continue;
          if (count() >= query.maxUploads) {
            result.truncated = true;
            return result;
          }
          result.commonPrefixes.push(cp);
          continue;
        }
      }
      if (count() >= query.maxUploads) {
        result.truncated = true;
        return result;
      }
      result.uploads.push(u);
    }
  }
  return result;
}

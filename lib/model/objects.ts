/**
 * Objects of a bucket: writing a new current version, reading it, deleting
 * it and listing keys. Version timestamps are always greater than every
 * version already known for the key, whatever the clock says.
 */
import type { ChecksumAlgorithm } from "../util/hash.ts";
import { prefixEnd } from "../table/table.ts";
import { compareUtf8 } from "../util/utf8_order.ts";
import {
  currentData,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectVersion,
  type StoredChecksum,
  type VersionData,
} from "./object_table.ts";
import { writeData, type WrittenData } from "./object_data.ts";
import type { Store } from "./store.ts";

export type CurrentObject = NonNullable<ReturnType<typeof currentData>>;

/** A timestamp newer than every version of the entry. */
export function nextTimestamp(store: Store, entry: ObjectEntry | undefined): number {
  const newest = entry?.versions.reduce((m, v) => Math.max(m, v.timestampMs), 0) ?? 0;
  return Math.max(store.nowMs(), newest + 1);
}

export async function getCurrent(
  store: Store,
  bucketId: string,
  key: string,
): Promise<CurrentObject | undefined> {
  return currentData(await store.objects.get(bucketId, key));
}

export interface PutObjectOptions {
  headers: [string, string][];
  maxSize: number;
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Checks the received data (digests, sizes); throwing aborts the write. */
  verify?: (written: WrittenData) => void | Promise<void>;
  /** Checks the current object just before the new version is committed; throwing aborts the write. */
  precondition?: (current: CurrentObject | undefined) => void;
  /** The checksum to store, computed once the data is verified. */
  storedChecksum?: (written: WrittenData) => StoredChecksum | undefined;
}

/** Streams `body` into a new version of `key` and makes it current once verified. */
export async function putObject(
  store: Store,
  bucketId: string,
  key: string,
  body: ReadableStream<Uint8Array> | null,
  options: PutObjectOptions,
): Promise<{ version: ObjectVersion; meta: ObjectMeta }> {
  const uuid = crypto.randomUUID();
  const before = await store.objects.get(bucketId, key);
  options.precondition?.(currentData(before));
  const timestampMs = nextTimestamp(store, before);
  let uploading = false;
  try {
    const written = await writeData(store, body, {
      dataId: uuid,
      maxSize: options.maxSize,
      checksumAlgorithm: options.checksumAlgorithm,
      allowInline: true,
      beforeFirstBlock: async () => {
        uploading = true;
        await store.objects.insert({
          bucketId,
          key,
          versions: [{
            uuid,
            timestampMs,
            state: { state: "uploading", multipart: false, headers: options.headers },
          }],
        });
      },
    });
    await options.verify?.(written);
    const meta: ObjectMeta = {
      size: written.size,
      etag: written.md5Hex,
      headers: options.headers,
      checksum: options.storedChecksum?.(written),
    };
    const data: VersionData = written.inline ? { type: "inline", meta, bytes: written.inline } : {
      type: "parts",
      meta,
      parts: [{ partNumber: 1, dataId: uuid, size: written.size, etag: written.md5Hex }],
    };
    options.precondition?.(await getCurrent(store, bucketId, key));
    const version: ObjectVersion = { uuid, timestampMs, state: { state: "complete", data } };
    await store.objects.insert({ bucketId, key, versions: [version] });
    return { version, meta };
  } catch (e) {
    if (uploading) {
      await store.objects.insert({
        bucketId,
        key,
        versions: [{ uuid, timestampMs, state: { state: "aborted" } }],
      });
    }
    throw e;
  }
}

/** Makes a delete marker the current version; returns whether an object existed. */
export async function deleteObject(store: Store, bucketId: string, key: string): Promise<boolean> {
  const entry = await store.objects.get(bucketId, key);
  if (!currentData(entry)) return false;
  await store.objects.insert({
    bucketId,
    key,
    versions: [{
      uuid: crypto.randomUUID(),
      timestampMs: nextTimestamp(store, entry),
      state: { state: "complete", data: { type: "deleteMarker" } },
    }],
  });
  return true;
}

export interface ListQuery {
  prefix: string;
  delimiter?: string;
  /** List keys strictly greater than this. */
  after?: string;
  /** `after` continues an earlier page (marker, continuation token): if it is a common prefix, skip its keys. */
  resume?: boolean;
  maxKeys: number;
}

export interface ListResult {
  objects: { key: string; object: CurrentObject }[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned, to continue after. */
  last?: string;
}

/**
 * Lists current objects in key order, grouping keys that share a prefix up
 * to the delimiter. A grouped prefix is skipped in one jump, so a listing with
 * a delimiter costs one read per result, not per key.
 */
export async function listObjects(
  store: Store,
  bucketId: string,
  query: ListQuery,
): Promise<ListResult> {
  const result: ListResult = { objects: [], commonPrefixes: [], truncated: false };
  let start = query.prefix;
  if (query.after !== undefined && compareUtf8(query.after, query.prefix) >= 0) {
    // Resuming after a common prefix returned earlier skips every key under it.
    const isCommonPrefix = query.resume === true && query.delimiter !== undefined &&
      query.after.startsWith(query.prefix) &&
      query.after.indexOf(query.delimiter, query.prefix.length) ===
        query.after.length - query.delimiter.length;
    const resume = isCommonPrefix ? prefixEnd(query.after) : query.after + "\u0000";
    if (resume === undefined) return result;
    start = resume;
  }
  const end = query.prefix === "" ? undefined : prefixEnd(query.prefix);
  const count = () => result.objects.length + result.commonPrefixes.length;
  const batch = Math.min(Math.max(query.maxKeys + 1, 10), 1000);
  scanning: while (true) {
    let scanned = 0;
    let restartAt: string | undefined;
    for await (const entry of store.objects.scan(bucketId, { start, end, limit: batch })) {
      scanned++;
      start = entry.key + "\u0000";
      const object = currentData(entry);
      if (!object) continue;
      let commonPrefix: string | undefined;
      if (query.delimiter) {
        const i = entry.key.indexOf(query.delimiter, query.prefix.length);
        if (i >= 0) commonPrefix = entry.key.slice(0, i + query.delimiter.length);
      }
      if (count() >= query.maxKeys) {
        result.truncated = true;
        break scanning;
      }
      if (commonPrefix !== undefined) {
        result.commonPrefixes.push(commonPrefix);
        result.last = commonPrefix;
        restartAt = prefixEnd(commonPrefix);
        if (restartAt === undefined) break scanning;
        break;
      }
      result.objects.push({ key: entry.key, object });
      result.last = entry.key;
    }
    if (restartAt !== undefined) {
      start = restartAt;
      continue;
    }
    if (scanned < batch) break;
  }
  return result;
}

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
import type { ValuePick } from "../db/db.ts";
import { lww } from "../util/crdt.ts";

export type CurrentObject = NonNullable<ReturnType<typeof currentData>>;

/** A timestamp newer than every version of the entry. */
export function nextTimestamp(store: Store, entry: ObjectEntry | undefined): number {
  const newest = entry?.versions.reduce((m, v) => Math.max(m, v.timestampMs), 0) ?? 0;
  return Math.max(store.nowMs(), newest + 1);
}

/** What replicas report of the entry they held before a write (see `writeNewest`). */
const TIMESTAMPS_PICK: ValuePick = { versions: { uuid: true, timestampMs: true } };

/**
 * Writes `version` of a replicated key timestamped now, in one round trip,
 * and again with a greater timestamp if a replica of the write quorum held
 * a version as new (its clock ahead of ours, or a concurrent write). A write
 * that ended before this one began is on a write quorum, which meets this
 * one's: so the version ends newer than every such write, as if its
 * timestamp had been read first. Resolves with the version as written last.
 */
async function writeNewest(
  store: Store,
  bucketId: string,
  key: string,
  version: (timestampMs: number) => ObjectVersion,
): Promise<ObjectVersion> {
  const first = version(store.nowMs());
  const seen = await store.objects.insertSeeing(
    { bucketId, key, versions: [first] },
    TIMESTAMPS_PICK,
  ) as (Pick<ObjectEntry, "versions"> | undefined)[];
  let newest = 0;
  for (const entry of seen) {
    for (const v of entry?.versions ?? []) {
      if (v.uuid !== first.uuid) newest = Math.max(newest, v.timestampMs);
    }
  }
  if (newest < first.timestampMs) return first;
  const again = version(Math.max(store.nowMs(), newest + 1));
  await store.objects.insert({ bucketId, key, versions: [again] });
  return again;
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
  /** The size the body is announced to have (Content-Length), when known. */
  sizeHint?: number;
  /** Checks the received data (digests, sizes); throwing aborts the write. */
  verify?: (written: WrittenData) => void | Promise<void>;
  /** Checks the current object just before the new version is committed; throwing aborts the write. */
  precondition?: (current: CurrentObject | undefined) => void;
  /** The checksum to store, computed once the data is verified. */
  storedChecksum?: (written: WrittenData) => StoredChecksum | undefined;
  /** The object's tags (x-amz-tagging). */
  tags?: [string, string][];
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
  // The timestamp must be newer than every version of the key: it is decided
  // against the stored entry, before the first block is stored, or when the
  // version is written (see below).
  let timestampMs: number | undefined;
  const readTimestamp = async () =>
    timestampMs = nextTimestamp(store, await store.objects.get(bucketId, key));
  if (options.precondition) {
    // Checked first, so that a request bound to fail does not send its body for nothing.
    const before = await store.objects.get(bucketId, key);
    options.precondition(currentData(before));
    timestampMs = nextTimestamp(store, before);
  }
  let uploading = false;
  try {
    const written = await writeData(store, body, {
      dataId: uuid,
      maxSize: options.maxSize,
      checksumAlgorithm: options.checksumAlgorithm,
      sizeHint: options.sizeHint,
      allowInline: true,
      beforeFirstBlock: async () => {
        uploading = true;
        await store.objects.insert({
          bucketId,
          key,
          versions: [{
            uuid,
            timestampMs: timestampMs ?? await readTimestamp(),
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
      ...(options.tags ? { tags: lww(store.nowMs(), options.tags) } : {}),
    };
    const data: VersionData = written.inline ? { type: "inline", meta, bytes: written.inline } : {
      type: "parts",
      meta,
      parts: [{ partNumber: 1, dataId: uuid, size: written.size, etag: written.md5Hex }],
    };
    const complete = (ts: number): ObjectVersion => ({
      uuid,
      timestampMs: ts,
      state: { state: "complete", data },
    });
    if (timestampMs === undefined) {
      // Inline data, no precondition: on the key's only replica, the version
      // is timestamped and written under the entry's lock, in one read; on
      // replicas, written at once and told what they held.
      let version: ObjectVersion | undefined;
      const alone = await store.objects.updateIfAlone(bucketId, key, (old) => {
        version = complete(nextTimestamp(store, old));
        return { bucketId, key, versions: [version] };
      });
      if (alone) return { version: version!, meta };
      return { version: await writeNewest(store, bucketId, key, complete), meta };
    }
    options.precondition?.(await getCurrent(store, bucketId, key));
    const version = complete(timestampMs!);
    await store.objects.insert({ bucketId, key, versions: [version] });
    return { version, meta };
  } catch (e) {
    if (uploading) {
      await abortVersion(store, bucketId, key, { uuid, timestampMs: timestampMs! });
    }
    throw e;
  }
}

/** Marks an upload's version aborted: it will never complete, and its data is released. */
export async function abortVersion(
  store: Store,
  bucketId: string,
  key: string,
  version: Pick<ObjectVersion, "uuid" | "timestampMs">,
): Promise<void> {
  await store.objects.insert({
    bucketId,
    key,
    versions: [{
      uuid: version.uuid,
      timestampMs: version.timestampMs,
      state: { state: "aborted" },
    }],
  });
}

/**
 * Makes a delete marker the current version; returns whether an object
 * existed. With `onlyVersion`, deletes only while that version is current.
 */
export async function deleteObject(
  store: Store,
  bucketId: string,
  key: string,
  onlyVersion?: string,
): Promise<boolean> {
  const deletable = (entry: ObjectEntry | undefined) => {
    const current = currentData(entry);
    return current !== undefined &&
      (onlyVersion === undefined || current.version.uuid === onlyVersion);
  };
  const marker = (entry: ObjectEntry): ObjectEntry => ({
    bucketId,
    key,
    versions: [{
      uuid: crypto.randomUUID(),
      timestampMs: nextTimestamp(store, entry),
      state: { state: "complete", data: { type: "deleteMarker" } },
    }],
  });
  // On the key's only replica: read and written under the entry's lock, in one read.
  const alone = await store.objects.updateIfAlone(
    bucketId,
    key,
    (old) => deletable(old) ? marker(old!) : undefined,
  );
  if (alone) return deletable(alone.old);
  const entry = await store.objects.get(bucketId, key);
  if (!deletable(entry)) return false;
  await store.objects.insert(marker(entry!));
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

/** What a listing tells of an object. */
export interface ListedObject {
  key: string;
  lastModifiedMs: number;
  size: number;
  etag: string;
  checksum?: StoredChecksum;
}

export interface ListResult {
  objects: ListedObject[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned, to continue after. */
  last?: string;
}

/**
 * What a listing reads of an object entry: every version, as merging needs,
 * but without headers, parts or inline data. Entries read so are only
 * merged and looked at, never written back.
 */
const LISTING_PICK: ValuePick = {
  key: true,
  versions: {
    uuid: true,
    timestampMs: true,
    state: { state: true, data: { type: true, meta: { size: true, etag: true, checksum: true } } },
  },
};

/**
 * Entries read first when keys may be grouped under common prefixes. Reads
 * double while keys come ungrouped; after a group is skipped, one entry is
 * read first, as the next key often starts another group.
 */
const GROUPED_READ_FIRST = 64;

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
  const { prefix, maxKeys } = query;
  const delimiter = query.delimiter || undefined;
  let start = prefix;
  if (query.after !== undefined && compareUtf8(query.after, prefix) >= 0) {
    // Resuming after a common prefix returned earlier skips every key under it.
    const isCommonPrefix = query.resume === true && delimiter !== undefined &&
      query.after.startsWith(prefix) &&
      commonPrefixOf(query.after, prefix.length, delimiter) === query.after;
    const resume = isCommonPrefix ? prefixEnd(query.after) : query.after + "\u0000";
    if (resume === undefined) return result;
    start = resume;
  }
  const end = prefix === "" ? undefined : prefixEnd(prefix);
  let count = 0;
  let readSize = delimiter === undefined ? Infinity : GROUPED_READ_FIRST;
  let afterJump = false;
  while (true) {
    // One entry more than still fits tells whether the listing is truncated.
    const limit = Math.min(maxKeys - count + 1, afterJump ? 1 : readSize);
    let read = 0;
    let lastRead = start;
    let jumpTo: string | undefined;
    reading: for await (
      const page of store.objects.scanPages(bucketId, { start, end, limit, pick: LISTING_PICK })
    ) {
      for (const entry of page) {
        const key = entry.key;
        read++;
        lastRead = key;
        const object = currentData(entry);
        if (!object) continue;
        if (count >= maxKeys) {
          result.truncated = true;
          return result;
        }
        count++;
        const commonPrefix = delimiter === undefined
          ? undefined
          : commonPrefixOf(key, prefix.length, delimiter);
        if (commonPrefix !== undefined) {
          result.commonPrefixes.push(commonPrefix);
          result.last = commonPrefix;
          jumpTo = prefixEnd(commonPrefix);
          if (jumpTo === undefined) return result;
          break reading;
        }
        const { version, data: { meta } } = object;
        result.objects.push({
          key,
          lastModifiedMs: version.timestampMs,
          size: meta.size,
          etag: meta.etag,
          checksum: meta.checksum,
        });
        result.last = key;
      }
    }
    if (jumpTo !== undefined) {
      start = jumpTo;
      afterJump = true;
    } else if (read < limit) {
      return result;
    } else {
      start = lastRead + "\u0000";
      if (!afterJump) readSize *= 2;
      afterJump = false;
    }
  }
}

/** The key up to the first delimiter after the listed prefix, if there is one. */
function commonPrefixOf(key: string, prefixLength: number, delimiter: string): string | undefined {
  const i = key.indexOf(delimiter, prefixLength);
  return i < 0 ? undefined : key.slice(0, i + delimiter.length);
}

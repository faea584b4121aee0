/**
 * Listings of a bucket in key order: current objects (ListObjects), or every
 * version (ListObjectVersions), with keys grouped under common prefixes.
 */
import { prefixEnd } from "../table/table.ts";
import { compareUtf8, objectKeyTooLong, utf8Prefix } from "../util/utf8_order.ts";
import { OBJECT_KEY_MAX_BYTES } from "../util/limits.ts";
import {
  currentData,
  isUnlistedMarker,
  mergeablePick,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectVersion,
  type StoredChecksum,
  versionIdOf,
} from "./object_table.ts";
import type { Store } from "./store.ts";

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

/** What a listing of versions tells of one: an object's data, or a delete marker. */
export interface ListedVersion {
  key: string;
  versionId: string;
  isLatest: boolean;
  lastModifiedMs: number;
  /** Undefined for a delete marker. */
  object?: ListedObject;
}

export interface ListResult<T = ListedObject> {
  objects: T[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned, to continue after. */
  last?: string;
}

/** What a listing reads of an object entry: no headers, parts or inline data. */
const LISTING_PICK = mergeablePick({
  data: { listed: true },
  meta: { size: true, checksum: true },
});

/**
 * Entries read first when keys may be grouped under common prefixes. Reads
 * double while keys come ungrouped; after a group is skipped, one entry is
 * read first, as the next key often starts another group.
 */
const GROUPED_READ_FIRST = 64;

/** Lists current objects. */
export function listObjects(
  store: Store,
  bucketId: string,
  query: ListQuery,
): Promise<ListResult> {
  return listEntries(store, bucketId, query, currentObjectOf);
}

/** Lists every version of every key (objects and delete markers), each key's newest first. */
export function listVersions(
  store: Store,
  bucketId: string,
  query: ListQuery,
): Promise<ListResult<ListedVersion>> {
  return listEntries(store, bucketId, query, listedVersionsOf);
}

const NONE: never[] = [];

function currentObjectOf(entry: ObjectEntry): ListedObject[] {
  const object = currentData(entry);
  return object ? [listedObject(entry.key, object.version, object.data.meta)] : NONE;
}

function listedObject(key: string, version: ObjectVersion, meta: ObjectMeta): ListedObject {
  const { size, etag, checksum } = meta;
  return { key, lastModifiedMs: version.timestampMs, size, etag, checksum };
}

/** The entry's complete versions (objects and listed delete markers), newest first. */
export function listedVersionsOf(entry: ObjectEntry): ListedVersion[] {
  return listedVersionsOlderThan(entry, undefined);
}

/**
 * The listed versions of an entry older than the one S3 names `versionId`,
 * newest first: a listing's next page after that version. Its record stays
 * when it was deleted by id since the last page, and keeps its place; with no
 * record of it left, every version is listed.
 */
export function listedVersionsOlderThan(
  entry: ObjectEntry,
  versionId: string | undefined,
): ListedVersion[] {
  const listed: ListedVersion[] = [];
  let latest = true;
  let passed = versionId === undefined;
  for (let i = entry.versions.length - 1; i >= 0; i--) {
    const version = entry.versions[i];
    const state = version.state.state;
    const shown = state === "complete" && !isUnlistedMarker(version);
    if (shown && passed) listed.push(listedVersion(entry.key, version, latest));
    if (shown) latest = false;
    if (!passed && (shown || state === "deleted") && versionIdOf(version) === versionId) {
      passed = true;
    }
  }
  return passed ? listed : listedVersionsOf(entry);
}

function listedVersion(key: string, version: ObjectVersion, isLatest: boolean): ListedVersion {
  const state = version.state;
  const data = state.state === "complete" ? state.data : undefined;
  const base = {
    key,
    versionId: versionIdOf(version),
    isLatest,
    lastModifiedMs: version.timestampMs,
  };
  if (!data || data.type === "deleteMarker") return base;
  return { ...base, object: listedObject(key, version, data.meta) };
}

/**
 * Lists the items of entries in key order, grouping keys that share a
 * prefix up to the delimiter. A grouped prefix is skipped in one jump, so a
 * listing with a delimiter costs one read per result, not per key. Each item
 * and each common prefix counts as one key of `maxKeys`.
 */
async function listEntries<T>(
  store: Store,
  bucketId: string,
  query: ListQuery,
  itemsOf: (entry: ObjectEntry) => T[],
): Promise<ListResult<T>> {
  const result: ListResult<T> = { objects: [], commonPrefixes: [], truncated: false };
  const { prefix, maxKeys } = query;
  const delimiter = query.delimiter || undefined;
  // No key is longer than S3 allows: a longer prefix matches none. A longer
  // `after` (more than the metadata store takes as a bound) is read from its
  // start, skipping the keys up to it; no key is under it as a common prefix.
  if (objectKeyTooLong(prefix)) return result;
  const clippedAfter = query.after && utf8Prefix(query.after, OBJECT_KEY_MAX_BYTES);
  const skipUpTo = clippedAfter !== query.after ? query.after : undefined;
  let start = prefix;
  if (skipUpTo !== undefined && compareUtf8(skipUpTo, prefix) >= 0) {
    start = clippedAfter!;
  } else if (query.after !== undefined && compareUtf8(query.after, prefix) >= 0) {
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
        if (skipUpTo !== undefined && compareUtf8(key, skipUpTo) <= 0) continue;
        const items = itemsOf(entry);
        if (items.length === 0) continue;
        if (count >= maxKeys) {
          result.truncated = true;
          return result;
        }
        const commonPrefix = delimiter === undefined
          ? undefined
          : commonPrefixOf(key, prefix.length, delimiter);
        if (commonPrefix !== undefined) {
          count++;
          result.commonPrefixes.push(commonPrefix);
          result.last = commonPrefix;
          jumpTo = prefixEnd(commonPrefix);
          if (jumpTo === undefined) return result;
          break reading;
        }
        for (const item of items) {
          if (count >= maxKeys) {
            result.truncated = true;
            return result;
          }
          count++;
          result.objects.push(item);
          result.last = key;
        }
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

/**
 * The object table: partition = bucket id, sort key = object key. An entry
 * holds the versions of one key; merging keeps every version newer than the
 * newest complete one, so an older write can never hide a newer one.
 */
import type { TableSchema } from "../table/schema.ts";
import { type Lww, mergeLww, stableMax } from "../util/crdt.ts";

/** Metadata returned with an object: size, ETag, headers, checksum. */
export interface ObjectMeta {
  size: number;
  /** Quoted-less hex MD5 (or MD5-of-MD5s with "-N" for multipart). */
  etag: string;
  /** Standard headers and x-amz-meta-*, lowercase names, in the order given. */
  headers: [string, string][];
  checksum?: StoredChecksum;
  /**
   * The object's tags (key, value), a register of their own: PutObjectTagging
   * rewrites the version with new tags, and the newest tags win.
   */
  tags?: Lww<[string, string][]>;
}

export interface StoredChecksum {
  algorithm: string;
  /** Base64 value, with "-N" for a composite multipart checksum. */
  value: string;
  type: "FULL_OBJECT" | "COMPOSITE";
}

/** One part of an object's data: a data id in the version table, or inline bytes. */
export interface DataPart {
  partNumber: number;
  dataId: string;
  size: number;
  etag: string;
  checksum?: string;
}

export type VersionData =
  | { type: "deleteMarker" }
  | { type: "inline"; meta: ObjectMeta; bytes: Uint8Array }
  | { type: "parts"; meta: ObjectMeta; parts: DataPart[] };

export type VersionState =
  | {
    state: "uploading";
    multipart: boolean;
    headers: [string, string][];
    checksumAlgorithm?: string;
    /** Tags given when a multipart upload was created, for the completed object. */
    tags?: [string, string][];
  }
  | { state: "complete"; data: VersionData }
  | { state: "aborted" };

export interface ObjectVersion {
  uuid: string;
  timestampMs: number;
  state: VersionState;
}

export interface ObjectEntry {
  bucketId: string;
  key: string;
  versions: ObjectVersion[];
}

// A completed version stays complete: an abort racing a completion loses.
const STATE_RANK = { uploading: 0, aborted: 1, complete: 2 } as const;

function newer(a: ObjectVersion, b: ObjectVersion): boolean {
  return a.timestampMs !== b.timestampMs ? a.timestampMs > b.timestampMs : a.uuid > b.uuid;
}

function mergeVersion(a: ObjectVersion, b: ObjectVersion): ObjectVersion {
  const ra = STATE_RANK[a.state.state];
  const rb = STATE_RANK[b.state.state];
  if (ra !== rb) return rb > ra ? b : a;
  // Two different completions of one upload: keep one deterministically.
  if (a.timestampMs !== b.timestampMs) return a.timestampMs > b.timestampMs ? a : b;
  // Most often two copies of the same version (replicas, read repair); they
  // may differ in their tags only, which merge as a register.
  const ta = tagsOf(a);
  const tb = tagsOf(b);
  if (ta === undefined && tb === undefined) return stableMax(a, b);
  const tags = ta && tb ? mergeLww(ta, tb) : ta ?? tb;
  return withTags(stableMax(withTags(a, undefined), withTags(b, undefined)), tags);
}

function tagsOf(v: ObjectVersion): Lww<[string, string][]> | undefined {
  const s = v.state;
  return s.state === "complete" && s.data.type !== "deleteMarker" ? s.data.meta.tags : undefined;
}

/** `v` with these tags (none: undefined); `v` itself when it has no data to tag. */
export function withTags(
  v: ObjectVersion,
  tags: Lww<[string, string][]> | undefined,
): ObjectVersion {
  const s = v.state;
  if (s.state !== "complete" || s.data.type === "deleteMarker") return v;
  const { tags: _old, ...rest } = s.data.meta;
  const meta: ObjectMeta = tags === undefined ? rest : { ...rest, tags };
  return { ...v, state: { state: "complete", data: { ...s.data, meta } } };
}

/** Versions sorted oldest first, without those older than the newest complete one. */
export function mergeVersions(a: ObjectVersion[], b: ObjectVersion[]): ObjectVersion[] {
  const byUuid = new Map<string, ObjectVersion>();
  for (const v of [...a, ...b]) {
    const existing = byUuid.get(v.uuid);
    byUuid.set(v.uuid, existing ? mergeVersion(existing, v) : v);
  }
  const all = [...byUuid.values()].sort((x, y) => (newer(x, y) ? 1 : -1));
  let lastComplete = -1;
  all.forEach((v, i) => {
    if (v.state.state === "complete") lastComplete = i;
  });
  return lastComplete < 0 ? all : all.slice(lastComplete);
}

/** The newest complete version, if any. */
export function currentVersion(entry: ObjectEntry): ObjectVersion | undefined {
  for (let i = entry.versions.length - 1; i >= 0; i--) {
    if (entry.versions[i].state.state === "complete") return entry.versions[i];
  }
  return undefined;
}

/** The object's current data, or undefined when it does not exist (never written, deleted). */
export function currentData(
  entry: ObjectEntry | undefined,
): { version: ObjectVersion; data: Exclude<VersionData, { type: "deleteMarker" }> } | undefined {
  if (!entry) return undefined;
  const version = currentVersion(entry);
  if (!version || version.state.state !== "complete") return undefined;
  const data = version.state.data;
  return data.type === "deleteMarker" ? undefined : { version, data };
}

export function isObjectTombstone(entry: ObjectEntry): boolean {
  return entry.versions.length === 1 && entry.versions[0].state.state === "complete" &&
    entry.versions[0].state.data.type === "deleteMarker";
}

export function objectSchema(
  updated?: TableSchema<ObjectEntry>["updated"],
): TableSchema<ObjectEntry> {
  return {
    name: "object",
    formatVersion: 1,
    partitionKey: (o) => o.bucketId,
    sortKey: (o) => o.key,
    merge: (a, b) => ({
      bucketId: a.bucketId,
      key: a.key,
      versions: mergeVersions(a.versions, b.versions),
    }),
    isTombstone: isObjectTombstone,
    tombstoneSinceMs: (o) => o.versions[o.versions.length - 1]?.timestampMs ?? 0,
    updated,
  };
}

/**
 * The object table: partition = bucket id, sort key = object key. An entry
 * holds the versions of one key. A version written while the bucket's
 * versioning is off (or suspended) is the key's "null" version, and a newer
 * null version replaces it; a version written while versioning is enabled is
 * kept until it is deleted by its id. So an older write can never hide a
 * newer one, and merging stays commutative, associative and idempotent.
 */
import type { TableSchema } from "../table/schema.ts";
import type { ValuePick } from "../db/db.ts";
import { type Lww, mergeOptionalLww, stableMax } from "../util/crdt.ts";
import type { DataEncryption } from "./data_key.ts";
import type { RetentionMode } from "./bucket_table.ts";
import { REPLACED_UPLOAD_KEPT_MS } from "../util/limits.ts";

/** A version's retention (object lock): it may not be deleted before `untilMs`. */
export interface Retention {
  mode: RetentionMode;
  untilMs: number;
}

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
  /** Set when the data is encrypted: with the client's key (SSE-C), or one kept here (SSE-S3). */
  encryption?: DataEncryption;
  /**
   * Object lock: the retention and the legal hold, registers of their own
   * as the tags are (PutObjectRetention and PutObjectLegalHold rewrite the
   * version, and the newest of each wins).
   */
  retention?: Lww<Retention | null>;
  legalHold?: Lww<boolean>;
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
  | {
    type: "deleteMarker";
    /**
     * Written while the bucket's versioning was set: a version of its own,
     * listed and kept until deleted by id. Without versioning (and not
     * versioned), a delete marker only records a deletion until it is
     * collected.
     */
    listed?: true;
  }
  | { type: "inline"; meta: ObjectMeta; bytes: Uint8Array }
  | { type: "parts"; meta: ObjectMeta; parts: DataPart[] };

export type VersionState =
  | {
    state: "uploading";
    multipart: boolean;
    headers: [string, string][];
    checksumAlgorithm?: string;
    /**
     * A multipart upload's object checksum is the CRC of the whole object
     * (combined from its parts' CRCs); absent, it is the composite checksum
     * of the parts' checksums.
     */
    checksumType?: "FULL_OBJECT";
    /** Tags given when a multipart upload was created, for the completed object. */
    tags?: [string, string][];
    /** A multipart upload's parts are encrypted (SSE-C or SSE-S3). */
    encryption?: DataEncryption;
    /** The object lock the completed object gets. */
    retention?: Retention;
    legalHold?: boolean;
    /**
     * A single upload's coordinator: its node and that node's process
     * (`DataJournal.run`), so that the node's next process knows the upload
     * died with the one before (absent before 2026-11-28, and on multipart
     * uploads).
     */
    coordinator?: { node: string; run: string };
  }
  | { state: "complete"; data: VersionData }
  /**
   * An upload aborted, or, with `replaced`, the trace of a multipart
   * upload's null version that a newer null version replaced (see
   * mergeVersions).
   */
  | { state: "aborted"; replaced?: true }
  /** A complete version deleted by its id (DeleteObject with versionId): it never comes back. */
  | { state: "deleted" };

export interface ObjectVersion {
  uuid: string;
  timestampMs: number;
  /**
   * Written while the bucket's versioning was enabled: the version's id is
   * its uuid, and newer versions do not replace it. Without it, the version is
   * the key's "null" version. Decided when the version is created (for a
   * multipart upload, when it starts), and the same in every state.
   */
  versioned?: true;
  state: VersionState;
}

export interface ObjectEntry {
  bucketId: string;
  key: string;
  versions: ObjectVersion[];
}

// A completed version stays complete against the abort of an upload still in
// progress, but an abort that meets a completion of the same upload ends it
// as a deletion by version id (see mergeVersion). A deletion by version id
// wins over everything. The trace of a replaced version ranks with its
// completion, and wins at the same time.
const STATE_RANK = { uploading: 0, aborted: 1, complete: 2, deleted: 3 } as const;

function rankOf(v: ObjectVersion): number {
  return isReplacedTrace(v) ? STATE_RANK.complete : STATE_RANK[v.state.state];
}

function isReplacedTrace(v: ObjectVersion): boolean {
  return v.state.state === "aborted" && v.state.replaced === true;
}

function newer(a: ObjectVersion, b: ObjectVersion): boolean {
  return a.timestampMs !== b.timestampMs ? a.timestampMs > b.timestampMs : a.uuid > b.uuid;
}

/**
 * A completion and an abort of one upload meet only when the completion
 * reached fewer replicas than a quorum (its coordinator died, its client was
 * told it failed and aborted) or raced the abort: a completion a quorum
 * acknowledged is never aborted afterwards, since an abort reads the upload
 * from a quorum first. The abort has released the upload's data everywhere,
 * so the version ends deleted, at the completion's time: it replaces older
 * null versions as the completion did, and shows no object whose blocks are
 * gone.
 */
function abortMeetsCompletion(x: ObjectVersion, y: ObjectVersion): ObjectVersion | undefined {
  if (x.state.state !== "aborted" || isReplacedTrace(x) || rankOf(y) !== STATE_RANK.complete) {
    return undefined;
  }
  return {
    uuid: y.uuid,
    timestampMs: y.timestampMs,
    ...versionedOf(y),
    state: { state: "deleted" },
  };
}

function mergeVersion(a: ObjectVersion, b: ObjectVersion): ObjectVersion {
  const ended = abortMeetsCompletion(a, b) ?? abortMeetsCompletion(b, a);
  if (ended) return ended;
  const ra = rankOf(a);
  const rb = rankOf(b);
  if (ra !== rb) {
    const [winner, loser] = rb > ra ? [b, a] : [a, b];
    // A deletion keeps the latest time of the completions it met, whatever the order it met them in.
    if (
      winner.state.state === "deleted" && rankOf(loser) === STATE_RANK.complete &&
      loser.timestampMs > winner.timestampMs
    ) {
      return { ...winner, timestampMs: loser.timestampMs };
    }
    return winner;
  }
  // Two different completions of one upload: keep one deterministically.
  if (a.timestampMs !== b.timestampMs) return a.timestampMs > b.timestampMs ? a : b;
  if (isReplacedTrace(a) !== isReplacedTrace(b)) return isReplacedTrace(a) ? a : b;
  // Most often two copies of the same version (replicas, read repair); they
  // may differ in their metadata's registers only, which merge one by one.
  const ma = metaOf(a);
  const mb = metaOf(b);
  if (!ma || !mb || !META_REGISTERS.some((name) => ma[name] || mb[name])) return stableMax(a, b);
  const merged: MetaRegisters = {
    tags: mergeOptionalLww(ma.tags, mb.tags),
    retention: mergeOptionalLww(ma.retention, mb.retention),
    legalHold: mergeOptionalLww(ma.legalHold, mb.legalHold),
  };
  return withRegisters(stableMax(withRegisters(a, {}), withRegisters(b, {})), merged);
}

/** The registers of a version's metadata that requests rewrite on their own (see ObjectMeta). */
const META_REGISTERS = ["tags", "retention", "legalHold"] as const;
export type MetaRegisters = Partial<Pick<ObjectMeta, typeof META_REGISTERS[number]>>;

function metaOf(v: ObjectVersion): ObjectMeta | undefined {
  const s = v.state;
  return s.state === "complete" && s.data.type !== "deleteMarker" ? s.data.meta : undefined;
}

/**
 * `v` with exactly these registers in its metadata (those left out are
 * removed); `v` itself when it has no metadata (a delete marker).
 */
function withRegisters(v: ObjectVersion, registers: MetaRegisters): ObjectVersion {
  const s = v.state;
  if (s.state !== "complete" || s.data.type === "deleteMarker") return v;
  const { tags: _t, retention: _r, legalHold: _l, ...rest } = s.data.meta;
  const meta: ObjectMeta = { ...rest };
  if (registers.tags) meta.tags = registers.tags;
  if (registers.retention) meta.retention = registers.retention;
  if (registers.legalHold) meta.legalHold = registers.legalHold;
  return { ...v, state: { state: "complete", data: { ...s.data, meta } } };
}

/** `v` with one register of its metadata set, the others kept. */
export function withRegister<N extends keyof MetaRegisters>(
  v: ObjectVersion,
  name: N,
  value: MetaRegisters[N],
): ObjectVersion {
  const meta = metaOf(v);
  if (!meta) return v;
  const { tags, retention, legalHold } = meta;
  return withRegisters(v, { tags, retention, legalHold, [name]: value });
}

/**
 * Versions sorted oldest first, without the null versions that a newer null
 * version replaced. A version that is complete, or deleted by its id,
 * replaces what it would have replaced as complete.
 *
 * A multipart upload in progress is not replaced, as in S3: it goes on
 * whatever is written to its key meanwhile, and once complete it is newer
 * than all of that; unless the newest write that replaced it came more than
 * REPLACED_UPLOAD_KEPT_MS after its start. So that a replica that missed an
 * upload's end (completion, abort, deletion) cannot bring it back as in
 * progress, the replaced records that may end an upload stay as long: an
 * abort or a deletion as it is, a multipart completion as an aborted record
 * marked `replaced` (its data goes).
 *
 * Why this stays a proper merge: a null version's records are all replaced
 * by the same newer null versions, whatever their state; versioned ones are
 * never replaced (an uploading versioned version must not lose its data to a
 * newer one); a record is kept, traced or dropped by its state and its age
 * against the newest replacing version, and the state a merge keeps only
 * rises while the newest replacing version only gets newer; an upload's end
 * is never older than its start, so its trace outlasts its record in
 * progress; and a version that replaces others keeps doing so in every
 * later state, or is itself replaced by one that replaces them too.
 */
export function mergeVersions(a: ObjectVersion[], b: ObjectVersion[]): ObjectVersion[] {
  const byUuid = new Map<string, ObjectVersion>();
  for (const v of [...a, ...b]) {
    const existing = byUuid.get(v.uuid);
    byUuid.set(v.uuid, existing ? mergeVersion(existing, v) : v);
  }
  const all = [...byUuid.values()].sort((x, y) => (newer(x, y) ? 1 : -1));
  let lastNullReplacing = -1;
  all.forEach((v, i) => {
    if (!v.versioned && (v.state.state === "complete" || v.state.state === "deleted")) {
      lastNullReplacing = i;
    }
  });
  if (lastNullReplacing <= 0) return all;
  const replacedAtMs = all[lastNullReplacing].timestampMs;
  const kept: ObjectVersion[] = [];
  all.forEach((v, i) => {
    if (i >= lastNullReplacing || v.versioned) {
      kept.push(v);
    } else if (replacedAtMs - v.timestampMs <= REPLACED_UPLOAD_KEPT_MS) {
      const left = replacedRecord(v);
      if (left) kept.push(left);
    }
  });
  return kept;
}

/** What a null version that a newer one replaced leaves in its entry (see mergeVersions). */
function replacedRecord(v: ObjectVersion): ObjectVersion | undefined {
  const s = v.state;
  if (isMultipartInProgress(v) || s.state === "aborted" || s.state === "deleted") return v;
  const multipartCompletion = s.state === "complete" && s.data.type === "parts" &&
    s.data.meta.etag.includes("-");
  if (!multipartCompletion) return undefined;
  return { uuid: v.uuid, timestampMs: v.timestampMs, state: { state: "aborted", replaced: true } };
}

/**
 * What a read that picks parts of object entries (listings) must read of
 * each version for mergeVersions to merge replicas' copies right: ids,
 * times, states, whether a null version is a multipart upload or its
 * completion, and replaced traces. `extra` adds what the reader itself
 * needs, at the level it names. Entries read so are only merged and looked
 * at, never written back.
 */
export function mergeablePick(
  extra: { state?: ValuePick; data?: ValuePick; meta?: ValuePick },
): ValuePick {
  return {
    key: true,
    versions: {
      uuid: true,
      timestampMs: true,
      versioned: true,
      state: {
        state: true,
        multipart: true,
        replaced: true,
        ...extra.state,
        data: { type: true, ...extra.data, meta: { etag: true, ...extra.meta } },
      },
    },
  };
}

/** A PutObject (a single upload) not completed nor aborted yet. */
export function isSingleUploadInProgress(v: ObjectVersion): boolean {
  return v.state.state === "uploading" && !v.state.multipart;
}

/** A multipart upload not completed nor aborted yet. */
export function isMultipartInProgress(v: ObjectVersion): boolean {
  return v.state.state === "uploading" && v.state.multipart;
}

/** The `versioned` flag of `v`, to give another record of the same version. */
export function versionedOf(v: Pick<ObjectVersion, "versioned">): { versioned?: true } {
  return v.versioned ? { versioned: true } : {};
}

/** The id S3 names a version by: its uuid when versioned, else "null". */
export function versionIdOf(v: ObjectVersion): string {
  return v.versioned ? v.uuid : "null";
}

/** The complete version (object or delete marker) with this S3 version id, if any. */
export function findVersion(
  entry: ObjectEntry | undefined,
  versionId: string,
): ObjectVersion | undefined {
  if (!entry) return undefined;
  for (let i = entry.versions.length - 1; i >= 0; i--) {
    const v = entry.versions[i];
    if (v.state.state === "complete" && versionIdOf(v) === versionId) return v;
  }
  return undefined;
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

export function isDeleteMarker(v: ObjectVersion): boolean {
  return v.state.state === "complete" && v.state.data.type === "deleteMarker";
}

/** A delete marker that only records a deletion: not versioned, written without versioning. */
export function isUnlistedMarker(v: ObjectVersion): boolean {
  const s = v.state;
  return s.state === "complete" && s.data.type === "deleteMarker" && !v.versioned && !s.data.listed;
}

/**
 * An entry that only records deletions: null delete markers, versions deleted
 * by id, aborted uploads. Once every replica holds it, it can go.
 */
export function isObjectTombstone(entry: ObjectEntry): boolean {
  return entry.versions.every((v) => {
    const s = v.state;
    if (s.state === "complete") return isUnlistedMarker(v);
    return s.state === "deleted" || s.state === "aborted";
  });
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

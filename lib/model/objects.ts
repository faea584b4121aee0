/**
 * Objects of a bucket: writing a new current version, reading it or an older
 * one, and deleting them. Version timestamps are always greater than every
 * version already known for the key, whatever the clock says.
 */
import type { ChecksumAlgorithm } from "../util/hash.ts";
import {
  currentData,
  currentVersion,
  findVersion,
  isUnlistedMarker,
  type MetaRegisters,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectVersion,
  type StoredChecksum,
  type VersionData,
  versionedOf,
  withRegister,
} from "./object_table.ts";
import { writeData, type WrittenData } from "./object_data.ts";
import type { Store } from "./store.ts";
import type { BucketSettings } from "./bucket_table.ts";
import type { ValuePick } from "../db/db.ts";
import { type DataKey, etagOfData } from "./data_key.ts";
import { lockRegisters, type LockRequest, ObjectLockedError, protectionOf } from "./object_lock.ts";
import { lww, lwwAfter } from "../util/crdt.ts";
import { untrustedClock } from "../rpc/clock_trust.ts";
import { log } from "../util/log.ts";
import { CONFLICT_SPREAD_WAIT_MS } from "../util/limits.ts";
import { sleep } from "../util/worker.ts";
import type { DataOwner } from "./data_journal.ts";
import { errorMessage } from "../util/errors.ts";

export type CurrentObject = NonNullable<ReturnType<typeof currentData>>;

/** How a bucket keeps versions (S3's versioning status); undefined: never set. */
export type Versioning = BucketSettings["versioning"] | undefined;

/** The flag of versions written under `versioning`: only "Enabled" keeps older ones. */
export function versionedFlag(versioning: Versioning): { versioned?: true } {
  return versioning === "Enabled" ? { versioned: true } : {};
}

/** A timestamp newer than every version of the entry. */
export function nextTimestamp(store: Store, entry: ObjectEntry | undefined): number {
  const newest = entry?.versions.reduce((m, v) => Math.max(m, v.timestampMs), 0) ?? 0;
  return Math.max(store.nowMs(), newest + 1);
}

/** What replicas report of the entry they held before a write (see `writeNewest`). */
const TIMESTAMPS_PICK: ValuePick = {
  versions: { uuid: true, timestampMs: true, state: { state: true } },
};

/** A version that a conditional write's check did not see came before its write. */
export class ConditionalConflictError extends Error {
  constructor(key: string) {
    super(
      `Another write of "${key}" landed between this conditional write's check and its ` +
        "write: retry the request",
    );
    this.name = "ConditionalConflictError";
  }
}

/**
 * Writes `version` of a replicated key timestamped now, in one round trip,
 * and again with a greater timestamp if a replica of the write quorum held
 * a version as new (its clock ahead of ours, or a concurrent write). A write
 * that ended before this one began is on a write quorum, which meets this
 * one's: so the version ends newer than every such write, as if its
 * timestamp had been read first. Resolves with the version as written last.
 *
 * A conditional write passes the entry its precondition held for (`checked`,
 * undefined when there was none): it is timestamped newer than that, and a
 * complete version newer still, which came after the check, is not written
 * over (the condition may no longer hold): ConditionalConflictError, the
 * version left older.
 */
async function writeNewest(
  store: Store,
  bucketId: string,
  key: string,
  version: (timestampMs: number) => ObjectVersion,
  conditional?: { checked: ObjectEntry | undefined },
): Promise<ObjectVersion> {
  const first = version(
    conditional ? nextTimestamp(store, conditional.checked) : store.nowMs(),
  );
  const seen = await store.objects.insertSeeing(
    { bucketId, key, versions: [first] },
    TIMESTAMPS_PICK,
  ) as (Pick<ObjectEntry, "versions"> | undefined)[];
  let newest = 0;
  let newerComplete = false;
  for (const entry of seen) {
    for (const v of entry?.versions ?? []) {
      if (v.uuid === first.uuid) continue;
      newest = Math.max(newest, v.timestampMs);
      // A replica from before states were reported tells none: re-timestamped as before.
      if (v.timestampMs >= first.timestampMs && v.state?.state === "complete") {
        newerComplete = true;
      }
    }
  }
  if (newest < first.timestampMs) return first;
  if (conditional && newerComplete) {
    // That version may be on one replica alone (a write that failed after
    // reaching it), where quorum reads miss it: each retry's check would
    // miss it too, and meet it again, until anti-entropy spread it.
    const spread = store.objects.spreadCopies(bucketId, key).catch((e) =>
      log(
        "remise::model",
        "warn",
        `cannot spread the versions of ${key} that a conditional write met: ${errorMessage(e)}`,
      )
    );
    const waited = new AbortController();
    await Promise.race([spread, sleep(CONFLICT_SPREAD_WAIT_MS, waited.signal)]);
    waited.abort();
    throw new ConditionalConflictError(key);
  }
  const again = version(Math.max(store.nowMs(), newest + 1));
  await store.objects.insert({ bucketId, key, versions: [again] });
  return again;
}

/**
 * Runs `commit` (a write's last check of its precondition, if any, then the
 * write) alone among this node's commits of the key, and a `conditional` one
 * also alone among the conditional commits of the key through every node
 * (see KeyCommitLocks): of two conditional writes of one key, the second
 * checks what the first wrote. `commit` calls `confirmLocks` between its
 * check and its write: it rejects (a 503) if the replicas no longer hold the
 * locks; so does the commit, if they no longer hold them once it wrote. An
 * unconditional write through another node may land between a check and its
 * write (see README, Known limitations).
 */
async function commitSerialized<T>(
  store: Store,
  bucketId: string,
  key: string,
  conditional: boolean,
  commit: (confirmLocks: () => Promise<void>) => Promise<T>,
): Promise<T> {
  const lock = await store.keyCommits.acquire(bucketId, key, conditional);
  try {
    const committed = await commit(() => lock.confirm());
    // Still held once written: no other conditional write came between (see KeyCommitLocks).
    await lock.confirm(true);
    return committed;
  } finally {
    lock.release();
  }
}

/**
 * Writes the version `make` returns, given a timestamp newer than every
 * version of the key this node reads, once `precondition` holds for the
 * key's current object (and its entry, every version); serialized as
 * commitSerialized says, through every node when `conditional` (by default,
 * when there is a precondition). `make` is called only once the precondition
 * held.
 */
export async function commitChecked(
  store: Store,
  bucketId: string,
  key: string,
  precondition:
    | ((current: CurrentObject | undefined, entry: ObjectEntry | undefined) => void)
    | undefined,
  make: (timestampMs: number) => ObjectVersion,
  conditional = precondition !== undefined,
): Promise<ObjectVersion> {
  return await commitSerialized(store, bucketId, key, conditional, async (confirmLocks) => {
    const entry = await store.objects.get(bucketId, key);
    precondition?.(currentData(entry), entry);
    await confirmLocks();
    const version = make(nextTimestamp(store, entry));
    await store.objects.insert({ bucketId, key, versions: [version] });
    return version;
  });
}

export async function getCurrent(
  store: Store,
  bucketId: string,
  key: string,
): Promise<CurrentObject | undefined> {
  return currentData(await store.objects.get(bucketId, key));
}

/** A version looked up by id: its data, a delete marker, or nothing of that id. */
export type FoundVersion =
  | { kind: "object"; object: CurrentObject }
  | { kind: "deleteMarker"; version: ObjectVersion }
  | { kind: "none" };

/**
 * The version S3 names `versionId` of the key; the current one when
 * `versionId` is undefined. A deletion written without versioning is no
 * delete marker to S3, only the object's absence (a node that runs alone
 * drops its record at once; a cluster keeps it until every replica has it).
 */
export async function getVersion(
  store: Store,
  bucketId: string,
  key: string,
  versionId: string | undefined,
): Promise<FoundVersion> {
  const entry = await store.objects.get(bucketId, key);
  const version = versionId === undefined
    ? entry && currentVersion(entry)
    : findVersion(entry, versionId);
  if (!version || version.state.state !== "complete" || isUnlistedMarker(version)) {
    return { kind: "none" };
  }
  const data = version.state.data;
  if (data.type === "deleteMarker") return { kind: "deleteMarker", version };
  return { kind: "object", object: { version, data } };
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
  /** The bucket's versioning: whether the new version replaces the key's null version. */
  versioning?: Versioning;
  /** Encrypts the data (SSE-C or SSE-S3). */
  encryptWith?: DataKey;
  /** Object lock: the new version's retention and legal hold. */
  lock?: LockRequest;
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
  const flag = versionedFlag(options.versioning);
  if (options.precondition) {
    // Checked first, so that a request bound to fail does not send its body for nothing.
    options.precondition(await getCurrent(store, bucketId, key));
  }
  // As in S3, of two writes of one key the one that ends last wins: the
  // version is timestamped when it is written, newer than every version its
  // replicas then hold (below). Data stored in blocks is first recorded as
  // an upload in progress, timestamped then and newer than the versions it
  // finds, so that it shows (a bucket with it is not empty) and is collected
  // if its node dies; a newer version may replace that record meanwhile,
  // and the completed version takes its place again (see Store's objects).
  let uploadingSinceMs: number | undefined;
  let committing = false;
  // Noted in the node's journal (see DataJournal) when it may take more than
  // one block: a note costs a commit, which an object of one block would feel.
  const noted = !(options.sizeHint !== undefined && options.sizeHint <= store.blockSize);
  try {
    const written = await writeData(store, body, {
      dataId: uuid,
      maxSize: options.maxSize,
      checksumAlgorithm: options.checksumAlgorithm,
      sizeHint: options.sizeHint,
      // A versioned key keeps every version in its entry: inline data would
      // make the entry, read and rewritten by each write, grow by the data.
      allowInline: !flag.versioned,
      encryptWith: options.encryptWith,
      beforeFirstBlock: async () => {
        const since = nextTimestamp(store, await store.objects.get(bucketId, key));
        uploadingSinceMs = since;
        await Promise.all([
          noted && store.journal.begin(uuid, { kind: "object", bucketId, key }),
          store.objects.insert({
            bucketId,
            key,
            versions: [{
              uuid,
              timestampMs: since,
              ...flag,
              state: {
                state: "uploading",
                multipart: false,
                headers: options.headers,
                coordinator: { node: store.replication.nodeId, run: store.journal.run },
              },
            }],
          }),
        ]);
      },
    });
    await options.verify?.(written);
    const dataKey = options.encryptWith;
    const etag = etagOfData(written.md5Hex, dataKey);
    const meta: ObjectMeta = {
      size: written.size,
      etag,
      headers: options.headers,
      checksum: options.storedChecksum?.(written),
      ...(options.tags ? { tags: lww(store.nowMs(), options.tags) } : {}),
      ...(dataKey ? { encryption: dataKey.newEncryption() } : {}),
      ...lockRegisters(options.lock, store.nowMs()),
    };
    const data: VersionData = written.inline ? { type: "inline", meta, bytes: written.inline } : {
      type: "parts",
      meta,
      parts: [{ partNumber: 1, dataId: uuid, size: written.size, etag }],
    };
    const complete = (ts: number): ObjectVersion => ({
      uuid,
      timestampMs: ts,
      ...flag,
      state: { state: "complete", data },
    });
    const { precondition } = options;
    const version = await commitSerialized(
      store,
      bucketId,
      key,
      !!precondition,
      async (confirmLocks) => {
        // On the key's only replica, the precondition is checked and the version
        // timestamped and written under the entry's lock, in one read.
        let version: ObjectVersion | undefined;
        const alone = await store.objects.updateIfAlone(bucketId, key, (old) => {
          precondition?.(currentData(old));
          committing = true;
          version = complete(nextTimestamp(store, old));
          return { bucketId, key, versions: [version] };
        });
        if (alone) return version!;
        let conditional: { checked: ObjectEntry | undefined } | undefined;
        if (precondition) {
          conditional = { checked: await store.objects.get(bucketId, key) };
          precondition(currentData(conditional.checked));
        }
        await confirmLocks();
        committing = true;
        // On replicas, written at once, and told what they held.
        return await writeNewest(store, bucketId, key, complete, conditional);
      },
    );
    if (uploadingSinceMs !== undefined && noted) store.journal.end(uuid);
    return { version, meta };
  } catch (e) {
    // A version whose final write failed may have reached some replicas and
    // show yet: its data stays, noted for the journal's settling, which
    // reads every replica. Before that write, the upload ends.
    if (uploadingSinceMs !== undefined) {
      const version = { uuid, timestampMs: uploadingSinceMs, ...flag };
      if (!committing && await abandonUpload(store, bucketId, key, version)) {
        if (noted) store.journal.end(uuid);
      } else {
        await leaveNote(store, noted, uuid, { kind: "object", bucketId, key });
      }
    }
    throw e;
  }
}

/**
 * Leaves a failed PutObject's data to the journal's settling (see
 * DataJournal.leave), noting it first if its upload took no note.
 */
async function leaveNote(store: Store, noted: boolean, uuid: string, owner: DataOwner) {
  try {
    if (!noted) await store.journal.begin(uuid, owner);
    store.journal.leave([uuid]);
  } catch (e) {
    // Its record, left uploading, is aborted by the node's next process.
    log("remise::model", "warn", `upload ${uuid} of ${owner.key} not noted: ${errorMessage(e)}`);
  }
}

/**
 * Ends a PutObject that failed before its version was written: marks the
 * version aborted and releases its data, which it never names, even when
 * the mark cannot be written now (too few replicas) or its record was
 * replaced by a newer version already. Resolves with whether both were
 * done; if not, the upload's note is left to the journal's settling, which
 * aborts a record left uploading once every replica answers.
 */
async function abandonUpload(
  store: Store,
  bucketId: string,
  key: string,
  version: Pick<ObjectVersion, "uuid" | "timestampMs" | "versioned">,
): Promise<boolean> {
  const failed = (what: string) => (e: unknown) => {
    log("remise::model", "warn", `upload ${version.uuid} of ${key}: ${what}: ${errorMessage(e)}`);
    return false;
  };
  const marked = await abortVersion(store, bucketId, key, version)
    .then(() => true, failed("not marked aborted"));
  const released = await store.releaseData(version.uuid)
    .then(() => true, failed("data not released"));
  return marked && released;
}

/**
 * Writes the version again with one register of its metadata set (tags,
 * retention, legal hold), newer than the one it had whatever this node's
 * clock says; the newest of each register wins (see ObjectMeta).
 */
export async function setMetaRegister<N extends keyof MetaRegisters>(
  store: Store,
  bucketId: string,
  key: string,
  object: CurrentObject,
  name: N,
  value: NonNullable<MetaRegisters[N]>["v"],
): Promise<ObjectVersion> {
  const register = lwwAfter(object.data.meta[name], store.nowMs(), value) as MetaRegisters[N];
  const version = withRegister(object.version, name, register);
  await store.objects.insert({ bucketId, key, versions: [version] });
  return version;
}

/**
 * Why a version whose retention this node's clock says is over is still
 * kept: that clock is far from its peers' (see clock_trust.ts), and a clock
 * set ahead would end every retention early.
 */
function retentionOnDoubtfulClock(
  store: Store,
  meta: ObjectMeta,
  bypassGovernance = false,
): string | undefined {
  // Whether the retention would hold if its date had not come.
  const retained = protectionOf(meta, Number.NEGATIVE_INFINITY, bypassGovernance);
  if (!retained) return undefined;
  const distrust = untrustedClock(store.replication);
  return distrust && `${retained}, and ${distrust}`;
}

/** Marks an upload's version aborted: it will never complete, and its data is released. */
export async function abortVersion(
  store: Store,
  bucketId: string,
  key: string,
  version: Pick<ObjectVersion, "uuid" | "timestampMs" | "versioned">,
): Promise<void> {
  await store.objects.insert({
    bucketId,
    key,
    versions: [{
      uuid: version.uuid,
      timestampMs: version.timestampMs,
      ...versionedOf(version),
      state: { state: "aborted" },
    }],
  });
}

export interface DeleteObjectOptions {
  /** The bucket's versioning: without it, a key with no object is left alone where it has one replica. */
  versioning?: Versioning;
  /** Deletes only while this version (uuid) is current, and only if there is an object. */
  onlyVersion?: string;
}

/**
 * Makes a delete marker the current version. Without versioning, only when
 * an object exists on a node that holds the key alone; in a cluster, and with
 * versioning, always (S3 stacks markers). Resolves with the marker written,
 * if one was.
 */
export async function deleteObject(
  store: Store,
  bucketId: string,
  key: string,
  options: DeleteObjectOptions = {},
): Promise<ObjectVersion | undefined> {
  const { versioning, onlyVersion } = options;
  const deletable = (entry: ObjectEntry | undefined) => {
    if (onlyVersion === undefined && versioning !== undefined) return true;
    const current = currentData(entry);
    return current !== undefined &&
      (onlyVersion === undefined || current.version.uuid === onlyVersion);
  };
  let written: ObjectVersion | undefined;
  const marker = (entry: ObjectEntry | undefined): ObjectEntry => {
    written = {
      uuid: crypto.randomUUID(),
      timestampMs: nextTimestamp(store, entry),
      ...versionedFlag(versioning),
      state: {
        state: "complete",
        data: { type: "deleteMarker", ...(versioning === "Suspended" ? { listed: true } : {}) },
      },
    };
    return { bucketId, key, versions: [written] };
  };
  const conditional = onlyVersion !== undefined;
  return await commitSerialized(store, bucketId, key, conditional, async (confirmLocks) => {
    // On the key's only replica: read and written under the entry's lock, in one read.
    const alone = await store.objects.updateIfAlone(
      bucketId,
      key,
      (old) => deletable(old) ? marker(old) : undefined,
    );
    if (alone) return written;
    const entry = await store.objects.get(bucketId, key);
    // Without a condition the deletion is written even when the quorum read finds no object: a
    // write that reached fewer replicas than a quorum (its coordinator died, its client was told
    // it failed) is not in that read, and must not come back once the replicas sync.
    if (conditional && !deletable(entry)) return undefined;
    await confirmLocks();
    await store.objects.insert(marker(entry));
    return written;
  });
}

/**
 * Deletes the version S3 names `versionId` for good: an object's data or a
 * delete marker. Resolves with the version deleted; undefined when the key
 * has no such version (deleting it again succeeds, as in S3). A version
 * object lock protects is not deleted: ObjectLockedError.
 */
export async function deleteVersion(
  store: Store,
  bucketId: string,
  key: string,
  versionId: string,
  options: { bypassGovernance?: boolean } = {},
): Promise<ObjectVersion | undefined> {
  const version = findVersion(await store.objects.get(bucketId, key), versionId);
  if (!version) return undefined;
  const state = version.state;
  if (state.state === "complete" && state.data.type !== "deleteMarker") {
    const { meta } = state.data;
    const why = protectionOf(meta, store.nowMs(), options.bypassGovernance) ??
      retentionOnDoubtfulClock(store, meta, options.bypassGovernance);
    if (why) throw new ObjectLockedError(key, why);
  }
  const { uuid, timestampMs } = version;
  await store.objects.insert({
    bucketId,
    key,
    versions: [{ uuid, timestampMs, ...versionedOf(version), state: { state: "deleted" } }],
  });
  return version;
}

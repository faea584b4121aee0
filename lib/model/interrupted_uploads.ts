/**
 * Uploads cut off by the death of the node coordinating them: their data,
 * written before any record named it, is released here by the node's next
 * process (see DataJournal), unless a record names it after all; so is the
 * data of uploads that failed while their process ran on, by that process.
 * Releasing marks the data's block entries deleted, which is idempotent:
 * data another path released already is not released twice.
 */
import type { Store } from "./store.ts";
import type { DataOwner, JournalEntry } from "./data_journal.ts";
import { uploadDataIds } from "./mpu_table.ts";
import type { ObjectEntry, ObjectVersion } from "./object_table.ts";
import { GONE_COORDINATOR_UPLOAD_AGE_MS, LEFT_NOTE_SETTLE_DELAY_MS } from "../util/limits.ts";
import { abortVersion } from "./objects.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

/**
 * Settles the notes of earlier processes, and those this process's failed
 * uploads left (see DataJournal.unsettled); returns how many data ids were
 * released. A note whose records cannot be read now (peers unreachable), or
 * that needs every replica's copy (a version still uploading, a copy) while
 * one does not answer, is kept for the next pass.
 */
export async function releaseInterruptedUploads(store: Store): Promise<number> {
  let released = 0;
  for await (const entry of store.journal.unsettled()) {
    try {
      const owner = await ownerOf(store, entry);
      if (owner === "pending") continue;
      if (owner === "none") {
        await store.releaseData(entry.dataId);
        released++;
      }
      await store.journal.forget(entry.dataId);
    } catch (e) {
      log("remise::model", "warn", `upload data ${entry.dataId} kept for now: ${errorMessage(e)}`);
    }
  }
  return released;
}

/**
 * Aborts the single uploads among `entries` (this node's copies) left
 * "uploading" by a process that has ended (`coordinatorEnded`), as noted ones
 * are settled (`settleUploading`): a PutObject of one block takes no note,
 * and its version, recorded once its body has arrived, stays so if its node
 * dies before the completion; and a key whose partition its coordinator does
 * not store is not among that node's entries. Returns how many were aborted
 * (their data released by the abort), and those that wait for a replica to
 * answer, to be tried again alone.
 */
export async function abortCutOffUploads(
  store: Store,
  entries: AsyncIterable<ObjectEntry> | Iterable<ObjectEntry>,
): Promise<{ aborted: number; waiting: ObjectEntry[] }> {
  let aborted = 0;
  const waiting: ObjectEntry[] = [];
  for await (const { bucketId, key, versions } of entries) {
    for (const version of versions) {
      const state = version.state;
      if (state.state !== "uploading" || state.multipart) continue;
      if (!state.coordinator || !coordinatorEnded(store, state.coordinator, version)) continue;
      let outcome: "named" | "pending" | "none";
      try {
        outcome = await settleUploading(store, { kind: "object", bucketId, key }, version.uuid);
      } catch (e) {
        log("remise::model", "warn", `upload ${version.uuid} kept for now: ${errorMessage(e)}`);
        outcome = "pending";
      }
      if (outcome === "none") aborted++;
      if (outcome === "pending") waiting.push({ bucketId, key, versions: [version] });
    }
  }
  return { aborted, waiting };
}

/**
 * Whether the process that coordinated `version`'s upload has ended, so
 * that no write of the upload can come any more: this node's earlier
 * process; another node's, once that node answers with another process and
 * the version is older than a write still on its way could be; or a node
 * removed from the layout and down, once the version is a day old (a node
 * being removed may still be finishing uploads, or cut off for a while).
 */
function coordinatorEnded(
  store: Store,
  coordinator: { node: string; run: string },
  version: ObjectVersion,
): boolean {
  const { replication } = store;
  const run = replication.runOf(coordinator.node);
  if (coordinator.node === replication.nodeId) return coordinator.run !== run;
  const ageMs = store.nowMs() - version.timestampMs;
  if (run !== undefined) return run !== coordinator.run && ageMs >= LEFT_NOTE_SETTLE_DELAY_MS;
  return !replication.hasRole(coordinator.node) && !replication.isUp(coordinator.node) &&
    ageMs >= GONE_COORDINATOR_UPLOAD_AGE_MS;
}

/**
 * Whether a record names the data: "named" by a complete version of the
 * object, or by the record of its part in an upload going on; else "none".
 * A PutObject's version not complete in a quorum read is settled by
 * `settleUploading`.
 */
async function ownerOf(
  store: Store,
  { dataId, owner }: JournalEntry,
): Promise<"named" | "pending" | "none"> {
  if (owner.kind === "copy") return await copyOwnerOf(store, owner);
  const entry = await store.objects.get(owner.bucketId, owner.key);
  if (owner.kind === "object") {
    const state = entry?.versions.find((v) => v.uuid === dataId)?.state.state;
    if (state === "complete") return "named";
    // An abort or a deletion wins over a completion it meets (see object_table.ts).
    if (state === "aborted" || state === "deleted") return "none";
    return await settleUploading(store, owner, dataId);
  }
  // A completed upload's version (the upload's id for uuid) lists the parts it kept.
  const state = entry?.versions.find((v) => v.uuid === owner.uploadId)?.state;
  if (state?.state === "complete") {
    const kept = state.data.type === "parts" && state.data.parts.some((p) => p.dataId === dataId);
    return kept ? "named" : "none";
  }
  const upload = await store.uploads.get(owner.uploadId);
  if (upload === undefined || upload.deleted.v) return "none"; // aborted, or completed and gone
  // A part replaced by a newer upload of its number is kept until the upload ends.
  if (uploadDataIds(upload).includes(dataId)) return "named";
  // A record of the part that reached one replica alone may spread yet, and
  // be completed: every replica must answer without it.
  const everywhere = await onEveryReplica(() => store.uploads.getFromEveryReplica(owner.uploadId));
  if (everywhere === "unanswered") return "pending";
  return everywhere && uploadDataIds(everywhere).includes(dataId) ? "named" : "none";
}

/**
 * A PutObject's version (`uuid`) that its upload left uploading, or that a
 * quorum read does not show: its completion may have reached a replica that
 * the read skipped, and would show later, its data released. So every
 * replica is read: without a completion on any, none can come any more, and
 * a version still uploading is aborted (which, like a failed PutObject's
 * abort, releases its data: "none"). While a replica does not answer, the
 * note waits ("pending"), as it did for every such version before, until the
 * version was aborted a week later (see abandoned_uploads.ts) or replaced by
 * a newer write of its key.
 */
async function settleUploading(
  store: Store,
  owner: Extract<DataOwner, { kind: "object" }>,
  uuid: string,
): Promise<"named" | "pending" | "none"> {
  const entry = await onEveryReplica(() => entryOf(store, owner));
  if (entry === "unanswered") return "pending";
  const version = entry?.versions.find((v) => v.uuid === uuid);
  if (version?.state.state === "complete") return "named";
  if (version?.state.state === "uploading") {
    await abortVersion(store, owner.bucketId, owner.key, version);
  }
  return "none";
}

/**
 * Whether a CopyObject's version names its data: a copy leaves no record
 * until it commits, and a commit its node's death cut short may have
 * reached one replica alone, so every replica is read (a note waits while
 * one does not answer). No write of the copy can land any more (see
 * DataJournal.unsettled).
 */
async function copyOwnerOf(
  store: Store,
  owner: Extract<DataOwner, { kind: "copy" }>,
): Promise<"named" | "pending" | "none"> {
  const entry = await onEveryReplica(() => entryOf(store, owner));
  if (entry === "unanswered") return "pending";
  const state = entry?.versions.find((v) => v.uuid === owner.versionUuid)?.state.state;
  return state === "complete" ? "named" : "none";
}

/** The owner's object entry as every replica holds it. */
function entryOf(store: Store, { bucketId, key }: DataOwner): Promise<ObjectEntry | undefined> {
  return store.objects.getFromEveryReplica(bucketId, key);
}

/** What a read of every replica answers; "unanswered" while one does not answer. */
async function onEveryReplica<T>(read: () => Promise<T>): Promise<T | "unanswered"> {
  try {
    return await read();
  } catch {
    return "unanswered";
  }
}

/**
 * Uploads cut off by the death of the node coordinating them: their data,
 * written before any record named it, is released here by the node's next
 * process (see DataJournal), unless a record names it after all. Releasing
 * marks the data's block entries deleted, which is idempotent: data another
 * path released already is not released twice.
 */
import type { Store } from "./store.ts";
import type { JournalEntry } from "./data_journal.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

/**
 * Settles the notes of earlier processes; returns how many data ids were
 * released. A note whose records cannot be read now (peers unreachable) is
 * kept for the next pass.
 */
export async function releaseInterruptedUploads(store: Store): Promise<number> {
  let released = 0;
  for await (const entry of store.journal.leftByEarlierRuns()) {
    try {
      if (!(await isOwned(store, entry))) {
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
 * Whether a record names the data (or will release it): a version of the
 * object, complete or still uploading (the abandoned-upload collector
 * aborts those), or the record of its part in an upload going on.
 */
async function isOwned(store: Store, { dataId, owner }: JournalEntry): Promise<boolean> {
  const entry = await store.objects.get(owner.bucketId, owner.key);
  if (owner.kind === "object") {
    const state = entry?.versions.find((v) => v.uuid === dataId)?.state.state;
    return state === "uploading" || state === "complete";
  }
  // A completed upload's version (the upload's id for uuid) lists the parts it kept.
  const state = entry?.versions.find((v) => v.uuid === owner.uploadId)?.state;
  if (state?.state === "complete") {
    return state.data.type === "parts" && state.data.parts.some((p) => p.dataId === dataId);
  }
  const upload = await store.uploads.get(owner.uploadId);
  if (upload === undefined || upload.deleted.v) return false; // aborted, or completed and gone
  return upload.parts[String(owner.partNumber)]?.v.dataId === dataId;
}

/**
 * Multipart uploads that ended but were never cleared: their completion or
 * their release was cut short (the process stopped, a quorum was missing),
 * or they ended before entries were cleared at all (2026-11). Each kept its
 * entry, parts list included, for ever, and the parts its object does not
 * hold kept their data. Here such an entry, ended long enough ago that no
 * completion or release of it is still running, has the parts its object
 * does not hold released, then is cleared.
 */
import { type MultipartUpload, uploadDataIds } from "./mpu_table.ts";
import type { Store } from "./store.ts";

/** Clears the uploads among `entries` that ended more than `minAgeMs` ago; returns how many. */
export async function clearEndedUploads(
  store: Store,
  entries: AsyncIterable<MultipartUpload>,
  minAgeMs: number,
): Promise<number> {
  let cleared = 0;
  for await (const entry of entries) {
    if (!endedUncleared(entry, store.nowMs() - minAgeMs)) continue;
    // This node's copy may lack a part that reached the other replicas.
    const upload = await store.uploads.get(entry.uploadId);
    if (!upload || !endedUncleared(upload, store.nowMs() - minAgeMs)) continue;
    const version = await store.uploadVersion(upload);
    // Ended, yet still uploading where this read looked: left for a later run.
    if (version?.state.state === "uploading") continue;
    await store.releaseUnheld(version, uploadDataIds(upload));
    await store.clearUpload(upload);
    cleared++;
  }
  return cleared;
}

function endedUncleared(upload: MultipartUpload, endedBeforeMs: number): boolean {
  return upload.deleted.v && upload.clearedMs === undefined && upload.deleted.t < endedBeforeMs;
}

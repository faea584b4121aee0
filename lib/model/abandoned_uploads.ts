/**
 * Single-request uploads that will never finish: a PutObject records its
 * version as "uploading" before its first block, and marks it aborted if it
 * fails; but when the node coordinating it dies mid-upload, the version
 * stays "uploading" on the replicas. Its blocks would be kept forever and its
 * bucket could never be deleted. Such a version, older than any upload could
 * take, is aborted here, which releases its data. Multipart uploads are left
 * to their owner (AbortMultipartUpload), as S3 does.
 */
import type { ObjectEntry } from "./object_table.ts";
import type { Store } from "./store.ts";
import { abortVersion } from "./objects.ts";

/** Aborts the abandoned single uploads among `entries`; returns how many. */
export async function abortAbandonedUploads(
  store: Store,
  entries: AsyncIterable<ObjectEntry> | Iterable<ObjectEntry>,
  maxAgeMs: number,
): Promise<number> {
  const before = store.nowMs() - maxAgeMs;
  let aborted = 0;
  for await (const entry of entries) {
    for (const version of entry.versions) {
      const state = version.state;
      if (state.state !== "uploading" || state.multipart || version.timestampMs > before) continue;
      await abortVersion(store, entry.bucketId, entry.key, version);
      aborted++;
    }
  }
  return aborted;
}

/**
 * Lifecycle rules (PutBucketLifecycleConfiguration): objects expire a number
 * of days after they were last modified (or at a date), and multipart
 * uploads are aborted a number of days after they started. As in S3, a
 * number of days counts to the next midnight UTC after it.
 *
 * Each bucket's rules are applied by one node, the first of its object
 * partition's replicas (the node itself when it runs alone).
 */
import type { Bucket, LifecycleRule } from "./bucket_table.ts";
import { abortVersion, deleteObject } from "./objects.ts";
import { currentData } from "./object_table.ts";
import type { Store } from "./store.ts";

const DAY_MS = 24 * 3600 * 1000;

/** `days` after `fromMs`, rounded up to midnight UTC. */
function daysAfter(fromMs: number, days: number): number {
  return Math.ceil((fromMs + days * DAY_MS) / DAY_MS) * DAY_MS;
}

/** When an object last modified at `modifiedMs` expires under `rule`, if it does. */
export function expiresAtMs(rule: LifecycleRule, modifiedMs: number): number | undefined {
  if (rule.expirationDateMs !== undefined) return rule.expirationDateMs;
  if (rule.expirationDays !== undefined) return daysAfter(modifiedMs, rule.expirationDays);
  return undefined;
}

function earliest(times: (number | undefined)[]): number {
  return Math.min(...times.map((t) => t ?? Infinity));
}

/** Applies the enabled rules of `buckets` this node is in charge of; returns what it did. */
export async function applyLifecycle(
  store: Store,
  buckets: Bucket[],
): Promise<{ expired: number; aborted: number }> {
  const now = store.nowMs();
  const done = { expired: 0, aborted: 0 };
  for (const bucket of buckets) {
    const rules = (bucket.lifecycle?.v ?? []).filter((r) => r.enabled);
    if (rules.length === 0) continue;
    const replicas = store.replication.readSet(store.objects.partitionOf(bucket.id));
    if (replicas[0] !== store.replication.nodeId) continue;
    for await (const entry of store.objects.scan(bucket.id)) {
      const applying = rules.filter((r) => entry.key.startsWith(r.prefix));
      if (applying.length === 0) continue;
      const current = currentData(entry);
      if (current) {
        const modified = current.version.timestampMs;
        if (earliest(applying.map((r) => expiresAtMs(r, modified))) <= now) {
          // Only the version that expired: a write meanwhile stays.
          if (await deleteObject(store, bucket.id, entry.key, current.version.uuid)) done.expired++;
        }
      }
      for (const version of entry.versions) {
        const state = version.state;
        if (state.state !== "uploading" || !state.multipart) continue;
        const abortAt = earliest(
          applying.map((r) =>
            r.abortMultipartDays === undefined
              ? undefined
              : daysAfter(version.timestampMs, r.abortMultipartDays)
          ),
        );
        if (abortAt > now) continue;
        await abortVersion(store, bucket.id, entry.key, version);
        done.aborted++;
      }
    }
  }
  return done;
}

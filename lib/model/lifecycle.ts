/**
 * Lifecycle rules (PutBucketLifecycleConfiguration): objects expire a number
 * of days after they were last modified (or at a date), versions a number of
 * days after a newer one replaced them, delete markers once no older version
 * is left, and multipart uploads are aborted a number of days after they
 * started. As in S3, a number of days counts to the next midnight UTC after it.
 *
 * Each bucket's rules are applied by one node, the first of its object
 * partition's replicas (the node itself when it runs alone).
 */
import {
  type Bucket,
  type LifecycleRule,
  lifecycleRuleEnabled,
  versioningOf,
} from "./bucket_table.ts";
import { abortVersion, deleteObject, deleteVersion } from "./objects.ts";
import {
  currentData,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectVersion,
  versionIdOf,
} from "./object_table.ts";
import { listedVersionsOf } from "./listing.ts";
import type { Store } from "./store.ts";
import { ObjectLockedError } from "./object_lock.ts";

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

/** What a rule's filters look at in an object: its size and tags. */
export interface LifecycleSubject {
  size: number;
  tags: [string, string][];
}

export function subjectOf(meta: ObjectMeta): LifecycleSubject {
  return { size: meta.size, tags: meta.tags?.v ?? [] };
}

/**
 * Whether `rule`'s filters (key prefix, tags, sizes) select the object of
 * `key`, or its delete marker when `subject` is undefined (no tags, no bytes).
 */
export function ruleApplies(
  rule: LifecycleRule,
  key: string,
  subject: LifecycleSubject | undefined,
): boolean {
  if (!key.startsWith(rule.prefix)) return false;
  const size = subject?.size ?? 0;
  if (rule.sizeGreaterThan !== undefined && !(size > rule.sizeGreaterThan)) return false;
  if (rule.sizeLessThan !== undefined && !(size < rule.sizeLessThan)) return false;
  return (rule.tags ?? []).every(([k, v]) =>
    subject?.tags.some(([tk, tv]) => tk === k && tv === v) ?? false
  );
}

/**
 * When the current object of `key`, last modified at `modifiedMs`, expires
 * under the enabled rules of `rules`, and the id of the rule that expires it
 * first (S3's x-amz-expiration); undefined when no rule expires it.
 */
export function objectExpiration(
  rules: LifecycleRule[] | undefined,
  key: string,
  modifiedMs: number,
  subject: LifecycleSubject,
): { atMs: number; ruleId?: string } | undefined {
  let found: { atMs: number; ruleId?: string } | undefined;
  for (const rule of rules ?? []) {
    if (!lifecycleRuleEnabled(rule) || !ruleApplies(rule, key, subject)) continue;
    const atMs = expiresAtMs(rule, modifiedMs);
    if (atMs !== undefined && (found === undefined || atMs < found.atMs)) {
      found = { atMs, ruleId: rule.id };
    }
  }
  return found;
}

function earliest(times: (number | undefined)[]): number {
  return Math.min(...times.map((t) => t ?? Infinity));
}

/** What a pass did: objects expired (a delete marker each), versions deleted, uploads aborted. */
export interface LifecycleDone {
  expired: number;
  versionsDeleted: number;
  aborted: number;
}

/**
 * The ids of the entry's versions that `rules` delete now: noncurrent ones
 * past their days (but the newest few, when a rule keeps some), and a delete
 * marker left alone.
 */
function expiredVersions(entry: ObjectEntry, rules: LifecycleRule[], now: number): string[] {
  const listed = listedVersionsOf(entry);
  const byId = new Map(entry.versions.map((v) => [versionIdOf(v), v]));
  const subject = (versionId: string) => versionSubject(byId.get(versionId));
  const expired = new Set<string>();
  for (const rule of rules) {
    if (rule.noncurrentDays !== undefined) {
      const kept = rule.newerNoncurrentVersions ?? 0;
      // listed[i] became noncurrent when listed[i - 1] was written.
      for (let i = 1 + kept; i < listed.length; i++) {
        if (
          daysAfter(listed[i - 1].lastModifiedMs, rule.noncurrentDays) <= now &&
          ruleApplies(rule, entry.key, subject(listed[i].versionId))
        ) {
          expired.add(listed[i].versionId);
        }
      }
    }
    if (
      rule.expiredObjectDeleteMarker && listed.length === 1 && !listed[0].object &&
      ruleApplies(rule, entry.key, undefined)
    ) {
      expired.add(listed[0].versionId);
    }
  }
  return [...expired];
}

/** The size and tags of a version holding an object; undefined for a delete marker. */
function versionSubject(version: ObjectVersion | undefined): LifecycleSubject | undefined {
  const state = version?.state;
  if (state?.state !== "complete" || state.data.type === "deleteMarker") return undefined;
  return subjectOf(state.data.meta);
}

/**
 * The node that applies a bucket's rules: the first of its object
 * partition's replicas that is up, as this node sees them, so that rules go
 * on while a node is down. Should two nodes each believe the other down, both
 * apply them; an expiration deletes only the version that expired, so the
 * second finds nothing left to do.
 */
export function nodeInCharge(
  replicas: string[],
  isUp: (node: string) => boolean,
): string | undefined {
  return replicas.find(isUp);
}

/** Applies the enabled rules of `buckets` this node is in charge of; returns what it did. */
export async function applyLifecycle(
  store: Store,
  buckets: Bucket[],
): Promise<LifecycleDone> {
  const now = store.nowMs();
  const done: LifecycleDone = { expired: 0, versionsDeleted: 0, aborted: 0 };
  for (const bucket of buckets) {
    const rules = (bucket.lifecycle?.v ?? []).filter(lifecycleRuleEnabled);
    if (rules.length === 0) continue;
    const replicas = store.replication.readSet(store.objects.partitionOf(bucket.id));
    if (nodeInCharge(replicas, (n) => store.replication.isUp(n)) !== store.replication.nodeId) {
      continue;
    }
    for await (const entry of store.objects.scan(bucket.id)) {
      const applying = rules.filter((r) => entry.key.startsWith(r.prefix));
      if (applying.length === 0) continue;
      const current = currentData(entry);
      if (current) {
        const modified = current.version.timestampMs;
        const subject = subjectOf(current.data.meta);
        const expiring = applying.filter((r) => ruleApplies(r, entry.key, subject));
        if (earliest(expiring.map((r) => expiresAtMs(r, modified))) <= now) {
          // Only the version that expired: a write meanwhile stays.
          const marker = await deleteObject(store, bucket.id, entry.key, {
            versioning: versioningOf(bucket),
            onlyVersion: current.version.uuid,
          });
          if (marker) done.expired++;
        }
      }
      for (const versionId of expiredVersions(entry, applying, now)) {
        try {
          if (await deleteVersion(store, bucket.id, entry.key, versionId)) done.versionsDeleted++;
        } catch (e) {
          // Object lock keeps it: a later pass deletes it once its retention ends.
          if (!(e instanceof ObjectLockedError)) throw e;
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

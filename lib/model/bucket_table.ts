/** The bucket table: one entry per bucket id, every parameter a LWW register. */
import { type Lww, lww, mergeLww, mergeLwwMap } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";

export interface BucketPermission {
  read: boolean;
  write: boolean;
  owner: boolean;
}

export interface Bucket {
  id: string;
  createdMs: number;
  /** The global name this bucket was created with (aliases live in bucket_alias). */
  name: Lww<string>;
  deleted: Lww<boolean>;
  /** Access key id -> rights on this bucket. */
  keys: Record<string, Lww<BucketPermission>>;
}

export function newBucket(id: string, name: string, nowMs: number): Bucket {
  return { id, createdMs: nowMs, name: lww(nowMs, name), deleted: lww(nowMs, false), keys: {} };
}

export const bucketSchema: TableSchema<Bucket> = {
  name: "bucket",
  formatVersion: 1,
  partitionKey: (b) => b.id,
  sortKey: () => "",
  merge: (a, b) => ({
    id: a.id,
    createdMs: Math.min(a.createdMs, b.createdMs),
    name: mergeLww(a.name, b.name),
    deleted: mergeLww(a.deleted, b.deleted),
    keys: mergeLwwMap(a.keys, b.keys),
  }),
};

/** Buckets are listed by scanning this single partition of the bucket index. */
export const BUCKET_INDEX_PARTITION = "buckets";

/** The key table: access keys with their secret, name and global rights. */
import { type Lww, mergeLww } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";

export interface AccessKey {
  id: string;
  secret: string;
  createdMs: number;
  name: Lww<string>;
  allowCreateBucket: Lww<boolean>;
  deleted: Lww<boolean>;
}

/** All keys share one partition, so that listing keys is one ordered scan. */
export const KEY_PARTITION = "keys";

export const keySchema: TableSchema<AccessKey> = {
  name: "key",
  formatVersion: 1,
  partitionKey: () => KEY_PARTITION,
  sortKey: (k) => k.id,
  merge: (a, b) => ({
    id: a.id,
    // The secret never changes; keep the smaller for determinism.
    secret: a.secret <= b.secret ? a.secret : b.secret,
    createdMs: Math.min(a.createdMs, b.createdMs),
    name: mergeLww(a.name, b.name),
    allowCreateBucket: mergeLww(a.allowCreateBucket, b.allowCreateBucket),
    deleted: mergeLww(a.deleted, b.deleted),
  }),
};

/** The bucket_alias table: global bucket name -> bucket id (null once the name is freed). */
import { type Lww, mergeLww } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";

export interface BucketAlias {
  name: string;
  bucketId: Lww<string | null>;
}

/** All aliases share one partition, so that ListBuckets is one ordered scan. */
export const ALIAS_PARTITION = "aliases";

export const bucketAliasSchema: TableSchema<BucketAlias> = {
  name: "bucket_alias",
  formatVersion: 1,
  partitionKey: () => ALIAS_PARTITION,
  sortKey: (a) => a.name,
  merge: (a, b) => ({ name: a.name, bucketId: mergeLww(a.bucketId, b.bucketId) }),
};

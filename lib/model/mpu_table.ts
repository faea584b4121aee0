/**
 * The mpu table: partition = upload id (the uuid of the object version being
 * uploaded), one entry holding the upload's parts. A part number uploaded
 * twice keeps the newest upload; the replaced data is released.
 */
import { type Lww, mergeLww, mergeLwwMap } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";

export interface UploadedPart {
  dataId: string;
  size: number;
  /** Hex MD5 of the part. */
  etag: string;
  checksum?: string;
}

export interface MultipartUpload {
  uploadId: string;
  bucketId: string;
  key: string;
  initiatedMs: number;
  /** Part number (as a string) -> newest upload of that part. */
  parts: Record<string, Lww<UploadedPart>>;
  /** Set once the upload is completed or aborted. */
  deleted: Lww<boolean>;
}

export function mpuSchema(
  updated?: TableSchema<MultipartUpload>["updated"],
): TableSchema<MultipartUpload> {
  return {
    name: "mpu",
    formatVersion: 1,
    partitionKey: (m) => m.uploadId,
    sortKey: () => "",
    merge: (a, b) => ({
      uploadId: a.uploadId,
      bucketId: a.bucketId,
      key: a.key,
      initiatedMs: Math.min(a.initiatedMs, b.initiatedMs),
      parts: mergeLwwMap(a.parts, b.parts),
      deleted: mergeLww(a.deleted, b.deleted),
    }),
    updated,
  };
}

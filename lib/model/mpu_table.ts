/**
 * The mpu table: partition = upload id (the uuid of the object version being
 * uploaded), one entry holding the upload's parts. A part number uploaded
 * twice keeps the newest upload; the replaced data is released. An upload
 * ends (completed or aborted), then is cleared once its parts are released or
 * held by its object: a cleared entry is a tombstone without parts.
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
  /**
   * When the entry was cleared: its parts were released, or are held by the
   * object it completed into. Entries ended before 2026-11 lack it until
   * cleared (see ended_uploads.ts).
   */
  clearedMs?: number;
}

/** Whether the upload takes no more parts: absent (cleared and removed), ended or cleared. */
export function uploadEnded(upload: MultipartUpload | undefined): boolean {
  return upload === undefined || upload.deleted.v || upload.clearedMs !== undefined;
}

function mergeClearedMs(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

export function mpuSchema(
  updated?: TableSchema<MultipartUpload>["updated"],
): TableSchema<MultipartUpload> {
  return {
    name: "mpu",
    formatVersion: 1,
    partitionKey: (m) => m.uploadId,
    sortKey: () => "",
    merge: (a, b) => {
      const clearedMs = mergeClearedMs(a.clearedMs, b.clearedMs);
      return {
        uploadId: a.uploadId,
        bucketId: a.bucketId,
        key: a.key,
        initiatedMs: Math.min(a.initiatedMs, b.initiatedMs),
        // A part recorded after the clear is its uploader's to release (recordPart).
        parts: clearedMs === undefined ? mergeLwwMap(a.parts, b.parts) : {},
        deleted: mergeLww(a.deleted, b.deleted),
        ...(clearedMs === undefined ? {} : { clearedMs }),
      };
    },
    isTombstone: (m) => m.clearedMs !== undefined,
    tombstoneSinceMs: (m) => m.clearedMs ?? 0,
    updated,
  };
}

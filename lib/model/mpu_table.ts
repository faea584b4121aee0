/**
 * The mpu table: partition = upload id (the uuid of the object version being
 * uploaded), one entry holding the upload's parts. A part number uploaded
 * twice keeps the newest upload, and notes the replaced one's data, kept
 * until the upload ends: a completion may be using it (see `replaced`). An
 * upload ends (completed or aborted), then is cleared once its parts are
 * released or held by its object: a cleared entry is a tombstone without
 * parts.
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
  /**
   * Data ids of parts that a newer upload of their number replaced, sorted.
   * They are released with the upload's other parts when it ends, not when
   * replaced: a completion that read the parts before the replacement may be
   * committing the object with one of them.
   */
  replaced?: string[];
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

/** Every part's data the entry names: the parts' and the replaced ones'. */
export function uploadDataIds(upload: MultipartUpload): string[] {
  return [...Object.values(upload.parts).map((p) => p.v.dataId), ...upload.replaced ?? []];
}

/**
 * The data ids that either side names and the merged parts no longer do: a
 * part that lost to a newer upload of its number joins the replaced ones.
 */
function mergeReplaced(
  a: MultipartUpload,
  b: MultipartUpload,
  parts: MultipartUpload["parts"],
): string[] {
  const current = new Set(Object.values(parts).map((p) => p.v.dataId));
  const named = new Set([...uploadDataIds(a), ...uploadDataIds(b)]);
  return [...named].filter((id) => !current.has(id)).sort();
}

function mergeClearedMs(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

export function mpuSchema(): TableSchema<MultipartUpload> {
  return {
    name: "mpu",
    formatVersion: 1,
    partitionKey: (m) => m.uploadId,
    sortKey: () => "",
    merge: (a, b) => {
      const clearedMs = mergeClearedMs(a.clearedMs, b.clearedMs);
      // A part recorded after the clear is its uploader's to release (recordPart).
      const parts = clearedMs === undefined ? mergeLwwMap(a.parts, b.parts) : {};
      const replaced = clearedMs === undefined ? mergeReplaced(a, b, parts) : [];
      return {
        uploadId: a.uploadId,
        bucketId: a.bucketId,
        key: a.key,
        initiatedMs: Math.min(a.initiatedMs, b.initiatedMs),
        parts,
        ...(replaced.length > 0 ? { replaced } : {}),
        deleted: mergeLww(a.deleted, b.deleted),
        ...(clearedMs === undefined ? {} : { clearedMs }),
      };
    },
    isTombstone: (m) => m.clearedMs !== undefined,
    tombstoneSinceMs: (m) => m.clearedMs ?? 0,
  };
}

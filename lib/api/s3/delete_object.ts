/**
 * DeleteObject: without a version id, a delete marker becomes the current
 * version (deleting a missing key succeeds); with one, that version is
 * deleted for good. With If-Match, only an object with that ETag is.
 */
import type { Bucket } from "../../model/bucket_table.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { deleteObject, deleteVersion, getVersion } from "../../model/objects.ts";
import { changedBeforeDelete, checkDeletePrecondition } from "./preconditions.ts";
import { isDeleteMarker, isUnlistedMarker, versionIdOf } from "../../model/object_table.ts";
import type { Store } from "../../model/store.ts";
import { requireBucket, requireKey, type S3Request } from "./context.ts";
import { requestedVersionId } from "./versions.ts";
import { ObjectLockedError } from "../../model/object_lock.ts";
import { bypassesGovernance } from "./object_lock.ts";
import { s3Errors } from "./s3_error.ts";

/** What a deletion did, as S3 reports it. */
export interface Deletion {
  /** The version deleted, or the delete marker written; undefined when neither has an id to tell. */
  versionId?: string;
  /** The version deleted was a delete marker, or a delete marker was written. */
  deleteMarker: boolean;
}

/** How a key is deleted: which version, and on what condition. */
export interface DeleteRequest {
  /** That version, for good; else a delete marker becomes current. */
  versionId?: string;
  /** Lifts GOVERNANCE retention (the owner's x-amz-bypass-governance-retention). */
  bypassGovernance?: boolean;
  /** If-Match: only an object with one of these ETags ("*" any) is deleted. */
  ifMatch?: string;
}

/**
 * Deletes `key` (a delete marker) or, with a version id, that version of it;
 * a version object lock protects is AccessDenied, unless `bypassGovernance`
 * lifts its GOVERNANCE retention. With `ifMatch`, a missing object is
 * NoSuchKey and another ETag PreconditionFailed, as in S3.
 */
export async function deleteKey(
  store: Store,
  bucket: Bucket,
  key: string,
  request: DeleteRequest = {},
): Promise<Deletion> {
  const { versionId, bypassGovernance = false, ifMatch } = request;
  let onlyVersion: string | undefined;
  if (ifMatch !== undefined) {
    const found = await getVersion(store, bucket.id, key, versionId);
    const object = found.kind === "object" ? found.object : undefined;
    checkDeletePrecondition(ifMatch, object, key);
    onlyVersion = object!.version.uuid;
  }
  if (versionId !== undefined) {
    let deleted;
    try {
      deleted = await deleteVersion(store, bucket.id, key, versionId, { bypassGovernance });
    } catch (e) {
      if (e instanceof ObjectLockedError) {
        throw s3Errors.accessDenied("Access Denied because object protected by object lock.");
      }
      throw e;
    }
    // A deletion written without versioning is no delete marker to S3 (see getVersion).
    const marker = deleted !== undefined && isDeleteMarker(deleted) && !isUnlistedMarker(deleted);
    return { versionId, deleteMarker: marker };
  }
  const versioning = versioningOf(bucket);
  const marker = await deleteObject(store, bucket.id, key, { versioning, onlyVersion });
  // Replaced since it was checked: the object the condition held for is gone.
  if (onlyVersion !== undefined && !marker) throw changedBeforeDelete();
  if (versioning === undefined || !marker) return { deleteMarker: false };
  return { versionId: versionIdOf(marker), deleteMarker: true };
}

export async function handleDeleteObject(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const key = requireKey(r);
  const deletion = await deleteKey(r.ctx.store, bucket, key, {
    versionId: requestedVersionId(r.target.query),
    bypassGovernance: bypassesGovernance(r, bucket),
    ifMatch: r.req.headers.get("if-match") ?? undefined,
  });
  const headers = new Headers();
  if (deletion.versionId !== undefined) headers.set("x-amz-version-id", deletion.versionId);
  if (deletion.deleteMarker) headers.set("x-amz-delete-marker", "true");
  return new Response(null, { status: 204, headers });
}

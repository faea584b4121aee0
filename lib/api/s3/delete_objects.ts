/** DeleteObjects: a batch of up to 1000 keys, with per-key results and Quiet mode. */
import { readRequestXml } from "./request_xml.ts";
import { DELETE_OBJECTS_MAX_KEYS } from "../../util/limits.ts";
import { objectKeyTooLong } from "../../util/utf8_order.ts";
import { errorMessage } from "../../util/errors.ts";
import { log } from "../../util/log.ts";
import { requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { bypassesGovernance } from "./object_lock.ts";
import { deleteKey } from "./delete_object.ts";
import { isVersionId } from "./versions.ts";
import { asList, type XmlNode, xmlResponse } from "./xml.ts";

export async function handleDeleteObjects(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const doc = await readRequestXml(r);
  const root = doc.Delete as Record<string, unknown> | undefined;
  if (root === undefined || typeof root !== "object" || root === null) {
    throw s3Errors.malformedXml();
  }
  const objects = asList(
    root.Object as Record<string, unknown> | Record<string, unknown>[] | undefined,
  );
  if (objects.length === 0 || objects.length > DELETE_OBJECTS_MAX_KEYS) {
    throw s3Errors.malformedXml(
      `The request must contain between 1 and ${DELETE_OBJECTS_MAX_KEYS} objects to delete (got ${objects.length})`,
    );
  }
  const targets = objects.map((o) => {
    const key = o?.Key;
    const versionId = o?.VersionId;
    // A condition, as DeleteObject's If-Match.
    const etag = o?.ETag;
    if (typeof key !== "string") throw s3Errors.malformedXml();
    if (versionId !== undefined && typeof versionId !== "string") throw s3Errors.malformedXml();
    if (etag !== undefined && typeof etag !== "string") throw s3Errors.malformedXml();
    return { key, versionId, etag };
  });
  const quiet = String(root.Quiet ?? "false").trim().toLowerCase() === "true";
  const bypassGovernance = bypassesGovernance(r, bucket);
  const deleted: XmlNode[] = [];
  const errors: XmlNode[] = [];
  for (const { key, versionId, etag } of targets) {
    if (objectKeyTooLong(key) || key === "") {
      errors.push({ Key: key, Code: "InvalidArgument", Message: "Invalid object key" });
      continue;
    }
    if (versionId !== undefined && !isVersionId(versionId)) {
      const { code, message } = s3Errors.noSuchVersion(key, versionId);
      errors.push({ Key: key, VersionId: versionId, Code: code, Message: message });
      continue;
    }
    try {
      const deletion = await deleteKey(r.ctx.store, bucket, key, {
        versionId,
        bypassGovernance,
        ifMatch: etag,
      });
      if (!quiet) {
        deleted.push({
          Key: key,
          VersionId: versionId,
          DeleteMarker: deletion.deleteMarker ? true : undefined,
          DeleteMarkerVersionId: deletion.deleteMarker ? deletion.versionId : undefined,
        });
      }
    } catch (e) {
      if (e instanceof S3Error) {
        // Refused, as this key alone would be (a version object lock protects, an ETag differs).
        errors.push({ Key: key, VersionId: versionId, Code: e.code, Message: e.message });
        continue;
      }
      log("remise::api::s3", "warn", `DeleteObjects: cannot delete "${key}": ${errorMessage(e)}`);
      errors.push({
        Key: key,
        Code: "InternalError",
        Message: "We encountered an internal error. Please try again.",
      });
    }
  }
  return xmlResponse("DeleteResult", { Deleted: deleted, Error: errors });
}

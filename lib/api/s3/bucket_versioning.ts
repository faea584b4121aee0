/**
 * PutBucketVersioning and GetBucketVersioning. Once enabled, versioning can
 * be suspended but not turned off, as in S3: versions kept stay until they
 * are deleted by id. MFA delete needs a device remise does not have.
 */
import { readRequestXml } from "./request_xml.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { requireBucket, type S3Request } from "./context.ts";
import { s3Errors } from "./s3_error.ts";
import { xmlElement, xmlResponse, xmlText } from "./xml.ts";
import { refuseVersioningSuspension } from "./object_lock.ts";

export async function handlePutBucketVersioning(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const root = xmlElement((await readRequestXml(r)).VersioningConfiguration);
  if (!root) throw s3Errors.malformedXml();
  const status = xmlText(root, "Status");
  const mfaDelete = xmlText(root, "MfaDelete");
  if (mfaDelete !== undefined && mfaDelete !== "Enabled" && mfaDelete !== "Disabled") {
    throw s3Errors.malformedXml();
  }
  if (mfaDelete === "Enabled") throw s3Errors.notImplemented("MFA delete");
  if (status === undefined) {
    if (mfaDelete === undefined) throw s3Errors.malformedXml();
    return new Response(null, { status: 200 });
  }
  if (status !== "Enabled" && status !== "Suspended") throw s3Errors.malformedXml();
  refuseVersioningSuspension(bucket, status);
  if (versioningOf(bucket) !== status) await r.ctx.access.setSetting(bucket, "versioning", status);
  return new Response(null, { status: 200 });
}

export async function handleGetBucketVersioning(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  // A bucket whose versioning was never set answers an empty configuration.
  return xmlResponse("VersioningConfiguration", { Status: versioningOf(bucket) });
}

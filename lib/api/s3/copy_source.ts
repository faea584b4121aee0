/** The source of CopyObject and UploadPartCopy: x-amz-copy-source, its range and its conditionals. */
import { getVersion } from "../../model/objects.ts";
import { versionIdOf } from "../../model/object_table.ts";
import type { ByteRange } from "../../model/object_data.ts";
import { checkExpectedOwner, mayList, type S3Request } from "./context.ts";
import { evaluateReadPreconditions } from "./preconditions.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import type { CurrentObject } from "../../model/objects.ts";
import { isVersionId } from "./versions.ts";
import { publicAccessAllows } from "./bucket_policy.ts";

export interface CopySource {
  bucketName: string;
  key: string;
  object: CurrentObject;
  /** The id of the version copied (x-amz-copy-source-version-id). */
  versionId: string;
  /** The header named the version (`?versionId=`), rather than the current one. */
  byVersionId: boolean;
}

/** Parses `x-amz-copy-source` ("bucket/key" or "/bucket/key", URL-encoded) and loads the source. */
export async function loadCopySource(r: S3Request): Promise<CopySource> {
  const header = r.req.headers.get("x-amz-copy-source")!;
  let raw = header;
  let versionId: string | undefined;
  const q = raw.indexOf("?");
  if (q >= 0) {
    versionId = new URLSearchParams(raw.slice(q + 1)).get("versionId") ?? undefined;
    if (versionId !== undefined && !isVersionId(versionId)) {
      throw s3Errors.invalidArgument("Invalid version id specified", "x-amz-copy-source", header);
    }
    raw = raw.slice(0, q);
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw s3Errors.invalidArgument("Invalid copy source encoding", "x-amz-copy-source", header);
  }
  if (decoded.startsWith("/")) decoded = decoded.slice(1);
  const slash = decoded.indexOf("/");
  if (slash <= 0 || slash === decoded.length - 1) {
    throw s3Errors.invalidArgument(
      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
      "x-amz-copy-source",
      header,
    );
  }
  const bucketName = decoded.slice(0, slash);
  const key = decoded.slice(slash + 1);
  const bucket = await r.ctx.access.resolveBucket(bucketName);
  if (!bucket) throw s3Errors.noSuchBucket(bucketName);
  checkExpectedOwner(r, bucket, "x-amz-source-expected-bucket-owner");
  // The source's read right, or a policy that makes it public (S3's s3:GetObject for anyone).
  if (
    !r.ctx.access.permissionOf(bucket, r.accessKeyId).read &&
    !publicAccessAllows(bucket, "GetObject", key)
  ) {
    throw s3Errors.accessDenied();
  }
  const found = await getVersion(r.ctx.store, bucket.id, key, versionId);
  if (found.kind === "deleteMarker" && versionId !== undefined) {
    throw s3Errors.invalidRequest(
      "The source of a copy request may not specifically refer to a delete marker by version id.",
    );
  }
  if (found.kind !== "object") {
    if (!mayList(r, bucket)) throw s3Errors.accessDenied(); // as a GET of it would answer
    throw versionId === undefined || found.kind === "deleteMarker"
      ? s3Errors.noSuchKey(key)
      : s3Errors.noSuchVersion(key, versionId);
  }
  const object = found.object;
  const outcome = evaluateReadPreconditions(
    r.req.headers,
    object.data.meta.etag,
    object.version.timestampMs,
    "x-amz-copy-source-",
  );
  if (outcome === "notModified") {
    throw new S3Error(
      "PreconditionFailed",
      412,
      "At least one of the pre-conditions you specified did not hold",
      {
        Condition: "x-amz-copy-source-If-None-Match",
      },
    );
  }
  return {
    bucketName,
    key,
    object,
    versionId: versionIdOf(object.version),
    byVersionId: versionId !== undefined,
  };
}

/** The `x-amz-copy-source-range` of UploadPartCopy ("bytes=first-last"), within the source. */
export function copySourceRange(headers: Headers, size: number): ByteRange {
  const header = headers.get("x-amz-copy-source-range");
  if (header === null) return { start: 0, end: size };
  const m = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (!m) {
    throw s3Errors.invalidArgument(
      "The x-amz-copy-source-range value must be of the form bytes=first-last",
      "x-amz-copy-source-range",
      header,
    );
  }
  const start = Number(m[1]);
  const last = Number(m[2]);
  if (last < start || last >= size) {
    throw new S3Error("InvalidRange", 416, "The requested range is not satisfiable", {
      ActualObjectSize: String(size),
    });
  }
  return { start, end: last + 1 };
}

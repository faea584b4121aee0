/** What every S3 handler receives. */
import type { RequestMetrics } from "../../util/request_metrics.ts";
import type { FreeSpace } from "../../util/free_space.ts";
import type { Access } from "../../model/access.ts";
import type { Bucket, BucketPermission, BucketSetting } from "../../model/bucket_table.ts";
import type { Store } from "../../model/store.ts";
import { type CurrentObject, getVersion } from "../../model/objects.ts";
import type { RequestTarget } from "./request_target.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { spoolToFile } from "../../block/spool.ts";
import { checkObjectKey } from "./object_headers.ts";
import { deleteMarkerError, requestedVersionId } from "./versions.ts";
import { publicAccessAllows } from "./bucket_policy.ts";

export interface S3Context {
  store: Store;
  access: Access;
  region: string;
  rootDomain?: string;
  /** Counts the requests answered, for the admin API's /metrics. */
  metrics?: RequestMetrics;
  /** The disks that must be above their reserve for this node to take an upload (see free_space.ts). */
  uploadSpace?: FreeSpace[];
  /** Whether the node is stopping: a request body cut off then is the node's doing, not the client's. */
  stopping?: () => boolean;
  /** How long a read of a request body may wait on the client (BODY_IDLE_MAX_MS when not given). */
  bodyIdleMs?: number;
}

export interface S3Request {
  ctx: S3Context;
  req: Request;
  requestId: string;
  target: RequestTarget;
  accessKeyId: string;
  /** The verified (and for aws-chunked, decoded) body. */
  body: ReadableStream<Uint8Array> | null;
  /** Length of the decoded body when the client announced it. */
  contentLength: number | undefined;
  /** The verified trailing checksum of a chunked upload, after the body is read. */
  trailerChecksum: () => { algorithm: string; value: string } | undefined;
  /** The target bucket, looked up while the request is authenticated (saves round trips in a cluster). */
  bucket?: Promise<Bucket | undefined>;
  /** A request without credentials that the bucket's policy allows (a public read). */
  anonymous?: boolean;
  /** The bucket's policy lets anyone, signed in or not, do this operation (a public read). */
  publicRead?: boolean;
}

/**
 * The body to store: a chunked body is first drained to a temporary file
 * (see lib/block/spool.ts), every verification of the body happening then;
 * a body of unknown length (neither Content-Length nor chunked) is
 * MissingContentLength.
 */
async function bodyToStore(
  r: S3Request,
  maxBytes: number,
): Promise<ReadableStream<Uint8Array> | null> {
  const transferEncoding = r.req.headers.get("transfer-encoding");
  if (transferEncoding === null && r.req.headers.get("content-length") === null) {
    // Without either, HTTP/1.1 says the body is empty; S3 refuses rather than store nothing.
    throw new S3Error(
      "MissingContentLength",
      411,
      "You must provide the Content-Length HTTP header.",
    );
  }
  if (!r.body || !transferEncoding?.toLowerCase().includes("chunked")) return r.body;
  const blocks = r.ctx.store.blocks.store;
  return await spoolToFile(r.body, blocks.tmpDir, maxBytes, (n) => blocks.claimTemporary(n));
}

/**
 * Calls `store` with the body to store (bodyToStore). A spooled body that
 * `store` left unread (it failed first: a precondition, a missing upload) is
 * cancelled, which removes its file; the request's own body is left to the
 * error path, which reads it so that the client gets the answer.
 */
export async function withBodyToStore<T>(
  r: S3Request,
  maxBytes: number,
  store: (body: ReadableStream<Uint8Array> | null) => Promise<T>,
): Promise<T> {
  const body = await bodyToStore(r, maxBytes);
  try {
    return await store(body);
  } finally {
    if (body && body !== r.body && !body.locked) await body.cancel().catch(() => {});
  }
}

/** The request's bucket, checked to exist and to grant the right asked for. */
export async function requireBucket(
  r: S3Request,
  right: keyof BucketPermission | "any",
): Promise<Bucket> {
  const name = r.target.bucket!;
  const bucket = await (r.bucket ?? r.ctx.access.resolveBucket(name));
  if (!bucket) throw s3Errors.noSuchBucket(name);
  checkExpectedOwner(r, bucket, "x-amz-expected-bucket-owner");
  // The policy allowed this very operation (see publicAccessAllows); it only reads.
  if (r.anonymous) {
    if (right !== "read") throw s3Errors.accessDenied();
    return bucket;
  }
  const p = r.ctx.access.permissionOf(bucket, r.accessKeyId);
  const allowed = right === "any" ? p.read || p.write || p.owner : p[right];
  // "Anyone" in a public-read policy includes keys without rights on the bucket.
  if (!allowed && !(right === "read" && r.publicRead)) {
    const asked = right === "any" ? "a right" : `the ${right} right`;
    throw s3Errors.accessDenied().because(
      `key ${r.accessKeyId} has not ${asked} on bucket ${name} (remise bucket allow)`,
    );
  }
  return bucket;
}

/**
 * A request that names the owner it expects of a bucket (the header
 * `x-amz-expected-bucket-owner`, or `x-amz-source-expected-bucket-owner` for
 * a copy's source) is AccessDenied when the bucket's owner is another, as in
 * S3. remise names owners by access key id (ListBuckets' Owner is the key
 * asking): any key with the owner right on the bucket is its owner.
 */
export function checkExpectedOwner(r: S3Request, bucket: Bucket, header: string): void {
  const expected = r.req.headers.get(header);
  if (expected !== null && !r.ctx.access.permissionOf(bucket, expected).owner) {
    throw s3Errors.accessDenied();
  }
}

/** The request's object key; one over S3's 1,024 bytes is KeyTooLongError, whatever the operation. */
export function requireKey(r: S3Request): string {
  const key = r.target.key;
  if (key === undefined) {
    throw new S3Error("InvalidRequest", 400, "This operation needs an object key");
  }
  checkObjectKey(key);
  return key;
}

/**
 * The request's bucket (with `right` on it), key and object: the version
 * its `versionId` names, else the current one. NoSuchKey when there is none
 * (or a delete marker), NoSuchVersion when no version has that id, and
 * MethodNotAllowed for a delete marker asked by id.
 */
export async function requireObject(
  r: S3Request,
  right: "read" | "write",
): Promise<{ bucket: Bucket; key: string; current: CurrentObject }> {
  const bucket = await requireBucket(r, right);
  const key = requireKey(r);
  const versionId = requestedVersionId(r.target.query);
  const found = await getVersion(r.ctx.store, bucket.id, key, versionId);
  if (found.kind !== "object" && right === "read" && !mayList(r, bucket)) {
    // As S3 does: whoever may not list the bucket cannot tell a missing key
    // from a forbidden one (a policy that makes some keys public, not the listing).
    throw s3Errors.accessDenied();
  }
  switch (found.kind) {
    case "object":
      return { bucket, key, current: found.object };
    case "deleteMarker":
      throw deleteMarkerError(key, found.version, versionId !== undefined, r.req.method);
    case "none":
      throw versionId === undefined
        ? s3Errors.noSuchKey(key)
        : s3Errors.noSuchVersion(key, versionId);
  }
}

/** Whether the request may list the bucket: a right on it of its key's own, or a policy making the listing public. */
export function mayList(r: S3Request, bucket: Bucket): boolean {
  if (!r.anonymous && r.ctx.access.permissionOf(bucket, r.accessKeyId).read) return true;
  return publicAccessAllows(bucket, "ListObjectsV2", undefined);
}

/** The DeleteBucket* of a setting (CORS, website, ...): the owner's; 204 whether it was set or not. */
export function deleteBucketSetting(setting: BucketSetting): (r: S3Request) => Promise<Response> {
  return async (r) => {
    const bucket = await requireBucket(r, "owner");
    if (bucket[setting]?.v) await r.ctx.access.setSetting(bucket, setting, null);
    return new Response(null, { status: 204 });
  };
}

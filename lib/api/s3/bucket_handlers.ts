/** Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation. */
import { readRequestXml } from "./request_xml.ts";
import { asList, xmlEscape, xmlResponse } from "./xml.ts";
import { requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { checkCreateBucketOwnership } from "./ownership_controls.ts";
import { checkCannedAcl } from "./object_headers.ts";
import { ModelError } from "../../model/access.ts";
import { enableObjectLock, objectLockRequested } from "./object_lock.ts";
import { fromBase64, toBase64 } from "../../util/hash.ts";

function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** The region where S3 answers 200 to an owner creating its bucket again. */
const LEGACY_REGION = "us-east-1";

/** Buckets listed per page when the client asks for pages (max-buckets). */
const LIST_BUCKETS_MAX = 10000;

/**
 * ListBuckets: the buckets the key has a right on, sorted by name; `prefix`
 * and `bucket-region` filter them; with `max-buckets`, page by page, the
 * continuation token naming the last bucket of the page.
 */
export async function handleListBuckets(r: S3Request): Promise<Response> {
  const q = r.target.query;
  const prefix = q.get("prefix") ?? "";
  const region = q.get("bucket-region");
  const maxParam = q.get("max-buckets");
  const max = maxParam === null ? Infinity : Number(maxParam);
  if (maxParam !== null && (!/^\d+$/.test(maxParam) || max < 1 || max > LIST_BUCKETS_MAX)) {
    throw s3Errors.invalidArgument(
      `max-buckets must be an integer between 1 and ${LIST_BUCKETS_MAX}`,
      "max-buckets",
      maxParam,
    );
  }
  const token = q.get("continuation-token");
  let after = "";
  if (token !== null) {
    after = new TextDecoder().decode(fromBase64(token));
    if (token === "" || toBase64(new TextEncoder().encode(after)) !== token) {
      throw s3Errors.invalidArgument(
        "The continuation token provided is incorrect",
        "continuation-token",
        token,
      );
    }
  }
  const visible =
    (region !== null && region !== r.ctx.region ? [] : await r.ctx.access.listAllBuckets())
      .filter((bucket) => {
        const p = r.ctx.access.permissionOf(bucket, r.accessKeyId);
        const name = bucket.name.v;
        return (p.read || p.write || p.owner) && name.startsWith(prefix) && name > after;
      });
  const page = visible.slice(0, max);
  const truncated = page.length < visible.length;
  return xmlResponse("ListAllMyBucketsResult", {
    Buckets: {
      Bucket: page.map((bucket) => ({
        Name: bucket.name.v,
        CreationDate: isoDate(bucket.createdMs),
        BucketRegion: r.ctx.region,
      })),
    },
    Owner: { ID: r.accessKeyId, DisplayName: r.accessKeyId },
    ContinuationToken: truncated
      ? toBase64(new TextEncoder().encode(page[page.length - 1].name.v))
      : undefined,
    Prefix: q.has("prefix") ? prefix : undefined,
  });
}

export async function handleCreateBucket(r: S3Request): Promise<Response> {
  const name = r.target.bucket!;
  checkCreateBucketOwnership(r.req.headers);
  checkCannedAcl(r.req.headers.get("x-amz-acl"));
  const key = await r.ctx.access.getKey(r.accessKeyId);
  if (r.contentLength !== 0 && r.body) {
    const doc = await readRequestXml(r);
    const conf = doc.CreateBucketConfiguration as Record<string, unknown> | undefined;
    if (conf === undefined) throw s3Errors.malformedXml();
    const location = asList(conf.LocationConstraint as string | undefined)[0];
    if (typeof location === "string" && location !== "" && location !== r.ctx.region) {
      throw new S3Error(
        "IllegalLocationConstraintException",
        400,
        `The ${location} location constraint is incompatible for the region specific endpoint this request was sent to (${r.ctx.region}).`,
      );
    }
  }
  const existing = await r.ctx.access.resolveBucket(name);
  if (existing) {
    if (r.ctx.access.permissionOf(existing, r.accessKeyId).owner) {
      // S3's first region lets an owner create its bucket again; others refuse.
      if (r.ctx.region === LEGACY_REGION) {
        return new Response(null, { status: 200, headers: { location: `/${name}` } });
      }
      throw new S3Error(
        "BucketAlreadyOwnedByYou",
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
        { BucketName: name },
      );
    }
    throw new S3Error(
      "BucketAlreadyExists",
      409,
      "The requested bucket name is not available. Please select a different name and try again.",
      { BucketName: name },
    );
  }
  if (!key?.allowCreateBucket.v) {
    throw s3Errors.accessDenied("This access key may not create buckets");
  }
  const withObjectLock = objectLockRequested(r.req.headers);
  try {
    const bucket = await r.ctx.access.createBucket(name, r.accessKeyId);
    if (withObjectLock) await enableObjectLock(r, bucket);
  } catch (e) {
    if (e instanceof ModelError && e.code === "InvalidBucketName") {
      throw new S3Error("InvalidBucketName", 400, "The specified bucket is not valid.", {
        BucketName: name,
      });
    }
    throw e;
  }
  return new Response(null, { status: 200, headers: { location: `/${name}` } });
}

export async function handleHeadBucket(r: S3Request): Promise<Response> {
  await requireBucket(r, "any");
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": r.ctx.region } });
}

export async function handleDeleteBucket(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  try {
    await r.ctx.access.deleteBucket(bucket);
  } catch (e) {
    if (e instanceof ModelError && e.code === "BucketNotEmpty") {
      throw new S3Error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty", {
        BucketName: bucket.name.v,
      });
    }
    throw e;
  }
  return new Response(null, { status: 204 });
}

export async function handleGetBucketLocation(r: S3Request): Promise<Response> {
  await requireBucket(r, "any");
  // S3 names no region for its first one: clients read the empty constraint as us-east-1.
  const region = r.ctx.region === LEGACY_REGION ? "" : xmlEscape(r.ctx.region);
  return new Response(
    `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${region}</LocationConstraint>`,
    { headers: { "content-type": "application/xml" } },
  );
}

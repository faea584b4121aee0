/**
 * Configurations remise does not keep (CORS, policy, lifecycle, tags, ...).
 * Reading one answers as S3 does for a bucket or object where none was set,
 * so that tools which read them all (Terraform, backup and sync tools) go on;
 * setting one stays NotImplemented. remise has no ACLs: the canned policy
 * "the owner has full control" is what holds, and is what an ACL read gets;
 * setting the canned ACL `private`, which changes nothing, succeeds.
 */
import { getCurrent } from "../../model/objects.ts";
import { requireBucket, requireKey, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlEscape, XmlFragment, xmlResponse } from "./xml.ts";

type Unset =
  | { operation: string; error: [code: string, message: string] }
  | { operation: string; root: string; body: Record<string, string> };

/** Bucket sub-resources whose GET answers "not configured", by query parameter. */
const UNSET_BUCKET_CONFIGURATIONS: Record<string, Unset> = {
  cors: {
    operation: "GetBucketCors",
    error: ["NoSuchCORSConfiguration", "The CORS configuration does not exist"],
  },
  policy: {
    operation: "GetBucketPolicy",
    error: ["NoSuchBucketPolicy", "The bucket policy does not exist"],
  },
  lifecycle: {
    operation: "GetBucketLifecycleConfiguration",
    error: ["NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"],
  },
  tagging: {
    operation: "GetBucketTagging",
    error: ["NoSuchTagSet", "The TagSet does not exist"],
  },
  encryption: {
    operation: "GetBucketEncryption",
    error: [
      "ServerSideEncryptionConfigurationNotFoundError",
      "The server side encryption configuration was not found",
    ],
  },
  website: {
    operation: "GetBucketWebsite",
    error: [
      "NoSuchWebsiteConfiguration",
      "The specified bucket does not have a website configuration",
    ],
  },
  "object-lock": {
    operation: "GetObjectLockConfiguration",
    error: [
      "ObjectLockConfigurationNotFoundError",
      "Object Lock configuration does not exist for this bucket",
    ],
  },
  replication: {
    operation: "GetBucketReplication",
    error: ["ReplicationConfigurationNotFoundError", "The replication configuration was not found"],
  },
  ownershipControls: {
    operation: "GetBucketOwnershipControls",
    error: ["OwnershipControlsNotFoundError", "The bucket ownership controls were not found"],
  },
  publicAccessBlock: {
    operation: "GetPublicAccessBlock",
    error: [
      "NoSuchPublicAccessBlockConfiguration",
      "The public access block configuration was not found",
    ],
  },
  logging: { operation: "GetBucketLogging", root: "BucketLoggingStatus", body: {} },
  notification: {
    operation: "GetBucketNotificationConfiguration",
    root: "NotificationConfiguration",
    body: {},
  },
  accelerate: {
    operation: "GetBucketAccelerateConfiguration",
    root: "AccelerateConfiguration",
    body: {},
  },
  requestPayment: {
    operation: "GetBucketRequestPayment",
    root: "RequestPaymentConfiguration",
    body: { Payer: "BucketOwner" },
  },
};

/** The GET of a bucket configuration remise answers as unset, if the query names one. */
export function unsetBucketConfiguration(
  query: URLSearchParams,
): { name: string; handler: (r: S3Request) => Promise<Response> } | undefined {
  for (const [sub, unset] of Object.entries(UNSET_BUCKET_CONFIGURATIONS)) {
    if (!query.has(sub)) continue;
    return {
      name: unset.operation,
      handler: async (r) => {
        await requireBucket(r, "any");
        if ("error" in unset) throw new S3Error(unset.error[0], 404, unset.error[1]);
        return xmlResponse(unset.root, unset.body);
      },
    };
  }
  return undefined;
}

/** GetBucketAcl: the owner (the key asking) has full control. */
export async function handleGetBucketAcl(r: S3Request): Promise<Response> {
  await requireBucket(r, "any");
  return ownerFullControl(r.accessKeyId);
}

/** GetObjectAcl, of an object that exists. */
export async function handleGetObjectAcl(r: S3Request): Promise<Response> {
  await requireObject(r);
  return ownerFullControl(r.accessKeyId);
}

/** GetObjectTagging: objects carry no tags here. */
export async function handleGetObjectTagging(r: S3Request): Promise<Response> {
  await requireObject(r);
  return xmlResponse("Tagging", { TagSet: {} });
}

/**
 * PutBucketAcl and PutObjectAcl with the canned ACL `private` (what holds
 * already); any other ACL is NotImplemented.
 */
export function setAclPrivate(operation: string): (r: S3Request) => Promise<Response> {
  return async (r) => {
    const canned = r.req.headers.get("x-amz-acl");
    if (canned !== "private" || (r.contentLength ?? 0) > 0) {
      throw s3Errors.notImplemented(`${operation} other than the canned ACL private`);
    }
    if (r.target.key === undefined) await requireBucket(r, "owner");
    else await requireObject(r, "write");
    return new Response(null, { status: 200 });
  };
}

async function requireObject(r: S3Request, right: "read" | "write" = "read"): Promise<void> {
  const bucket = await requireBucket(r, right);
  const key = requireKey(r);
  if (!(await getCurrent(r.ctx.store, bucket.id, key))) throw s3Errors.noSuchKey(key);
}

function ownerFullControl(owner: string): Response {
  const id = xmlEscape(owner);
  const grantee = new XmlFragment(
    `<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">` +
      `<ID>${id}</ID><DisplayName>${id}</DisplayName></Grantee>`,
  );
  return xmlResponse("AccessControlPolicy", {
    Owner: { ID: owner, DisplayName: owner },
    AccessControlList: { Grant: { Grantee: grantee, Permission: "FULL_CONTROL" } },
  });
}

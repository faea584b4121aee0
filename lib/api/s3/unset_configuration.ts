/**
 * Configurations remise does not keep (replication, logging, ...).
 * Reading one answers as S3 does for a bucket or object where none was set,
 * so that tools which read them all (Terraform, backup and sync tools) go on;
 * setting one stays NotImplemented, but for an empty notification
 * configuration, which asks for what holds. remise has no ACLs: the canned policy
 * "the owner has full control" is what holds, and is what an ACL read gets;
 * setting the canned ACL `private`, which changes nothing, succeeds.
 */
import { requireBucket, requireObject, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlElement, xmlEscape, XmlFragment, type XmlNode, xmlResponse } from "./xml.ts";
import { checkCannedAcl } from "./object_headers.ts";
import { readRequestXml } from "./request_xml.ts";

/** Bucket configurations whose GET is 404 when unset: operation, S3's code and message. */
const NOT_CONFIGURED: Record<string, [operation: string, code: string, message: string]> = {
  replication: [
    "GetBucketReplication",
    "ReplicationConfigurationNotFoundError",
    "The replication configuration was not found",
  ],
};

/** Bucket configurations whose GET is a document when unset: operation, root, content. */
const DEFAULT_DOCUMENTS: Record<string, [operation: string, root: string, body: XmlNode]> = {
  logging: ["GetBucketLogging", "BucketLoggingStatus", {}],
  notification: ["GetBucketNotificationConfiguration", "NotificationConfiguration", {}],
  accelerate: ["GetBucketAccelerateConfiguration", "AccelerateConfiguration", {}],
  requestPayment: ["GetBucketRequestPayment", "RequestPaymentConfiguration", {
    Payer: "BucketOwner",
  }],
};

type Route = { name: string; handler: (r: S3Request) => Promise<Response> };

/** The GET of a bucket configuration remise answers as unset, if the query names one. */
export function unsetBucketConfiguration(query: URLSearchParams): Route | undefined {
  const missing = Object.entries(NOT_CONFIGURED).find(([sub]) => query.has(sub));
  if (missing) {
    const [, [operation, code, message]] = missing;
    return bucketRead(operation, () => Promise.reject(new S3Error(code, 404, message)));
  }
  const document = Object.entries(DEFAULT_DOCUMENTS).find(([sub]) => query.has(sub));
  if (document) {
    const [, [operation, root, body]] = document;
    return bucketRead(operation, () => Promise.resolve(xmlResponse(root, body)));
  }
  return undefined;
}

/** A read of a bucket's configuration: any right on the bucket allows it. */
function bucketRead(operation: string, answer: () => Promise<Response>): Route {
  return {
    name: operation,
    handler: async (r) => {
      await requireBucket(r, "any");
      return await answer();
    },
  };
}

/**
 * PutBucketNotificationConfiguration (and the older PutBucketNotification,
 * the same request). remise sends no event notifications: an empty
 * `<NotificationConfiguration/>`, which Terraform and boto3 send to clear
 * them, asks for none and succeeds with nothing to store; one that asks for
 * any (TopicConfiguration, QueueConfiguration, CloudFunctionConfiguration,
 * EventBridgeConfiguration, or a kind S3 adds later) is NotImplemented
 * rather than stored and never sent.
 */
export async function handlePutBucketNotification(r: S3Request): Promise<Response> {
  await requireBucket(r, "owner");
  const root = (await readRequestXml(r)).NotificationConfiguration;
  if (root === undefined) throw s3Errors.malformedXml();
  // The parser keeps the whitespace between elements as text; other text is no configuration.
  const content = typeof root === "string" ? { "#text": root } : xmlElement(root)!;
  const { "#text": text, ...children } = content;
  if (typeof text === "string" && text.trim() !== "") throw s3Errors.malformedXml();
  const asked = Object.keys(children);
  if (asked.length > 0) {
    throw s3Errors.notImplemented(`PutBucketNotificationConfiguration with ${asked.join(", ")}`);
  }
  return new Response(null, { status: 200 });
}

/** GetBucketAcl: the owner (the key asking) has full control. */
export async function handleGetBucketAcl(r: S3Request): Promise<Response> {
  await requireBucket(r, "any");
  return ownerFullControl(r.accessKeyId);
}

/** GetObjectAcl, of an object that exists. */
export async function handleGetObjectAcl(r: S3Request): Promise<Response> {
  await requireObject(r, "read");
  return ownerFullControl(r.accessKeyId);
}

/**
 * PutBucketAcl and PutObjectAcl with the canned ACL `private` (what holds
 * already); any other ACL is NotImplemented.
 */
export function setAclPrivate(operation: string): (r: S3Request) => Promise<Response> {
  return async (r) => {
    const canned = r.req.headers.get("x-amz-acl");
    checkCannedAcl(canned);
    if (canned !== "private" || (r.contentLength ?? 0) > 0) {
      throw s3Errors.notImplemented(`${operation} other than the canned ACL private`);
    }
    if (r.target.key === undefined) await requireBucket(r, "owner");
    else await requireObject(r, "write");
    return new Response(null, { status: 200 });
  };
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

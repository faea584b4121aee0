/**
 * A bucket's public access block (PutPublicAccessBlock, GetPublicAccessBlock,
 * DeletePublicAccessBlock), and the refusals it makes: see
 * `PublicAccessBlock` for what each of its four settings does in remise.
 * What Terraform's `aws_s3_bucket_public_access_block` and "block all public
 * access" in other tools set.
 */
import { readRequestXml } from "./request_xml.ts";
import {
  type Bucket,
  PUBLIC_ACCESS_BLOCK_SETTINGS,
  type PublicAccessBlock,
} from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlElement, xmlResponse, xmlText } from "./xml.ts";

/** Canned ACLs that grant to everyone, or to every AWS account. */
const PUBLIC_CANNED_ACLS = ["public-read", "public-read-write", "authenticated-read"];
const GRANT_HEADERS = [
  "x-amz-grant-read",
  "x-amz-grant-write",
  "x-amz-grant-read-acp",
  "x-amz-grant-write-acp",
  "x-amz-grant-full-control",
];
const PUBLIC_GROUPS = /acs\.amazonaws\.com\/groups\/global\/(AllUsers|AuthenticatedUsers)/;

/** Operations whose headers may ask for an ACL. */
const ACL_OPERATIONS = new Set([
  "PutObject",
  "CopyObject",
  "CreateMultipartUpload",
  "PutObjectAcl",
  "PutBucketAcl",
]);

function parseConfiguration(doc: Record<string, unknown>): PublicAccessBlock {
  const root = xmlElement(doc.PublicAccessBlockConfiguration);
  if (!root) throw s3Errors.malformedXml();
  const block = {} as PublicAccessBlock;
  for (const [field, element] of PUBLIC_ACCESS_BLOCK_SETTINGS) {
    const text = xmlText(root, element)?.trim().toLowerCase();
    // As S3: a setting left out is false.
    if (text !== undefined && text !== "true" && text !== "false") throw s3Errors.malformedXml();
    block[field] = text === "true";
  }
  return block;
}

export async function handlePutPublicAccessBlock(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const block = parseConfiguration(await readRequestXml(r));
  await r.ctx.access.setSetting(bucket, "publicAccessBlock", block);
  return new Response(null, { status: 200 });
}

export async function handleGetPublicAccessBlock(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const block = bucket.publicAccessBlock?.v;
  if (!block) {
    throw new S3Error(
      "NoSuchPublicAccessBlockConfiguration",
      404,
      "The public access block configuration was not found",
      { BucketName: bucket.name.v },
    );
  }
  return xmlResponse(
    "PublicAccessBlockConfiguration",
    Object.fromEntries(
      PUBLIC_ACCESS_BLOCK_SETTINGS.map(([field, element]) => [element, block[field]]),
    ),
  );
}

export const handleDeletePublicAccessBlock = deleteBucketSetting("publicAccessBlock");

/** Whether these request headers ask for an ACL that grants to everyone. */
function asksForPublicAcl(headers: Headers): boolean {
  const canned = headers.get("x-amz-acl")?.trim().toLowerCase();
  if (canned !== undefined && PUBLIC_CANNED_ACLS.includes(canned)) return true;
  return GRANT_HEADERS.some((name) => PUBLIC_GROUPS.test(headers.get(name) ?? ""));
}

/** BlockPublicAcls: a request of `operation` that asks for a public ACL is AccessDenied. */
export function refuseBlockedPublicAcl(
  bucket: Bucket | undefined,
  operation: string,
  headers: Headers,
): void {
  if (
    bucket?.publicAccessBlock?.v?.blockPublicAcls && ACL_OPERATIONS.has(operation) &&
    asksForPublicAcl(headers)
  ) {
    throw s3Errors.accessDenied(
      "Access Denied: public ACLs are blocked by the BlockPublicAcls block public access setting",
    );
  }
}

/** BlockPublicPolicy: every policy remise keeps is public, so none may be set. */
export function refuseBlockedPublicPolicy(bucket: Bucket): void {
  if (bucket.publicAccessBlock?.v?.blockPublicPolicy) {
    throw s3Errors.accessDenied(
      "Access Denied: public policies are blocked by the BlockPublicPolicy block public access setting",
    );
  }
}

/**
 * A bucket's default encryption (PutBucketEncryption, GetBucketEncryption,
 * DeleteBucketEncryption), as Terraform's
 * `aws_s3_bucket_server_side_encryption_configuration` sets it. SSE-S3
 * (`AES256`) encrypts later uploads that ask for no encryption (see
 * encryption.ts). SSE-KMS is NotImplemented, as on uploads.
 * `BlockedEncryptionTypes` with `SSE-C` refuses uploads encrypted with a
 * client's key; objects already written stay readable.
 */
import { readRequestXml } from "./request_xml.ts";
import type { Bucket, DefaultEncryption } from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, xmlElement, type XmlNode, xmlResponse, xmlText, xmlTexts } from "./xml.ts";

function parseConfiguration(doc: Record<string, unknown>): DefaultEncryption {
  const root = xmlElement(doc.ServerSideEncryptionConfiguration);
  const rules = asList(root?.Rule);
  if (!root || rules.length !== 1) throw s3Errors.malformedXml();
  const rule = xmlElement(rules[0]);
  if (!rule) throw s3Errors.malformedXml();
  const encryption: DefaultEncryption = { blockedTypes: [] };
  const byDefault = xmlElement(rule.ApplyServerSideEncryptionByDefault);
  if (rule.ApplyServerSideEncryptionByDefault !== undefined) {
    const algorithm = byDefault && xmlText(byDefault, "SSEAlgorithm");
    if (algorithm === "aws:kms" || algorithm === "aws:kms:dsse") {
      throw s3Errors.notImplemented(`Default encryption "${algorithm}" (only AES256)`);
    }
    if (algorithm !== "AES256") throw s3Errors.malformedXml();
    if (xmlText(byDefault!, "KMSMasterKeyID")) {
      throw s3Errors.invalidArgument(
        "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
        "ApplyServerSideEncryptionByDefault",
      );
    }
    encryption.algorithm = algorithm;
  }
  const bucketKey = xmlText(rule, "BucketKeyEnabled")?.trim().toLowerCase();
  if (bucketKey !== undefined) {
    if (bucketKey !== "true" && bucketKey !== "false") throw s3Errors.malformedXml();
    encryption.bucketKeyEnabled = bucketKey === "true";
  }
  const blocked = xmlElement(rule.BlockedEncryptionTypes);
  for (const type of blocked ? xmlTexts(blocked, "EncryptionType") : []) {
    if (type === "SSE-C") encryption.blockedTypes = ["SSE-C"];
    else if (type !== "NONE") {
      throw s3Errors.invalidArgument(
        `Invalid EncryptionType: ${type}`,
        "BlockedEncryptionTypes",
        type,
      );
    }
  }
  return encryption;
}

export async function handlePutBucketEncryption(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const encryption = parseConfiguration(await readRequestXml(r));
  await r.ctx.access.setSetting(bucket, "encryption", encryption);
  return new Response(null, { status: 200 });
}

export async function handleGetBucketEncryption(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const encryption = bucket.encryption?.v;
  if (!encryption) {
    throw new S3Error(
      "ServerSideEncryptionConfigurationNotFoundError",
      404,
      "The server side encryption configuration was not found",
      { BucketName: bucket.name.v },
    );
  }
  const rule: XmlNode = {};
  if (encryption.algorithm) {
    rule.ApplyServerSideEncryptionByDefault = { SSEAlgorithm: encryption.algorithm };
  }
  if (encryption.bucketKeyEnabled !== undefined) {
    rule.BucketKeyEnabled = encryption.bucketKeyEnabled;
  }
  rule.BlockedEncryptionTypes = {
    EncryptionType: encryption.blockedTypes.length > 0 ? encryption.blockedTypes : "NONE",
  };
  return xmlResponse("ServerSideEncryptionConfiguration", { Rule: rule });
}

export const handleDeleteBucketEncryption = deleteBucketSetting("encryption");

/** An upload encrypted with a client's key, where the bucket blocks SSE-C, is AccessDenied. */
export function refuseBlockedCustomerKey(bucket: Bucket): void {
  if (bucket.encryption?.v?.blockedTypes.includes("SSE-C")) {
    throw s3Errors.accessDenied(
      "Access Denied: the bucket's default encryption configuration blocks SSE-C uploads",
    );
  }
}

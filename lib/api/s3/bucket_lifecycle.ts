/**
 * PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration,
 * DeleteBucketLifecycle: rules that expire objects (Days or Date) and abort
 * multipart uploads (DaysAfterInitiation) under a key prefix, applied by
 * lib/model/lifecycle.ts, as are the deletion of noncurrent versions
 * (NoncurrentVersionExpiration) and of delete markers left alone
 * (ExpiredObjectDeleteMarker). Filters on tags or sizes and transitions to
 * other storage classes are NotImplemented.
 */
import type { LifecycleRule } from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, readXmlBody, xmlElement, type XmlNode, xmlResponse, xmlText } from "./xml.ts";

const RULES_MAX = 1000;
/** S3's bound on the noncurrent versions a rule may keep. */
const NEWER_NONCURRENT_MAX = 100;
const DAY_MS = 24 * 3600 * 1000;

function positiveDays(value: string, what: string): number {
  if (!/^\d{1,6}$/.test(value.trim()) || Number(value) < 1) {
    throw s3Errors.invalidArgument(`'${what}' must be a positive integer`, what, value);
  }
  return Number(value);
}

function parseRule(node: unknown): LifecycleRule {
  const rule = xmlElement(node);
  if (!rule) throw s3Errors.malformedXml();
  for (const unsupported of ["Transition", "NoncurrentVersionTransition"]) {
    if (rule[unsupported] !== undefined) {
      throw s3Errors.notImplemented(`Lifecycle ${unsupported} (remise has one storage class)`);
    }
  }
  const status = xmlText(rule, "Status");
  if (status !== "Enabled" && status !== "Disabled") throw s3Errors.malformedXml();
  const parsed: LifecycleRule = { enabled: status === "Enabled", prefix: "" };
  const id = xmlText(rule, "ID");
  if (id !== undefined) {
    if (id.length > 255) {
      throw s3Errors.invalidArgument("ID length should not exceed allowed limit of 255");
    }
    parsed.id = id;
  }
  const filter = xmlElement(rule.Filter);
  if (
    filter &&
    ["Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan"].some((f) =>
      filter[f] !== undefined
    )
  ) {
    throw s3Errors.notImplemented("Lifecycle filters other than a key prefix");
  }
  parsed.prefix = (filter ? xmlText(filter, "Prefix") : xmlText(rule, "Prefix")) ?? "";
  if (!filter && rule.Prefix !== undefined) parsed.rulePrefix = true;
  const expiration = xmlElement(rule.Expiration);
  if (expiration) {
    const days = xmlText(expiration, "Days");
    const date = xmlText(expiration, "Date");
    const marker = xmlText(expiration, "ExpiredObjectDeleteMarker");
    const given = [days, date, marker].filter((v) => v !== undefined).length;
    if (given !== 1) throw s3Errors.malformedXml();
    if (marker !== undefined) {
      if (marker !== "true" && marker !== "false") throw s3Errors.malformedXml();
      if (marker === "true") parsed.expiredObjectDeleteMarker = true;
    }
    if (days !== undefined) parsed.expirationDays = positiveDays(days, "Days");
    if (date !== undefined) {
      const ms = Date.parse(date);
      if (Number.isNaN(ms) || ms % DAY_MS !== 0) {
        throw s3Errors.invalidArgument("'Date' must be at midnight GMT", "Date", date);
      }
      parsed.expirationDateMs = ms;
    }
  }
  const abort = xmlElement(rule.AbortIncompleteMultipartUpload);
  if (abort) {
    const days = xmlText(abort, "DaysAfterInitiation");
    if (days === undefined) throw s3Errors.malformedXml();
    parsed.abortMultipartDays = positiveDays(days, "DaysAfterInitiation");
  }
  const noncurrent = xmlElement(rule.NoncurrentVersionExpiration);
  if (noncurrent) {
    const days = xmlText(noncurrent, "NoncurrentDays");
    if (days === undefined) throw s3Errors.malformedXml();
    parsed.noncurrentDays = positiveDays(days, "NoncurrentDays");
    const newer = xmlText(noncurrent, "NewerNoncurrentVersions");
    if (newer !== undefined) {
      const n = positiveDays(newer, "NewerNoncurrentVersions");
      if (n > NEWER_NONCURRENT_MAX) {
        throw s3Errors.invalidArgument(
          `'NewerNoncurrentVersions' must be at most ${NEWER_NONCURRENT_MAX}`,
          "NewerNoncurrentVersions",
          newer,
        );
      }
      parsed.newerNoncurrentVersions = n;
    }
  }
  const acts = parsed.expirationDays !== undefined || parsed.expirationDateMs !== undefined ||
    parsed.abortMultipartDays !== undefined || expiration !== undefined || noncurrent !== undefined;
  if (!acts) {
    throw s3Errors.invalidRequest("At least one action needs to be specified in a rule");
  }
  return parsed;
}

/** The rules a PutBucketLifecycleConfiguration body describes. */
export function parseLifecycleConfiguration(doc: Record<string, unknown>): LifecycleRule[] {
  const root = xmlElement(doc.LifecycleConfiguration);
  if (!root) throw s3Errors.malformedXml();
  const rules = asList(root.Rule).map(parseRule);
  if (rules.length === 0) throw s3Errors.malformedXml();
  if (rules.length > RULES_MAX) {
    throw s3Errors.invalidRequest(`A lifecycle configuration holds at most ${RULES_MAX} rules`);
  }
  const ids = rules.flatMap((r) => (r.id === undefined ? [] : [r.id]));
  if (new Set(ids).size !== ids.length) {
    throw s3Errors.invalidArgument("Rule ID must be unique. Found same ID for more than one rule");
  }
  return rules;
}

export async function handlePutBucketLifecycle(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  await r.ctx.access.setSetting(
    bucket,
    "lifecycle",
    parseLifecycleConfiguration(await readXmlBody(r.body)),
  );
  return new Response(null, { status: 200 });
}

export async function handleGetBucketLifecycle(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  const rules = bucket.lifecycle?.v;
  if (!rules) {
    throw new S3Error(
      "NoSuchLifecycleConfiguration",
      404,
      "The lifecycle configuration does not exist",
      { BucketName: bucket.name.v },
    );
  }
  return xmlResponse("LifecycleConfiguration", {
    Rule: rules.map((rule): XmlNode => ({
      ID: rule.id,
      // Given back in the form it was given.
      ...(rule.rulePrefix ? { Prefix: rule.prefix } : { Filter: { Prefix: rule.prefix } }),
      Status: rule.enabled ? "Enabled" : "Disabled",
      Expiration: rule.expirationDays !== undefined
        ? { Days: rule.expirationDays }
        : rule.expirationDateMs !== undefined
        ? { Date: new Date(rule.expirationDateMs).toISOString() }
        : rule.expiredObjectDeleteMarker
        ? { ExpiredObjectDeleteMarker: true }
        : undefined,
      NoncurrentVersionExpiration: rule.noncurrentDays === undefined ? undefined : {
        NoncurrentDays: rule.noncurrentDays,
        NewerNoncurrentVersions: rule.newerNoncurrentVersions,
      },
      AbortIncompleteMultipartUpload: rule.abortMultipartDays === undefined
        ? undefined
        : { DaysAfterInitiation: rule.abortMultipartDays },
    })),
  });
}

export const handleDeleteBucketLifecycle = deleteBucketSetting("lifecycle");

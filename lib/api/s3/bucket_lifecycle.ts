/**
 * PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration,
 * DeleteBucketLifecycle: rules that expire objects (Days or Date) and abort
 * multipart uploads (DaysAfterInitiation) under a key prefix, applied by
 * lib/model/lifecycle.ts, as are the deletion of noncurrent versions
 * (NoncurrentVersionExpiration) and of delete markers left alone
 * (ExpiredObjectDeleteMarker). A rule's filter selects keys by prefix,
 * objects by tags and size (Tag, ObjectSizeGreaterThan, ObjectSizeLessThan,
 * or an And of them). Transitions to other storage classes are
 * NotImplemented.
 */
import { readRequestXml } from "./request_xml.ts";
import { type LifecycleRule, lifecycleRuleEnabled } from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, xmlElement, type XmlNode, xmlResponse, xmlText } from "./xml.ts";

const RULES_MAX = 1000;
/** S3's bound on the noncurrent versions a rule may keep. */
const NEWER_NONCURRENT_MAX = 100;
const DAY_MS = 24 * 3600 * 1000;
/** S3's bounds on a tag's key and value. */
const TAG_KEY_MAX = 128;
const TAG_VALUE_MAX = 256;
const FILTER_CONDITIONS = ["Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"];

function positiveDays(value: string, what: string): number {
  if (!/^\d{1,6}$/.test(value.trim()) || Number(value) < 1) {
    throw s3Errors.invalidArgument(`'${what}' must be a positive integer`, what, value);
  }
  return Number(value);
}

/** A rule's Date: an ISO 8601 date at midnight GMT ("2026-12-01" or "2026-12-01T00:00:00Z"). */
function midnightDate(value: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms) || ms % DAY_MS !== 0) {
    throw s3Errors.invalidArgument("'Date' must be at midnight GMT", "Date", value);
  }
  return ms;
}

function parseRule(node: unknown): LifecycleRule {
  const rule = xmlElement(node);
  if (!rule) throw s3Errors.malformedXml();
  for (const unsupported of ["Transition", "NoncurrentVersionTransition"]) {
    if (rule[unsupported] === undefined) continue;
    // A transition S3 would refuse gets S3's error; a valid one is not implemented.
    for (const transition of asList(rule[unsupported])) {
      const date = xmlText(xmlElement(transition) ?? {}, "Date");
      if (date !== undefined) midnightDate(date);
    }
    throw s3Errors.notImplemented(`Lifecycle ${unsupported} (remise has one storage class)`);
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
  if (filter) {
    parseFilter(filter, parsed);
  } else {
    parsed.prefix = xmlText(rule, "Prefix") ?? "";
    if (rule.Prefix !== undefined) parsed.rulePrefix = true;
  }
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
    if (date !== undefined) parsed.expirationDateMs = midnightDate(date);
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
  // An upload in progress has neither tags nor a size yet, nor has a delete marker.
  const objectFilters = parsed.tags !== undefined || parsed.sizeGreaterThan !== undefined ||
    parsed.sizeLessThan !== undefined;
  if (objectFilters && parsed.abortMultipartDays !== undefined) {
    throw s3Errors.invalidRequest(
      "AbortIncompleteMultipartUpload cannot be specified with Tags or object size filters",
    );
  }
  if (objectFilters && parsed.expiredObjectDeleteMarker) {
    throw s3Errors.invalidRequest(
      "ExpiredObjectDeleteMarker cannot be specified with Tags or object size filters",
    );
  }
  if (objectFilters && parsed.enabled) {
    // Stored so that nodes that would ignore the filters skip the rule.
    parsed.enabled = false;
    parsed.filteredEnabled = true;
  }
  return parsed;
}

/** A rule's Filter: one condition, or an And of several (Tag repeated). */
function parseFilter(filter: Record<string, unknown>, parsed: LifecycleRule): void {
  const given = [...FILTER_CONDITIONS, "And"].filter((c) => filter[c] !== undefined);
  if (given.length > 1) throw s3Errors.malformedXml();
  if (given.length === 0) parsed.emptyFilter = true;
  let conditions = filter;
  if (filter.And !== undefined) {
    const and = xmlElement(filter.And);
    if (!and || !FILTER_CONDITIONS.some((c) => and[c] !== undefined)) {
      throw s3Errors.malformedXml();
    }
    conditions = and;
    parsed.filterAnd = true;
  }
  parsed.prefix = xmlText(conditions, "Prefix") ?? "";
  const tags = asList(conditions.Tag).map(parseTag);
  if (tags.length > 1 && !parsed.filterAnd) throw s3Errors.malformedXml();
  if (new Set(tags.map(([k]) => k)).size !== tags.length) {
    throw s3Errors.invalidRequest("Duplicate Tag Keys are not allowed.");
  }
  if (tags.length > 0) parsed.tags = tags;
  const greater = objectSize(conditions, "ObjectSizeGreaterThan");
  const less = objectSize(conditions, "ObjectSizeLessThan");
  if (greater !== undefined) parsed.sizeGreaterThan = greater;
  if (less !== undefined) parsed.sizeLessThan = less;
  if (greater !== undefined && less !== undefined && greater >= less) {
    throw s3Errors.invalidArgument(
      "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
      "ObjectSizeGreaterThan",
      String(greater),
    );
  }
}

function parseTag(node: unknown): [string, string] {
  const tag = xmlElement(node);
  const key = tag && xmlText(tag, "Key");
  if (!tag || key === undefined || key === "" || tag.Value === undefined) {
    throw s3Errors.malformedXml();
  }
  const value = xmlText(tag, "Value") ?? "";
  if (key.length > TAG_KEY_MAX || value.length > TAG_VALUE_MAX) {
    throw s3Errors.invalidArgument(
      `A tag's key is at most ${TAG_KEY_MAX} characters and its value at most ${TAG_VALUE_MAX}`,
      "Tag",
      key,
    );
  }
  return [key, value];
}

function objectSize(conditions: Record<string, unknown>, name: string): number | undefined {
  const text = xmlText(conditions, name);
  if (text === undefined) return undefined;
  const size = Number(text.trim());
  if (!/^\d{1,16}$/.test(text.trim()) || !Number.isSafeInteger(size)) {
    throw s3Errors.invalidArgument(`'${name}' must be a non-negative integer`, name, text);
  }
  return size;
}

/** A rule's Filter as it was given. */
function filterXml(rule: LifecycleRule): XmlNode {
  const tag = ([Key, Value]: [string, string]) => ({ Key, Value });
  const sizes = {
    ObjectSizeGreaterThan: rule.sizeGreaterThan,
    ObjectSizeLessThan: rule.sizeLessThan,
  };
  if (rule.filterAnd) {
    return {
      And: { Prefix: rule.prefix || undefined, Tag: rule.tags?.map(tag), ...sizes },
    };
  }
  if (rule.tags) return { Tag: tag(rule.tags[0]) };
  if (rule.sizeGreaterThan !== undefined || rule.sizeLessThan !== undefined) return sizes;
  if (rule.emptyFilter) return {};
  return { Prefix: rule.prefix };
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
  // As S3 does, a rule given without an ID gets one (x-amz-expiration names it).
  return rules.map((r) => r.id === undefined ? { id: generatedRuleId(), ...r } : r);
}

function generatedRuleId(): string {
  return btoa(crypto.randomUUID()).replaceAll("=", "");
}

export async function handlePutBucketLifecycle(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  await r.ctx.access.setSetting(
    bucket,
    "lifecycle",
    parseLifecycleConfiguration(await readRequestXml(r)),
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
      ...(rule.rulePrefix ? { Prefix: rule.prefix } : { Filter: filterXml(rule) }),
      Status: lifecycleRuleEnabled(rule) ? "Enabled" : "Disabled",
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

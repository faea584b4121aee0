/**
 * Object lock (WORM): a bucket's configuration (CreateBucket's
 * `x-amz-bucket-object-lock-enabled`, Put/GetObjectLockConfiguration), an
 * object's retention and legal hold (the `x-amz-object-lock-*` headers of
 * writes, Put/GetObjectRetention, Put/GetObjectLegalHold), and what answers
 * say of them. The rules on deletions are the model's (object_lock.ts).
 */
import { readRequestXml } from "./request_xml.ts";
import {
  type Bucket,
  type ObjectLockConfig,
  type RetentionMode,
  versioningOf,
} from "../../model/bucket_table.ts";
import { defaultRetention, type LockRequest } from "../../model/object_lock.ts";
import { type ObjectMeta, type Retention, versionIdOf } from "../../model/object_table.ts";
import { setMetaRegister } from "../../model/objects.ts";
import { requireBucket, requireObject, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlElement, type XmlNode, xmlResponse, xmlText } from "./xml.ts";

const MODES: RetentionMode[] = ["GOVERNANCE", "COMPLIANCE"];
/** S3's longest default retention: 100 years. */
const DEFAULT_RETENTION_MAX_DAYS = 36_500;

function missingConfiguration(): S3Error {
  return s3Errors.invalidRequest("Bucket is missing Object Lock Configuration");
}

/** A retention mode from a header (`name`), or from an XML body (undefined: MalformedXML, as S3). */
function parseMode(text: string | undefined, name?: string): RetentionMode {
  const mode = MODES.find((m) => m === text);
  if (mode) return mode;
  if (name === undefined) throw s3Errors.malformedXml();
  throw s3Errors.invalidArgument("Unknown wormMode directive.", name, text);
}

/** An ISO 8601 date in the future, as milliseconds. */
function parseRetainUntil(text: string | undefined, name: string, nowMs: number): number {
  const ms = text === undefined ? NaN : Date.parse(text);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(text!)) {
    throw s3Errors.invalidArgument(
      "The retain until date must be provided in ISO 8601 format",
      name,
      text,
    );
  }
  if (ms <= nowMs) {
    throw s3Errors.invalidArgument("The retain until date must be in the future!", name, text);
  }
  return ms;
}

/** A legal hold status from a header (`name`), or from an XML body (undefined: MalformedXML). */
function parseLegalHold(text: string | undefined, name?: string): boolean {
  if (text === "ON" || text === "OFF") return text === "ON";
  if (name === undefined) throw s3Errors.malformedXml();
  throw s3Errors.invalidArgument("Legal Hold must be either of 'ON' or 'OFF'", name, text);
}

/**
 * The lock a new object in `bucket` gets: what the request's headers (or a
 * form's fields) ask for, else the bucket's default retention. Asking for a
 * lock in a bucket without object lock is InvalidRequest.
 */
export function lockToWrite(
  get: (name: string) => string | null | undefined,
  bucket: Bucket,
  nowMs: number,
): LockRequest | undefined {
  const mode = get("x-amz-object-lock-mode") ?? undefined;
  const until = get("x-amz-object-lock-retain-until-date") ?? undefined;
  const hold = get("x-amz-object-lock-legal-hold") ?? undefined;
  const config = bucket.objectLock?.v;
  if (mode === undefined && until === undefined && hold === undefined) {
    const retention = defaultRetention(config, nowMs);
    return retention && { retention };
  }
  if (!config) throw missingConfiguration();
  if ((mode === undefined) !== (until === undefined)) {
    throw s3Errors.invalidArgument(
      "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
      mode === undefined ? "x-amz-object-lock-mode" : "x-amz-object-lock-retain-until-date",
    );
  }
  const lock: LockRequest = {};
  if (mode !== undefined) {
    lock.retention = {
      mode: parseMode(mode, "x-amz-object-lock-mode"),
      untilMs: parseRetainUntil(until, "x-amz-object-lock-retain-until-date", nowMs),
    };
  } else {
    lock.retention = defaultRetention(config, nowMs);
  }
  if (hold !== undefined) lock.legalHold = parseLegalHold(hold, "x-amz-object-lock-legal-hold");
  return lock;
}

/** The headers GetObject and HeadObject answer about an object's lock. */
export function lockHeaders(meta: ObjectMeta, headers: Headers): void {
  const retention = meta.retention?.v;
  if (retention) {
    headers.set("x-amz-object-lock-mode", retention.mode);
    headers.set("x-amz-object-lock-retain-until-date", isoDate(retention.untilMs));
  }
  if (meta.legalHold) headers.set("x-amz-object-lock-legal-hold", meta.legalHold.v ? "ON" : "OFF");
}

/** A date as S3 gives it: ISO 8601, to the millisecond (a client waiting for it waits long enough). */
function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** CreateBucket's `x-amz-bucket-object-lock-enabled`: whether the new bucket gets object lock. */
export function objectLockRequested(headers: Headers): boolean {
  const value = headers.get("x-amz-bucket-object-lock-enabled");
  if (value === null) return false;
  const enabled = value.trim().toLowerCase();
  if (enabled !== "true" && enabled !== "false") {
    throw s3Errors.invalidArgument(
      "x-amz-bucket-object-lock-enabled must be true or false",
      "x-amz-bucket-object-lock-enabled",
      value,
    );
  }
  return enabled === "true";
}

/** Turns object lock on for `bucket`, with versioning, which it needs. */
export async function enableObjectLock(
  r: S3Request,
  bucket: Bucket,
  config: ObjectLockConfig = { enabled: true },
): Promise<void> {
  if (versioningOf(bucket) !== "Enabled") {
    await r.ctx.access.setSetting(bucket, "versioning", "Enabled");
  }
  await r.ctx.access.setSetting(bucket, "objectLock", config);
}

/** Object lock keeps versioning enabled: suspending it is InvalidBucketState. */
export function refuseVersioningSuspension(bucket: Bucket, status: string): void {
  if (status === "Suspended" && bucket.objectLock?.v) {
    throw new S3Error(
      "InvalidBucketState",
      409,
      "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
    );
  }
}

function parseConfiguration(doc: Record<string, unknown>): ObjectLockConfig {
  const root = xmlElement(doc.ObjectLockConfiguration);
  if (!root || xmlText(root, "ObjectLockEnabled") !== "Enabled") throw s3Errors.malformedXml();
  const config: ObjectLockConfig = { enabled: true };
  if (root.Rule === undefined) return config;
  const defaults = xmlElement(xmlElement(root.Rule)?.DefaultRetention);
  if (!defaults) throw s3Errors.malformedXml();
  const mode = parseMode(xmlText(defaults, "Mode"));
  const days = xmlText(defaults, "Days");
  const years = xmlText(defaults, "Years");
  if ((days === undefined) === (years === undefined)) throw s3Errors.malformedXml();
  const count = Number(days ?? years);
  const inDays = days !== undefined ? count : count * 365;
  if (!Number.isInteger(count) || count <= 0 || inDays > DEFAULT_RETENTION_MAX_DAYS) {
    throw new S3Error(
      "InvalidRetentionPeriod",
      400,
      "Default retention period must be a positive integer value of at most 100 years",
    );
  }
  config.defaultRetention = days !== undefined ? { mode, days: count } : { mode, years: count };
  return config;
}

export async function handlePutObjectLockConfiguration(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const config = parseConfiguration(await readRequestXml(r));
  if (!bucket.objectLock?.v && versioningOf(bucket) !== "Enabled") {
    throw new S3Error(
      "InvalidBucketState",
      409,
      "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
    );
  }
  await enableObjectLock(r, bucket, config);
  return new Response(null, { status: 200 });
}

export async function handleGetObjectLockConfiguration(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  const config = bucket.objectLock?.v;
  if (!config) {
    throw new S3Error(
      "ObjectLockConfigurationNotFoundError",
      404,
      "Object Lock configuration does not exist for this bucket",
      { BucketName: bucket.name.v },
    );
  }
  const body: XmlNode = { ObjectLockEnabled: "Enabled" };
  const rule = config.defaultRetention;
  if (rule) {
    body.Rule = {
      DefaultRetention: {
        Mode: rule.mode,
        ...(rule.days !== undefined ? { Days: rule.days } : { Years: rule.years }),
      },
    };
  }
  return xmlResponse("ObjectLockConfiguration", body);
}

function noLockConfiguration(): S3Error {
  return new S3Error(
    "NoSuchObjectLockConfiguration",
    404,
    "The specified object does not have a ObjectLock configuration",
  );
}

/** The bypass of GOVERNANCE retention a request asks for; only a bucket's owner may. */
export function bypassesGovernance(r: S3Request, bucket: Bucket): boolean {
  const asked = r.req.headers.get("x-amz-bypass-governance-retention")?.trim().toLowerCase() ===
    "true";
  if (asked && !r.ctx.access.permissionOf(bucket, r.accessKeyId).owner) {
    throw s3Errors.accessDenied("Only the bucket's owner may bypass GOVERNANCE retention");
  }
  return asked;
}

export async function handlePutObjectRetention(r: S3Request): Promise<Response> {
  const { bucket, key, current } = await requireObject(r, "write");
  if (!bucket.objectLock?.v) throw missingConfiguration();
  const root = xmlElement((await readRequestXml(r)).Retention);
  if (!root) throw s3Errors.malformedXml();
  const now = r.ctx.store.nowMs();
  // Empty elements ask for no retention too: SDKs that serialize an empty string (aws-sdk-go's
  // Mode: "") send <Mode></Mode> to remove one.
  const modeText = xmlText(root, "Mode") || undefined;
  const untilText = xmlText(root, "RetainUntilDate") || undefined;
  if ((modeText === undefined) !== (untilText === undefined)) throw s3Errors.malformedXml();
  const retention: Retention | null = modeText === undefined ? null : {
    mode: parseMode(modeText),
    untilMs: parseRetainUntil(untilText, "RetainUntilDate", now),
  };
  const meta = current.data.meta;
  const old = meta.retention?.v;
  // A retention that still holds may be lengthened; anything else (shorter,
  // another mode, none) only for GOVERNANCE, by a request that bypasses it.
  const lengthened = old && retention && retention.mode === old.mode &&
    retention.untilMs >= old.untilMs;
  if (old && old.untilMs > now && !lengthened) {
    if (old.mode === "COMPLIANCE" || !bypassesGovernance(r, bucket)) {
      throw s3Errors.accessDenied(
        `Access Denied because object protected by object lock: retained in ${old.mode} mode`,
      );
    }
  }
  const version = await setMetaRegister(
    r.ctx.store,
    bucket.id,
    key,
    current,
    "retention",
    retention,
  );
  return new Response(null, { status: 200, headers: { "x-amz-version-id": versionIdOf(version) } });
}

export async function handleGetObjectRetention(r: S3Request): Promise<Response> {
  const { bucket, current } = await requireObject(r, "read");
  if (!bucket.objectLock?.v) throw missingConfiguration();
  const retention = current.data.meta.retention?.v;
  if (!retention) throw noLockConfiguration();
  return xmlResponse("Retention", {
    Mode: retention.mode,
    RetainUntilDate: isoDate(retention.untilMs),
  });
}

export async function handlePutObjectLegalHold(r: S3Request): Promise<Response> {
  const { bucket, key, current } = await requireObject(r, "write");
  if (!bucket.objectLock?.v) throw missingConfiguration();
  const root = xmlElement((await readRequestXml(r)).LegalHold);
  if (!root) throw s3Errors.malformedXml();
  const on = parseLegalHold(xmlText(root, "Status"));
  // A key that may only write (a backup tool's, say) may place a hold, not lift one.
  if (
    !on && current.data.meta.legalHold?.v && !r.ctx.access.permissionOf(bucket, r.accessKeyId).owner
  ) {
    throw s3Errors.accessDenied("Only the bucket's owner may lift a legal hold");
  }
  const version = await setMetaRegister(r.ctx.store, bucket.id, key, current, "legalHold", on);
  return new Response(null, { status: 200, headers: { "x-amz-version-id": versionIdOf(version) } });
}

export async function handleGetObjectLegalHold(r: S3Request): Promise<Response> {
  const { bucket, current } = await requireObject(r, "read");
  if (!bucket.objectLock?.v) throw missingConfiguration();
  const hold = current.data.meta.legalHold;
  if (!hold) throw noLockConfiguration();
  return xmlResponse("LegalHold", { Status: hold.v ? "ON" : "OFF" });
}

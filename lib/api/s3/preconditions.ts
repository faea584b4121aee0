/** Conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since. */
import type { CurrentObject } from "../../model/objects.ts";
import { S3Error, s3Errors } from "./s3_error.ts";

const preconditionFailed = (condition: string) =>
  new S3Error(
    "PreconditionFailed",
    412,
    "At least one of the pre-conditions you specified did not hold",
    {
      Condition: condition,
    },
  );

/** Whether an If-Match / If-None-Match list matches the ETag ("*" matches any existing object). */
function etagListMatches(list: string, etag: string): boolean {
  return list.split(",").map((s) => s.trim().replace(/^W\//, "")).some((t) =>
    t === "*" || t === `"${etag}"` || t === etag
  );
}

function parseHttpDate(value: string | null): number | undefined {
  if (value === null) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The check of a conditional write (PutObject, CopyObject,
 * CompleteMultipartUpload) against the key's current object: undefined
 * when the request has no If-Match or If-None-Match. `If-None-Match: *`
 * creates only, `If-None-Match: ETAG` does not replace that object;
 * `If-Match: ETAG` replaces only that object, `If-Match: *` any.
 */
export function writePrecondition(
  headers: Headers,
): ((current: CurrentObject | undefined) => void) | undefined {
  const ifNoneMatch = headers.get("if-none-match");
  const ifMatch = headers.get("if-match");
  if (ifNoneMatch === null && ifMatch === null) return undefined;
  return (current) => {
    if (ifNoneMatch !== null && current && etagListMatches(ifNoneMatch, current.data.meta.etag)) {
      throw preconditionFailed("If-None-Match");
    }
    if (ifMatch !== null) {
      if (!current) throw s3Errors.noSuchKey("");
      if (!etagListMatches(ifMatch, current.data.meta.etag)) throw preconditionFailed("If-Match");
    }
  };
}

/**
 * A conditional delete (DeleteObject's If-Match, DeleteObjects' ETag): the
 * object must exist (else NoSuchKey) and have a matching ETag ("*" any).
 */
export function checkDeletePrecondition(
  ifMatch: string,
  object: CurrentObject | undefined,
  key: string,
): void {
  if (!object) throw s3Errors.noSuchKey(key);
  if (!etagListMatches(ifMatch, object.data.meta.etag)) throw preconditionFailed("If-Match");
}

/** The object changed between a conditional delete's check and the deletion. */
export const changedBeforeDelete = () => preconditionFailed("If-Match");

/**
 * Whether a Range applies under If-Range (RFC 9110): the ETag, compared
 * strongly, or the Last-Modified date (to the second) must be the object's;
 * else the whole object is sent, never a range of another version's bytes.
 */
export function ifRangeHolds(headers: Headers, etag: string, lastModifiedMs: number): boolean {
  const ifRange = headers.get("if-range")?.trim();
  if (ifRange === undefined) return true;
  if (ifRange.startsWith('"')) return ifRange === `"${etag}"`;
  const date = parseHttpDate(ifRange);
  return date !== undefined && Math.floor(date / 1000) === Math.floor(lastModifiedMs / 1000);
}

/**
 * Conditional GET/HEAD, as S3 evaluates them: a matching If-Match overrides
 * a failed If-Unmodified-Since, and a failed If-None-Match overrides a
 * succeeded If-Modified-Since. Returns 304 when not modified; throws 412.
 */
export function evaluateReadPreconditions(
  headers: Headers,
  etag: string,
  lastModifiedMs: number,
  prefix = "",
): "ok" | "notModified" {
  const get = (name: string) => headers.get(prefix + name);
  const modifiedSeconds = Math.floor(lastModifiedMs / 1000);
  const ifMatch = get("if-match");
  const ifUnmodifiedSince = parseHttpDate(get("if-unmodified-since"));
  if (ifMatch !== null) {
    if (!etagListMatches(ifMatch, etag)) throw preconditionFailed(`${prefix}If-Match`);
  } else if (
    ifUnmodifiedSince !== undefined && modifiedSeconds > Math.floor(ifUnmodifiedSince / 1000)
  ) {
    throw preconditionFailed(`${prefix}If-Unmodified-Since`);
  }
  const ifNoneMatch = get("if-none-match");
  const ifModifiedSince = parseHttpDate(get("if-modified-since"));
  if (ifNoneMatch !== null) {
    if (etagListMatches(ifNoneMatch, etag)) return "notModified";
  } else if (
    ifModifiedSince !== undefined && modifiedSeconds <= Math.floor(ifModifiedSince / 1000)
  ) {
    return "notModified";
  }
  return "ok";
}

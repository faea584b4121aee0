/** S3's x-amz-expiration header: when a lifecycle rule will expire the object written or read. */
import type { Bucket } from "../../model/bucket_table.ts";
import { objectExpiration, subjectOf } from "../../model/lifecycle.ts";
import type { ObjectMeta } from "../../model/object_table.ts";

/** A rule id as a header value may hold it: characters outside printable ASCII, and quotes, percent-encoded. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]|["%]/gu, (c) => encodeURIComponent(c));
}

/**
 * `x-amz-expiration: expiry-date="…", rule-id="…"` for the current object
 * of `key` (`meta`, last modified at `modifiedMs`), when an enabled rule of
 * the bucket expires it; no header otherwise.
 */
export function expirationHeader(
  bucket: Bucket,
  key: string,
  modifiedMs: number,
  meta: ObjectMeta,
): Record<string, string> {
  const rules = bucket.lifecycle?.v;
  if (!rules) return {};
  const found = objectExpiration(rules, key, modifiedMs, subjectOf(meta));
  if (found === undefined) return {};
  const date = `expiry-date="${new Date(found.atMs).toUTCString()}"`;
  return {
    "x-amz-expiration": found.ruleId === undefined
      ? date
      : `${date}, rule-id="${headerSafe(found.ruleId)}"`,
  };
}

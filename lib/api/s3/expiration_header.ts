/** S3's x-amz-expiration header: when a lifecycle rule will expire the object written or read. */
import type { Bucket } from "../../model/bucket_table.ts";
import { objectExpiration } from "../../model/lifecycle.ts";

/** A rule id as a header value may hold it: characters outside printable ASCII, and quotes, percent-encoded. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]|["%]/gu, (c) => encodeURIComponent(c));
}

/**
 * `x-amz-expiration: expiry-date="…", rule-id="…"` for the current object
 * of `key` last modified at `modifiedMs`, when an enabled rule of the
 * bucket expires it; no header otherwise.
 */
export function expirationHeader(
  bucket: Bucket,
  key: string,
  modifiedMs: number,
): Record<string, string> {
  const found = objectExpiration(bucket.lifecycle?.v ?? undefined, key, modifiedMs);
  if (found === undefined) return {};
  const date = `expiry-date="${new Date(found.atMs).toUTCString()}"`;
  return {
    "x-amz-expiration": found.ruleId === undefined
      ? date
      : `${date}, rule-id="${headerSafe(found.ruleId)}"`,
  };
}

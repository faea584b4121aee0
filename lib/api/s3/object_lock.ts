/**
 * Object lock (WORM retention and legal holds) is not implemented. Asking
 * for it is refused rather than ignored: a client that believes its backups
 * cannot be deleted would be wrong.
 */
import { s3Errors } from "./s3_error.ts";

const OBJECT_LOCK_HEADERS = [
  "x-amz-object-lock-mode",
  "x-amz-object-lock-retain-until-date",
  "x-amz-object-lock-legal-hold",
];

/** Throws NotImplemented when the request asks for object lock. */
export function refuseObjectLock(headers: Headers): void {
  const asked = OBJECT_LOCK_HEADERS.find((name) => headers.has(name)) ??
    (headers.get("x-amz-bucket-object-lock-enabled")?.toLowerCase() === "true"
      ? "x-amz-bucket-object-lock-enabled"
      : undefined);
  if (asked) throw s3Errors.notImplemented(`Object lock (${asked})`);
}

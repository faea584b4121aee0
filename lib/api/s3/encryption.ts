/**
 * Server-side encryption requests. remise stores data as the disk holds it
 * (encrypt the disk to protect data at rest), so SSE-S3 (`AES256`, the
 * provider's own keys) is accepted as what the operator provides. Encryption
 * with the customer's key (SSE-C) or a key service (SSE-KMS) is refused:
 * ignoring it would store readable data while the client believes it needs
 * its key.
 */
import { s3Errors } from "./s3_error.ts";

const CUSTOMER_KEY_PREFIXES = [
  "x-amz-server-side-encryption-customer-",
  "x-amz-copy-source-server-side-encryption-customer-",
];
const KMS_HEADERS = [
  "x-amz-server-side-encryption-aws-kms-key-id",
  "x-amz-server-side-encryption-context",
];

/**
 * Throws NotImplemented when a request (headers, or a form's fields) asks
 * for SSE-C or SSE-KMS, and InvalidArgument for a key given without the
 * encryption it belongs to.
 */
export function refuseUnsupportedEncryption(
  get: (name: string) => string | null | undefined,
  method = "POST",
) {
  for (const prefix of CUSTOMER_KEY_PREFIXES) {
    if (get(`${prefix}algorithm`) != null) {
      throw s3Errors.notImplemented("Server-side encryption with customer keys (SSE-C)");
    }
  }
  // The rest concerns what is written; reads (the hot path) skip these lookups.
  if (method !== "PUT" && method !== "POST") return;
  for (const prefix of CUSTOMER_KEY_PREFIXES) {
    if (get(`${prefix}key`) != null || get(`${prefix}key-md5`) != null) {
      throw s3Errors.invalidArgument(
        "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        `${prefix}algorithm`,
      );
    }
  }
  const requested = get("x-amz-server-side-encryption");
  if (requested != null && requested !== "AES256") {
    throw s3Errors.notImplemented(`Server-side encryption "${requested}" (only AES256)`);
  }
  const kms = KMS_HEADERS.find((name) => get(name) != null);
  if (kms) {
    throw s3Errors.invalidArgument(
      "Server Side Encryption with KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
      kms,
    );
  }
}

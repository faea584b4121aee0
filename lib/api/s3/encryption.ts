/**
 * Server-side encryption requests. remise stores data as the disk holds it
 * (encrypt the disk to protect data at rest), so SSE-S3 (`AES256`, the
 * provider's own keys) is accepted as what the operator provides. Encryption
 * with the customer's key (SSE-C) or a key service (SSE-KMS) is refused:
 * ignoring it would store readable data while the client believes it needs
 * its key.
 */
import { s3Errors } from "./s3_error.ts";

const CUSTOMER_KEY_HEADERS = [
  "x-amz-server-side-encryption-customer-algorithm",
  "x-amz-copy-source-server-side-encryption-customer-algorithm",
];

/** Throws NotImplemented when a request (headers, or a form's fields) asks for SSE-C or SSE-KMS. */
export function refuseUnsupportedEncryption(get: (name: string) => string | null | undefined) {
  if (CUSTOMER_KEY_HEADERS.some((name) => get(name) != null)) {
    throw s3Errors.notImplemented("Server-side encryption with customer keys (SSE-C)");
  }
  const requested = get("x-amz-server-side-encryption");
  if (requested != null && requested !== "AES256") {
    throw s3Errors.notImplemented(`Server-side encryption "${requested}" (only AES256)`);
  }
}

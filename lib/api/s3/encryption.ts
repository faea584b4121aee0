/**
 * Server-side encryption requests. SSE-C (the client's own key, sent with
 * every request) encrypts the data remise stores (see customer_key.ts).
 * SSE-S3 (`AES256`, the provider's own keys) is accepted as what the operator
 * provides: remise stores other data as the disk holds it (encrypt the disk
 * to protect data at rest). SSE-KMS is refused: ignoring it would store
 * readable data while the client believes it needs its key service.
 */
import { CustomerKey } from "../../model/customer_key.ts";
import type { ObjectMeta } from "../../model/object_table.ts";
import type { Bucket } from "../../model/bucket_table.ts";
import { refuseBlockedCustomerKey } from "./bucket_encryption.ts";
import { fromBase64, toBase64 } from "../../util/hash.ts";
import { S3Error, s3Errors } from "./s3_error.ts";

/** The headers of the object's key; a copy's source has its own, under the copy-source prefix. */
export const CUSTOMER_KEY_PREFIX = "x-amz-server-side-encryption-customer-";
export const COPY_SOURCE_KEY_PREFIX = "x-amz-copy-source-server-side-encryption-customer-";

const KMS_HEADERS = [
  "x-amz-server-side-encryption-aws-kms-key-id",
  "x-amz-server-side-encryption-context",
];

/**
 * Throws NotImplemented when a request (headers, or a form's fields) asks
 * for SSE-KMS or another unknown encryption, and InvalidArgument for a key
 * service's header given without it. Reads (the hot path) skip these lookups.
 */
export function refuseUnsupportedEncryption(
  get: (name: string) => string | null | undefined,
  method = "POST",
) {
  if (method !== "PUT" && method !== "POST") return;
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

/**
 * The client's key a request sends (SSE-C), from the headers under `prefix`:
 * the object's by default, or the copy source's. Undefined when none; a key
 * that is incomplete, malformed or not the one its MD5 names is InvalidArgument.
 */
export function customerKeyOf(
  headers: Headers,
  prefix = CUSTOMER_KEY_PREFIX,
): CustomerKey | undefined {
  const algorithm = headers.get(`${prefix}algorithm`);
  const encoded = headers.get(`${prefix}key`)?.trim();
  const md5 = headers.get(`${prefix}key-md5`)?.trim();
  if (algorithm === null) {
    if (encoded === undefined && md5 === undefined) return undefined;
    throw s3Errors.invalidArgument(
      "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
      `${prefix}algorithm`,
    );
  }
  if (algorithm !== "AES256") {
    throw new S3Error(
      "InvalidEncryptionAlgorithmError",
      400,
      "The Encryption request you specified is not valid. Supported value: AES256.",
      { ArgumentName: `${prefix}algorithm`, ArgumentValue: algorithm },
    );
  }
  if (encoded === undefined) {
    throw s3Errors.invalidArgument(
      "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
      `${prefix}key`,
    );
  }
  const raw = fromBase64(encoded);
  const key = toBase64(raw) === encoded ? CustomerKey.fromBytes(raw) : undefined;
  if (!key) {
    throw s3Errors.invalidArgument(
      "The secret key was invalid for the specified algorithm.",
      `${prefix}key`,
    );
  }
  if (md5 === undefined) {
    throw s3Errors.invalidArgument(
      "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
      `${prefix}key-MD5`,
    );
  }
  if (md5 !== key.md5Base64) {
    throw s3Errors.invalidArgument(
      "The calculated MD5 hash of the key did not match the hash that was provided.",
      `${prefix}key-MD5`,
    );
  }
  return key;
}

/**
 * The key a write into `bucket` encrypts with (SSE-C); it cannot go with
 * another encryption, nor into a bucket that blocks SSE-C uploads.
 */
export function customerKeyToWrite(headers: Headers, bucket: Bucket): CustomerKey | undefined {
  const key = customerKeyOf(headers);
  if (!key) return undefined;
  if (headers.get("x-amz-server-side-encryption") !== null) {
    throw s3Errors.invalidArgument(
      "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
      "x-amz-server-side-encryption",
    );
  }
  refuseBlockedCustomerKey(bucket);
  return key;
}

/**
 * Checks the key a request sends against how the object's data is
 * encrypted: an encrypted object needs its own key, and a plain one takes
 * none. Returns the key to decrypt with.
 */
function keyToRead(
  meta: Pick<ObjectMeta, "encryption">,
  key: CustomerKey | undefined,
): CustomerKey | undefined {
  if (!meta.encryption) {
    if (key) {
      throw s3Errors.invalidRequest("The encryption parameters are not applicable to this object.");
    }
    return undefined;
  }
  if (!key) {
    throw s3Errors.invalidRequest(
      "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
    );
  }
  if (!key.matches(meta.encryption)) {
    throw new S3Error(
      "AccessDenied",
      403,
      "The encryption key provided is not the one the object was encrypted with.",
    );
  }
  return key;
}

/**
 * The key to decrypt an object (or a copy's source, with its `prefix`) with,
 * from the request's headers, checked as `keyToRead` does. A plain object
 * read without SSE-C headers, the common case, costs one header lookup: a
 * key sent there without its algorithm is not looked for.
 */
export function keyToReadFrom(
  meta: Pick<ObjectMeta, "encryption">,
  headers: Headers,
  prefix = CUSTOMER_KEY_PREFIX,
): CustomerKey | undefined {
  if (!meta.encryption && headers.get(`${prefix}algorithm`) === null) return undefined;
  return keyToRead(meta, customerKeyOf(headers, prefix));
}

/** What answers about data encrypted with `key` say of it. */
export function customerKeyHeaders(key: CustomerKey | undefined): Record<string, string> {
  if (!key) return {};
  return {
    [`${CUSTOMER_KEY_PREFIX}algorithm`]: "AES256",
    [`${CUSTOMER_KEY_PREFIX}key-md5`]: key.md5Base64,
  };
}

/**
 * Checks the key a part (or a completion) sends against its multipart
 * upload's: an encrypted upload needs its own key with every part, and a
 * plain one takes none. Returns the key to encrypt the part with.
 */
export function keyForUpload(
  encryption: ObjectMeta["encryption"],
  key: CustomerKey | undefined,
): CustomerKey | undefined {
  if (!encryption) {
    if (key) {
      throw s3Errors.invalidRequest(
        "The multipart upload was not created with server-side encryption parameters.",
      );
    }
    return undefined;
  }
  if (!key) {
    throw s3Errors.invalidRequest(
      "The multipart upload was created with server-side encryption: each part must provide its encryption parameters.",
    );
  }
  if (!key.matches(encryption)) {
    throw s3Errors.invalidRequest(
      "The provided encryption parameters did not match the ones used originally.",
    );
  }
  return key;
}

/**
 * Server-side encryption requests. SSE-C (the client's own key, sent with
 * every request; see customer_key.ts) and SSE-S3 (`AES256`, asked by the
 * request or by the bucket's default encryption: a key of the object's own,
 * kept in its metadata; see managed_key.ts) encrypt the data remise stores.
 * SSE-KMS is refused: ignoring it would store readable data while the client
 * believes it needs its key service.
 */
import { CustomerKey } from "../../model/customer_key.ts";
import type { DataEncryption, DataKey } from "../../model/data_key.ts";
import { isManaged, ManagedKey } from "../../model/managed_key.ts";
import type { ObjectMeta } from "../../model/object_table.ts";
import type { Bucket } from "../../model/bucket_table.ts";
import { refuseBlockedCustomerKey } from "./bucket_encryption.ts";
import { fromBase64, toBase64 } from "../../util/hash.ts";
import { S3Error, s3Errors } from "./s3_error.ts";

/** The headers of the object's key; a copy's source has its own, under the copy-source prefix. */
export const CUSTOMER_KEY_PREFIX = "x-amz-server-side-encryption-customer-";
export const COPY_SOURCE_KEY_PREFIX = "x-amz-copy-source-server-side-encryption-customer-";

/** What answers about data encrypted with a key of its own (SSE-S3) say. */
const MANAGED_KEY_HEADERS = { "x-amz-server-side-encryption": "AES256" };

const KMS_HEADERS = [
  "x-amz-server-side-encryption-aws-kms-key-id",
  "x-amz-server-side-encryption-context",
];

/** The values of x-amz-server-side-encryption S3 knows besides AES256 (none served by remise). */
const S3_ENCRYPTIONS = ["aws:kms", "aws:kms:dsse", "aws:fsx"];

/**
 * Throws NotImplemented when a request (headers, or a form's fields) asks
 * for SSE-KMS, and InvalidArgument for an encryption S3 does not have, one
 * asked beside a customer key, or a key service's header given without it. Reads (the hot path) skip these lookups.
 */
export function refuseUnsupportedEncryption(
  get: (name: string) => string | null | undefined,
  method = "POST",
) {
  if (method !== "PUT" && method !== "POST") return;
  const requested = get("x-amz-server-side-encryption");
  if (requested != null && requested !== "AES256") {
    // What S3 has but remise does not is NotImplemented; what S3 has not, or asked beside a
    // customer key, is a client's mistake.
    if (!S3_ENCRYPTIONS.includes(requested)) {
      throw s3Errors.invalidArgument(
        "The encryption method specified is not supported",
        "x-amz-server-side-encryption",
        requested,
      );
    }
    if (get(`${CUSTOMER_KEY_PREFIX}algorithm`) != null) {
      throw s3Errors.invalidArgument(
        "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        "x-amz-server-side-encryption",
        requested,
      );
    }
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
 * The key a write into `bucket` encrypts with: the client's (SSE-C), which
 * cannot go with another encryption nor into a bucket that blocks SSE-C
 * uploads; else a new key of the object's own (SSE-S3) when the request
 * (`x-amz-server-side-encryption: AES256`, checked by
 * refuseUnsupportedEncryption) or the bucket's default encryption asks for
 * it; else none.
 */
export function keyToWrite(headers: Headers, bucket: Bucket): DataKey | undefined {
  const requested = headers.get("x-amz-server-side-encryption");
  const key = customerKeyOf(headers);
  if (key) {
    if (requested !== null) {
      throw s3Errors.invalidArgument(
        "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        "x-amz-server-side-encryption",
      );
    }
    refuseBlockedCustomerKey(bucket);
    return key;
  }
  const byDefault = bucket.encryption?.v?.algorithm;
  return requested === "AES256" || byDefault === "AES256" ? ManagedKey.generate() : undefined;
}

/**
 * Checks the key a request sends against how the object's data is
 * encrypted: an object encrypted with a client's key needs it, and others
 * take none. Returns the key to decrypt with.
 */
function keyToRead(
  meta: Pick<ObjectMeta, "encryption">,
  key: CustomerKey | undefined,
): DataKey | undefined {
  if (!meta.encryption || isManaged(meta.encryption)) {
    if (key) {
      throw s3Errors.invalidRequest("The encryption parameters are not applicable to this object.");
    }
    return meta.encryption && ManagedKey.of(meta.encryption);
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
): DataKey | undefined {
  if (!meta.encryption && headers.get(`${prefix}algorithm`) === null) return undefined;
  return keyToRead(meta, customerKeyOf(headers, prefix));
}

/** What answers about data encrypted with `key` say of it. */
export function encryptionHeaders(key: DataKey | undefined): Record<string, string> {
  if (key instanceof CustomerKey) {
    return {
      [`${CUSTOMER_KEY_PREFIX}algorithm`]: "AES256",
      [`${CUSTOMER_KEY_PREFIX}key-md5`]: key.md5Base64,
    };
  }
  return key ? { ...MANAGED_KEY_HEADERS } : {};
}

/**
 * Checks the key a part sends against its multipart upload's: an upload
 * encrypted with a client's key needs it with every part, and others take
 * none. Returns the key to encrypt the part with.
 */
export function keyForUpload(
  encryption: DataEncryption | undefined,
  key: CustomerKey | undefined,
): DataKey | undefined {
  if (!encryption || isManaged(encryption)) {
    if (key) {
      throw s3Errors.invalidRequest(
        encryption
          ? "The multipart upload was created with server-side encryption of its own (SSE-S3): its parts take no customer key."
          : "The multipart upload was not created with server-side encryption parameters.",
      );
    }
    return encryption && ManagedKey.of(encryption);
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

/** The header of an object encrypted with a key of its own (SSE-S3), for answers that have no key at hand. */
export function managedEncryptionHeaders(
  encryption: DataEncryption | undefined,
): Record<string, string> {
  return encryption && isManaged(encryption) ? { ...MANAGED_KEY_HEADERS } : {};
}

/**
 * A GET or HEAD of an object that asks for an encryption is InvalidArgument,
 * as in S3: a read decrypts with the key the object was written with.
 */
export function refuseEncryptionOnRead(headers: Headers): void {
  const requested = headers.get("x-amz-server-side-encryption");
  if (requested === null) return;
  throw s3Errors.invalidArgument(
    "The x-amz-server-side-encryption header is not supported for this operation.",
    "x-amz-server-side-encryption",
    requested,
  );
}

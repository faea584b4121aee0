/**
 * Headers that a presigned URL carries in its query. Presigners move a
 * request's headers there so that whoever holds the URL needs to send none:
 * the AWS SDKs move the `x-amz-*` ones (metadata, tagging, storage class,
 * object lock, encryption, copy source), and Signature V2 presigners
 * (botocore) `Content-Type` and `Content-MD5` as well. S3 applies them as the
 * headers they were; ignoring them would store an object without the lock or
 * the metadata its writer asked for, and answer 200. Checksums are the
 * exception: S3 ignores them in presigned URLs, where the AWS SDK for
 * JavaScript puts the CRC32 of the empty body it was given (a V2 signature
 * still covers them, see signedOnlyQueryHeaders).
 */
import { percentDecode, type RawQueryParam } from "./canonical_request.ts";
import { s3Errors } from "../s3_error.ts";

/** The parameters of a presigned URL's own signature, which are no headers. */
const SIGNATURE_PARAMS = new Set([
  "x-amz-algorithm",
  "x-amz-credential",
  "x-amz-date",
  "x-amz-expires",
  "x-amz-signedheaders",
  "x-amz-signature",
  "x-amz-security-token",
]);

/** Which signature a query carries, if any. */
export function presignedVersion(params: readonly RawQueryParam[]): 2 | 4 | undefined {
  let v2 = false;
  for (const p of params) {
    if (
      p.name === "X-Amz-Signature" || p.name === "X-Amz-Credential" || p.name === "X-Amz-Algorithm"
    ) {
      return 4;
    }
    if (p.name === "AWSAccessKeyId") v2 = true;
  }
  return v2 ? 2 : undefined;
}

/**
 * The headers a presigned URL's query holds, by lower-case name, values
 * decoded as a query's are (`+` is a space); empty for a request that is not
 * presigned.
 */
export function queryHeaders(params: readonly RawQueryParam[]): Map<string, string> {
  const version = presignedVersion(params);
  return collectQueryHeaders(
    params,
    (name) =>
      name.startsWith("x-amz-")
        ? !SIGNATURE_PARAMS.has(name) && !isChecksumHeader(name)
        : version === 2 && (name === "content-type" || name === "content-md5"),
  );
}

/**
 * The checksum headers a Signature V2 presigned URL's query holds (empty for
 * any other request). They are not applied, as with V4, but botocore's V2
 * presigner signs every `x-amz-*` header it moves into the query, these too
 * (`ChecksumAlgorithm` or `ChecksumCRC32` given to `generate_presigned_url`),
 * so the string to sign has them.
 */
export function signedOnlyQueryHeaders(params: readonly RawQueryParam[]): Map<string, string> {
  if (presignedVersion(params) !== 2) return new Map();
  return collectQueryHeaders(params, isChecksumHeader);
}

/** The query's parameters `isHeader` accepts (given the lower-case name), the first of each name. */
function collectQueryHeaders(
  params: readonly RawQueryParam[],
  isHeader: (name: string) => boolean,
): Map<string, string> {
  const found = new Map<string, string>();
  if (presignedVersion(params) === undefined) return found;
  for (const p of params) {
    const name = percentDecode(p.name).toLowerCase();
    if (isHeader(name) && !found.has(name)) found.set(name, decodeQueryValue(p.value));
  }
  return found;
}

/** A checksum header, which S3 ignores in a presigned URL's query. */
function isChecksumHeader(name: string): boolean {
  return name.startsWith("x-amz-checksum-") || name === "x-amz-sdk-checksum-algorithm";
}

/** A query value as a query's parser reads it: `+` is a space, then percent-decoded. */
function decodeQueryValue(raw: string): string {
  return percentDecode(raw.replaceAll("+", "%20"));
}

/**
 * `headers` with those of a presigned URL's query added. With Signature V4
 * the query's signature covers them and a header sent as well is kept (an
 * `x-amz-*` one must then be signed); with V2 the query's values are the
 * ones signed, so they replace headers of the same name.
 */
export function withQueryHeaders(
  headers: Headers,
  params: readonly RawQueryParam[],
): Headers | undefined {
  const hoisted = queryHeaders(params);
  if (hoisted.size === 0) return undefined;
  const replace = presignedVersion(params) === 2;
  const merged = new Headers(headers);
  for (const [name, value] of hoisted) {
    if (!replace && merged.has(name)) continue;
    try {
      merged.set(name, value);
    } catch {
      // A value no header can hold (a line break): refused rather than dropped.
      throw s3Errors.invalidArgument(
        `The query parameter ${name} is no valid header value`,
        name,
        value,
      );
    }
  }
  return merged;
}

/**
 * The small documents requests carry (DeleteObjects, the bucket
 * configurations and policy, CompleteMultipartUpload, ...), checked against
 * the digests they announce, as S3 does: Content-MD5 (which S3 requires of
 * some of them, and clients send) and an `x-amz-checksum-*` header (what
 * current SDKs send instead). A body that does not match is BadDigest, and
 * nothing is done.
 */
import { checksumHasher, md5Hex, toBase64 } from "../../util/hash.ts";
import { XML_BODY_MAX_BYTES } from "../../util/limits.ts";
import type { S3Request } from "./context.ts";
import { requestedChecksum } from "./object_headers.ts";
import { contentMd5Hex, verifyUpload } from "./put_object.ts";
import { parseXmlText, readBoundedBytes } from "./xml.ts";

/** The request's body (at most `maxBytes`), checked against its digests. */
export async function readCheckedBody(
  r: S3Request,
  maxBytes: number,
  /**
   * Whether an `x-amz-checksum-*` header is the body's. It is not on
   * CompleteMultipartUpload, where it is the whole object's checksum.
   */
  checksumOfBody = true,
): Promise<Uint8Array> {
  // Malformed announcements are refused before the body is read.
  const md5 = contentMd5Hex(r.req.headers);
  const checksum = checksumOfBody ? requestedChecksum(r.req.headers) : undefined;
  const bytes = await readBoundedBytes(r.body, maxBytes);
  let computed: string | undefined;
  if (checksum?.value !== undefined) {
    const hasher = checksumHasher(checksum.algorithm);
    hasher.update(bytes);
    computed = toBase64(hasher.digest());
  }
  // As an upload's data is checked (the length is the body's own here).
  verifyUpload(undefined, md5, checksum)({
    size: bytes.byteLength,
    md5Hex: md5 === undefined ? "" : md5Hex(bytes),
    checksum: computed,
  });
  return bytes;
}

/** The request's XML document, checked against its digests (see readCheckedBody). */
export async function readRequestXml(
  r: S3Request,
  checksumOfBody = true,
): Promise<Record<string, unknown>> {
  const bytes = await readCheckedBody(r, XML_BODY_MAX_BYTES, checksumOfBody);
  return parseXmlText(new TextDecoder().decode(bytes));
}

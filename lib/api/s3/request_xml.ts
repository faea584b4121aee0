/**
 * The XML document of a request (DeleteObjects, the bucket configurations,
 * CompleteMultipartUpload, ...), checked against the digests it announces,
 * as S3 does: Content-MD5 (which S3 requires of some of them, and clients
 * send) and an `x-amz-checksum-*` header (what current SDKs send instead).
 * A body that does not match is BadDigest, and nothing is done.
 */
import { checksumHasher, md5Hex, toBase64 } from "../../util/hash.ts";
import type { S3Request } from "./context.ts";
import { requestedChecksum } from "./object_headers.ts";
import { contentMd5Hex } from "./put_object.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { parseXmlText, readXmlBytes } from "./xml.ts";

export async function readRequestXml(
  r: S3Request,
  /**
   * Whether an `x-amz-checksum-*` header is the body's. It is not on
   * CompleteMultipartUpload, where it is the whole object's checksum.
   */
  checksumOfBody = true,
): Promise<Record<string, unknown>> {
  // Malformed announcements are refused before the body is read.
  const md5 = contentMd5Hex(r.req.headers);
  const checksum = checksumOfBody ? requestedChecksum(r.req.headers) : undefined;
  const bytes = await readXmlBytes(r.body);
  if (md5 !== undefined && md5Hex(bytes) !== md5) throw s3Errors.badDigest();
  if (checksum?.value !== undefined) {
    const hasher = checksumHasher(checksum.algorithm);
    hasher.update(bytes);
    if (toBase64(hasher.digest()) !== checksum.value) {
      throw new S3Error(
        "BadDigest",
        400,
        `The ${checksum.algorithm} you specified did not match the calculated checksum.`,
      );
    }
  }
  return parseXmlText(new TextDecoder().decode(bytes));
}

/** PutObject: streams the body into blocks, verifies every digest given, then makes the version current. */
import { putObject } from "../../model/objects.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { writtenVersionHeader } from "./versions.ts";
import { expirationHeader } from "./expiration_header.ts";
import type { WrittenData } from "../../model/object_data.ts";
import { fromBase64, toBase64 } from "../../util/hash.ts";
import { PUT_OBJECT_MAX_BYTES } from "../../util/limits.ts";
import { requireBucket, requireKey, type S3Request, withBodyToStore } from "./context.ts";
import {
  checkWriteHeaders,
  headersToStore,
  quotedEtag,
  requestedChecksum,
} from "./object_headers.ts";
import { writePrecondition } from "./preconditions.ts";
import { taggingHeader } from "./object_tagging.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { encryptionHeaders, keyToWrite } from "./encryption.ts";
import { lockToWrite } from "./object_lock.ts";

/** The Content-MD5 header as hex, or undefined; a malformed one is InvalidDigest. */
export function contentMd5Hex(headers: Headers): string | undefined {
  const value = headers.get("content-md5");
  if (value === null) return undefined;
  const bytes = fromBase64(value.trim());
  if (bytes.byteLength !== 16 || toBase64(bytes) !== value.trim()) {
    throw new S3Error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.");
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks what was received against what the request announced: its length
 * (Content-Length), MD5 (Content-MD5) and checksum (x-amz-checksum-*).
 * Nothing is committed if it throws.
 */
export function verifyUpload(
  contentLength: number | undefined,
  md5Hex: string | undefined,
  checksum: { algorithm: string; value?: string } | undefined,
): (written: WrittenData) => void {
  return (written) => {
    if (contentLength !== undefined && written.size !== contentLength) {
      throw s3Errors.incompleteBody();
    }
    if (md5Hex !== undefined && md5Hex !== written.md5Hex) throw s3Errors.badDigest();
    if (checksum?.value !== undefined && checksum.value !== written.checksum) {
      throw new S3Error(
        "BadDigest",
        400,
        `The ${checksum.algorithm} you specified did not match the calculated checksum.`,
      );
    }
  };
}

export async function handlePutObject(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const key = requireKey(r);
  if (r.contentLength !== undefined && r.contentLength > PUT_OBJECT_MAX_BYTES) {
    throw new S3Error(
      "EntityTooLarge",
      400,
      "Your proposed upload exceeds the maximum allowed object size.",
      {
        ProposedSize: String(r.contentLength),
        MaxSizeAllowed: String(PUT_OBJECT_MAX_BYTES),
      },
    );
  }
  const md5Hex = contentMd5Hex(r.req.headers);
  const checksum = requestedChecksum(r.req.headers);
  checkWriteHeaders((name) => r.req.headers.get(name));
  const headers = headersToStore(r.req.headers);
  const tags = taggingHeader(r.req.headers);
  const encryptWith = keyToWrite(r.req.headers, bucket);
  const lock = lockToWrite((name) => r.req.headers.get(name), bucket, r.ctx.store.nowMs());
  const versioning = versioningOf(bucket);
  const { version, meta } = await withBodyToStore(
    r,
    PUT_OBJECT_MAX_BYTES,
    (body) =>
      putObject(r.ctx.store, bucket.id, key, body, {
        headers,
        versioning,
        maxSize: PUT_OBJECT_MAX_BYTES,
        tags,
        checksumAlgorithm: checksum?.algorithm,
        sizeHint: r.contentLength,
        encryptWith,
        lock,
        precondition: writePrecondition(r.req.headers),
        verify: verifyUpload(r.contentLength, md5Hex, checksum),
        storedChecksum: (written) =>
          checksum && written.checksum
            ? { algorithm: checksum.algorithm, value: written.checksum, type: "FULL_OBJECT" }
            : undefined,
      }),
  );
  const response = new Headers({
    etag: quotedEtag(meta.etag),
    ...writtenVersionHeader(version),
    ...expirationHeader(bucket, key, version.timestampMs, meta),
    ...encryptionHeaders(encryptWith),
  });
  if (meta.checksum) {
    response.set(`x-amz-checksum-${meta.checksum.algorithm.toLowerCase()}`, meta.checksum.value);
    response.set("x-amz-checksum-type", meta.checksum.type);
  }
  return new Response(null, { status: 200, headers: response });
}

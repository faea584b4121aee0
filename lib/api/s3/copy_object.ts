/**
 * CopyObject: same or another bucket, COPY or REPLACE metadata; data blocks
 * are shared, not duplicated, unless the source or the copy is encrypted
 * with a client's key.
 */
import { copyObject } from "../../model/copy.ts";
import { PUT_OBJECT_MAX_BYTES } from "../../util/limits.ts";
import { requireBucket, requireKey, type S3Request } from "./context.ts";
import { loadCopySource } from "./copy_source.ts";
import {
  checkWriteHeaders,
  headersToStore,
  quotedEtag,
  requestedChecksum,
} from "./object_headers.ts";
import { writePrecondition } from "./preconditions.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlResponse } from "./xml.ts";
import { taggingHeader } from "./object_tagging.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { writtenVersionHeader } from "./versions.ts";
import { expirationHeader } from "./expiration_header.ts";
import { lockToWrite } from "./object_lock.ts";
import {
  COPY_SOURCE_KEY_PREFIX,
  encryptionHeaders,
  keyToReadFrom,
  keyToWrite,
} from "./encryption.ts";
import { CustomerKey } from "../../model/customer_key.ts";

export async function handleCopyObject(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const key = requireKey(r);
  checkWriteHeaders((name) => r.req.headers.get(name));
  const source = await loadCopySource(r);
  const directive = (r.req.headers.get("x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") {
    throw s3Errors.invalidArgument(
      "Unknown metadata directive.",
      "x-amz-metadata-directive",
      directive,
    );
  }
  // The source's key, if it is encrypted, and the copy's.
  const keys = {
    source: keyToReadFrom(source.object.data.meta, r.req.headers, COPY_SOURCE_KEY_PREFIX),
    destination: keyToWrite(r.req.headers, bucket),
  };
  // A client's key, or SSE-S3 asked by the request (not only by the bucket's default), changes it.
  const changesEncryption = keys.source instanceof CustomerKey ||
    keys.destination instanceof CustomerKey || r.req.headers.has("x-amz-server-side-encryption");
  // A storage class asked for is a change too, as in S3 (which is how clients change an object's
  // class in place); remise keeps one class, so the copy only rewrites the object.
  const changesStorageClass = r.req.headers.has("x-amz-storage-class");
  // x-amz-checksum-algorithm: the algorithm the copy's checksum is to be in. Naming one is a
  // change too: AWS documents copying an object onto itself to add or change its checksum.
  const checksumAlgorithm = requestedChecksum(r.req.headers)?.algorithm;
  if (
    source.bucketName === r.target.bucket && source.key === key && directive === "COPY" &&
    !source.byVersionId && !changesEncryption && !changesStorageClass &&
    checksumAlgorithm === undefined
  ) {
    throw new S3Error(
      "InvalidRequest",
      400,
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  if (source.object.data.meta.size > PUT_OBJECT_MAX_BYTES) {
    throw s3Errors.invalidRequest(
      "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
    );
  }
  const headers = directive === "REPLACE"
    ? headersToStore(r.req.headers)
    : source.object.data.meta.headers;
  const tagging = (r.req.headers.get("x-amz-tagging-directive") ?? "COPY").toUpperCase();
  if (tagging !== "COPY" && tagging !== "REPLACE") {
    throw s3Errors.invalidArgument(
      "Unknown tagging directive.",
      "x-amz-tagging-directive",
      tagging,
    );
  }
  const { version, meta } = await copyObject(
    r.ctx.store,
    source.object,
    { bucketId: bucket.id, key },
    {
      headers,
      precondition: writePrecondition(r.req.headers),
      tags: tagging === "REPLACE" ? taggingHeader(r.req.headers) ?? [] : undefined,
      versioning: versioningOf(bucket),
      checksumAlgorithm,
      keys,
      lock: lockToWrite((name) => r.req.headers.get(name), bucket, r.ctx.store.nowMs()),
    },
  );
  const checksum = meta.checksum;
  return xmlResponse("CopyObjectResult", {
    LastModified: new Date(version.timestampMs).toISOString(),
    ETag: quotedEtag(meta.etag),
    ...(checksum
      ? { ChecksumType: checksum.type, [`Checksum${checksum.algorithm}`]: checksum.value }
      : {}),
  }, {
    headers: {
      "x-amz-copy-source-version-id": source.versionId,
      ...writtenVersionHeader(version),
      ...expirationHeader(bucket, key, version.timestampMs, meta),
      ...encryptionHeaders(keys.destination),
    },
  });
}

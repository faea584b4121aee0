/**
 * Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
 */
import { readRequestXml } from "./request_xml.ts";
import {
  abortUpload,
  type ActiveUpload,
  type ChecksumType,
  completedUpload,
  completeUpload,
  copyPart,
  createUpload,
  getUpload,
  listUploads,
  MultipartError,
  PART_SIZE_MAX_BYTES,
  sortedParts,
  type UploadChecksum,
  uploadChecksumType,
  uploadPart,
} from "../../model/multipart.ts";
import type { ObjectMeta, ObjectVersion } from "../../model/object_table.ts";
import { encoder } from "./list_objects.ts";
import { type Bucket, versioningOf } from "../../model/bucket_table.ts";
import { writtenVersionHeader } from "./versions.ts";
import { expirationHeader } from "./expiration_header.ts";
import { requireBucket, requireKey, type S3Request, withBodyToStore } from "./context.ts";
import { copySourceRange, loadCopySource } from "./copy_source.ts";
import { taggingHeader } from "./object_tagging.ts";
import {
  checkWriteHeaders,
  headersToStore,
  quotedEtag,
  requestedChecksum,
} from "./object_headers.ts";
import { contentMd5Hex, verifyUpload } from "./put_object.ts";
import { writePrecondition } from "./preconditions.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { objectUrl } from "./request_target.ts";
import { lockToWrite } from "./object_lock.ts";
import { parsePartNumber } from "./part_number.ts";
import {
  COPY_SOURCE_KEY_PREFIX,
  customerKeyOf,
  encryptionHeaders,
  keyForUpload,
  keyToReadFrom,
  keyToWrite,
  managedEncryptionHeaders,
} from "./encryption.ts";
import { asList, readXmlBody, xmlResponse } from "./xml.ts";
import { LIST_KEYS_MAX } from "../../util/limits.ts";
import { compareUtf8 } from "../../util/utf8_order.ts";

function toS3(e: unknown): unknown {
  if (!(e instanceof MultipartError)) return e;
  const status = e.code === "NoSuchUpload" ? 404 : 400;
  return new S3Error(e.code, status, e.message, e.extra);
}

async function activeUpload(r: S3Request, write: boolean) {
  const bucket = await requireBucket(r, write ? "write" : "read");
  const key = requireKey(r);
  const uploadId = r.target.query.get("uploadId")!;
  try {
    return { bucket, key, active: await getUpload(r.ctx.store, bucket.id, key, uploadId) };
  } catch (e) {
    throw toS3(e);
  }
}

function partNumberOf(r: S3Request): number {
  return parsePartNumber(r.target.query.get("partNumber") ?? "");
}

function parseLimit(value: string | null, name: string, max: number): number {
  if (value === null) return max;
  if (!/^\d+$/.test(value)) {
    throw s3Errors.invalidArgument(
      `Provided ${name} not an integer or within integer range`,
      name,
      value,
    );
  }
  return Math.min(Number(value), max);
}

/** x-amz-checksum-type, if given: FULL_OBJECT or COMPOSITE. */
function checksumTypeHeader(headers: Headers): ChecksumType | undefined {
  const value = headers.get("x-amz-checksum-type");
  if (value === null) return undefined;
  const type = value.toUpperCase();
  if (type !== "FULL_OBJECT" && type !== "COMPOSITE") {
    throw s3Errors.invalidRequest(`Value for x-amz-checksum-type header is invalid: ${value}`);
  }
  return type;
}

/** x-amz-mp-object-size, if given: the size CompleteMultipartUpload expects the object to have. */
function announcedObjectSize(headers: Headers): number | undefined {
  const value = headers.get("x-amz-mp-object-size");
  if (value === null) return undefined;
  if (!/^\d{1,16}$/.test(value.trim())) {
    throw s3Errors.invalidArgument(
      "x-amz-mp-object-size must be a number of bytes",
      "x-amz-mp-object-size",
      value,
    );
  }
  return Number(value.trim());
}

/** The checksum CreateMultipartUpload asks the upload to keep: algorithm and type. */
function uploadChecksumRequested(headers: Headers): UploadChecksum | undefined {
  const algorithm = requestedChecksum(headers)?.algorithm;
  const type = checksumTypeHeader(headers);
  if (!algorithm) {
    if (type === undefined) return undefined;
    throw s3Errors.invalidRequest(
      "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
    );
  }
  try {
    return { algorithm, type: uploadChecksumType(algorithm, type) };
  } catch (e) {
    throw toS3(e);
  }
}

export async function handleCreateMultipartUpload(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const key = requireKey(r);
  checkWriteHeaders((name) => r.req.headers.get(name));
  const checksum = uploadChecksumRequested(r.req.headers);
  const encryptWith = keyToWrite(r.req.headers, bucket);
  const uploadId = await createUpload(r.ctx.store, bucket.id, key, headersToStore(r.req.headers), {
    checksum,
    tags: taggingHeader(r.req.headers),
    versioning: versioningOf(bucket),
    encryption: encryptWith?.newEncryption(),
    lock: lockToWrite((name) => r.req.headers.get(name), bucket, r.ctx.store.nowMs()),
  });
  const headers = new Headers(encryptionHeaders(encryptWith));
  if (checksum) {
    headers.set("x-amz-checksum-algorithm", checksum.algorithm);
    headers.set("x-amz-checksum-type", checksum.type);
  }
  return xmlResponse("InitiateMultipartUploadResult", {
    Bucket: r.target.bucket!,
    Key: key,
    UploadId: uploadId,
  }, { headers });
}

export async function handleUploadPart(r: S3Request): Promise<Response> {
  const partNumber = partNumberOf(r);
  const { active } = await activeUpload(r, true);
  const encryptWith = keyForUpload(active.encryption, customerKeyOf(r.req.headers));
  if (r.contentLength !== undefined && r.contentLength > PART_SIZE_MAX_BYTES) {
    throw new S3Error(
      "EntityTooLarge",
      400,
      "Your proposed upload exceeds the maximum allowed object size.",
    );
  }
  const md5Hex = contentMd5Hex(r.req.headers);
  const checksum = requestedChecksum(r.req.headers);
  if (checksum && active.checksumAlgorithm && checksum.algorithm !== active.checksumAlgorithm) {
    throw s3Errors.invalidRequest(
      `Checksum Type mismatch occurred, expected checksum Type: ${active.checksumAlgorithm.toLowerCase()}, actual checksum Type: ${checksum.algorithm.toLowerCase()}`,
    );
  }
  try {
    const part = await withBodyToStore(
      r,
      PART_SIZE_MAX_BYTES,
      (body) =>
        uploadPart(r.ctx.store, active, partNumber, body, {
          checksumAlgorithm: checksum?.algorithm,
          sizeHint: r.contentLength,
          verify: verifyUpload(r.contentLength, md5Hex, checksum),
          encryptWith,
        }),
    );
    const headers = new Headers({
      etag: quotedEtag(part.etag),
      ...encryptionHeaders(encryptWith),
    });
    const algorithm = checksum?.algorithm ?? active.checksumAlgorithm;
    if (algorithm && part.checksum) {
      headers.set(`x-amz-checksum-${algorithm.toLowerCase()}`, part.checksum);
    }
    return new Response(null, { status: 200, headers });
  } catch (e) {
    throw toS3(e);
  }
}

export async function handleUploadPartCopy(r: S3Request): Promise<Response> {
  const partNumber = partNumberOf(r);
  const { active } = await activeUpload(r, true);
  const encryptWith = keyForUpload(active.encryption, customerKeyOf(r.req.headers));
  const source = await loadCopySource(r);
  const sourceKey = keyToReadFrom(source.object.data.meta, r.req.headers, COPY_SOURCE_KEY_PREFIX);
  const range = copySourceRange(r.req.headers, source.object.data.meta.size);
  if (range.end - range.start > PART_SIZE_MAX_BYTES) {
    throw s3Errors.invalidRequest("The specified copy range is larger than the maximum part size");
  }
  let part;
  try {
    part = await copyPart(r.ctx.store, active, partNumber, source.object, range, {
      source: sourceKey,
      destination: encryptWith,
    });
  } catch (e) {
    throw toS3(e);
  }
  const algorithm = active.checksumAlgorithm;
  return xmlResponse("CopyPartResult", {
    LastModified: new Date(r.ctx.store.nowMs()).toISOString(),
    ETag: quotedEtag(part.etag),
    ...(algorithm && part.checksum ? { [`Checksum${algorithm}`]: part.checksum } : {}),
  }, {
    headers: {
      "x-amz-copy-source-version-id": source.versionId,
      ...encryptionHeaders(encryptWith),
    },
  });
}

export async function handleCompleteMultipartUpload(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  const key = requireKey(r);
  const uploadId = r.target.query.get("uploadId")!;
  let active: ActiveUpload;
  // A retry of a completion that succeeded (its answer lost on the way), or
  // that another attempt got ahead of: answered with the object made, as S3
  // does, rather than NoSuchUpload.
  const completedBefore = async (e: unknown) =>
    e instanceof MultipartError && e.code === "NoSuchUpload" &&
    await completedUpload(r.ctx.store, bucket.id, key, uploadId);
  try {
    active = await getUpload(r.ctx.store, bucket.id, key, uploadId);
  } catch (e) {
    const done = await completedBefore(e);
    if (!done) throw toS3(e);
    await readXmlBody(r.body);
    return completionResponse(r, bucket, key, done);
  }
  // A key sent with the completion must be the upload's; it is answered back.
  const customerKey = customerKeyOf(r.req.headers);
  if (customerKey) keyForUpload(active.encryption, customerKey);
  const doc = await readRequestXml(r, false);
  const root = doc.CompleteMultipartUpload as Record<string, unknown> | undefined;
  if (root === undefined || typeof root !== "object") throw s3Errors.malformedXml();
  // Each part's checksum in the upload's algorithm, if listed, is checked against the part's.
  const checksumElement = active.checksumAlgorithm && `Checksum${active.checksumAlgorithm}`;
  const requested = asList(
    root.Part as Record<string, string> | Record<string, string>[] | undefined,
  ).map((p) => {
    const partNumber = Number(p?.PartNumber);
    if (!p || !Number.isInteger(partNumber) || typeof p.ETag !== "string") {
      throw s3Errors.malformedXml();
    }
    const checksum = checksumElement ? p[checksumElement] : undefined;
    if (checksum !== undefined && typeof checksum !== "string") throw s3Errors.malformedXml();
    return { partNumber, etag: p.ETag, checksum: checksum?.trim() };
  });
  try {
    // The whole object's checksum, if announced, is checked against the one computed.
    const algorithm = active.checksumAlgorithm;
    const expected = algorithm
      ? r.req.headers.get(`x-amz-checksum-${algorithm.toLowerCase()}`) ?? undefined
      : undefined;
    const response = completionResponse(
      r,
      bucket,
      key,
      await completeUpload(r.ctx.store, active, requested, {
        expectedChecksum: expected,
        checksumType: checksumTypeHeader(r.req.headers),
        expectedSize: announcedObjectSize(r.req.headers),
        precondition: writePrecondition(r.req.headers),
      }),
    );
    for (const [name, value] of Object.entries(encryptionHeaders(customerKey))) {
      response.headers.set(name, value);
    }
    return response;
  } catch (e) {
    const done = await completedBefore(e);
    if (!done) throw toS3(e);
    return completionResponse(r, bucket, key, done);
  }
}

function completionResponse(
  r: S3Request,
  bucket: Bucket,
  key: string,
  { version, meta }: { version: ObjectVersion; meta: ObjectMeta },
): Response {
  const headers = new Headers({
    ...writtenVersionHeader(version),
    ...expirationHeader(bucket, key, version.timestampMs, meta),
    ...managedEncryptionHeaders(meta.encryption),
  });
  if (meta.checksum) {
    headers.set(`x-amz-checksum-${meta.checksum.algorithm.toLowerCase()}`, meta.checksum.value);
    headers.set("x-amz-checksum-type", meta.checksum.type);
  }
  const checksumField = meta.checksum
    ? {
      [`Checksum${meta.checksum.algorithm}`]: meta.checksum.value,
      ChecksumType: meta.checksum.type,
    }
    : {};
  return xmlResponse("CompleteMultipartUploadResult", {
    Location: objectUrl(r.req, r.target, r.target.bucket!, key),
    Bucket: r.target.bucket!,
    Key: key,
    ETag: quotedEtag(meta.etag),
    ...checksumField,
  }, { headers });
}

export async function handleAbortMultipartUpload(r: S3Request): Promise<Response> {
  const { active } = await activeUpload(r, true);
  await abortUpload(r.ctx.store, active);
  return new Response(null, { status: 204 });
}

export async function handleListParts(r: S3Request): Promise<Response> {
  const { active, key } = await activeUpload(r, false);
  const q = r.target.query;
  const maxParts = parseLimit(q.get("max-parts"), "max-parts", LIST_KEYS_MAX);
  const markerValue = q.get("part-number-marker") ?? "0";
  if (!/^\d+$/.test(markerValue)) {
    throw s3Errors.invalidArgument("Invalid part-number-marker", "part-number-marker", markerValue);
  }
  const marker = Number(markerValue);
  const all = sortedParts(active.upload).filter((p) => p.partNumber > marker);
  const page = all.slice(0, maxParts);
  // max-parts=0 asks for no part: not truncated (as the other listings answer), else a client
  // would page on forever with no NextPartNumberMarker.
  const truncated = maxParts > 0 && all.length > page.length;
  const algorithm = active.checksumAlgorithm;
  return xmlResponse("ListPartsResult", {
    Bucket: r.target.bucket!,
    Key: key,
    UploadId: active.upload.uploadId,
    PartNumberMarker: marker,
    NextPartNumberMarker: page.length > 0 ? page[page.length - 1].partNumber : undefined,
    MaxParts: maxParts,
    IsTruncated: truncated,
    ChecksumAlgorithm: algorithm,
    ChecksumType: algorithm ? active.checksumType : undefined,
    Part: page.map((p) => ({
      PartNumber: p.partNumber,
      LastModified: new Date(p.lastModifiedMs).toISOString(),
      ETag: quotedEtag(p.part.etag),
      Size: p.part.size,
      ...(algorithm && p.part.checksum ? { [`Checksum${algorithm}`]: p.part.checksum } : {}),
    })),
    Initiator: { ID: r.accessKeyId, DisplayName: r.accessKeyId },
    Owner: { ID: r.accessKeyId, DisplayName: r.accessKeyId },
    StorageClass: "STANDARD",
  });
}

export async function handleListMultipartUploads(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "read");
  const q = r.target.query;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const keyMarker = q.get("key-marker") || undefined;
  const uploadIdMarker = q.get("upload-id-marker") || undefined;
  const maxUploads = parseLimit(q.get("max-uploads"), "max-uploads", LIST_KEYS_MAX);
  const encode = encoder(q);
  const result = maxUploads === 0
    ? { uploads: [], commonPrefixes: [], truncated: false }
    : await listUploads(r.ctx.store, bucket.id, {
      prefix,
      delimiter,
      keyMarker,
      uploadIdMarker,
      maxUploads,
    });
  const lastUpload = result.uploads.at(-1);
  const lastPrefix = result.commonPrefixes.at(-1);
  const nextKeyMarker =
    lastPrefix !== undefined && (!lastUpload || compareUtf8(lastPrefix, lastUpload.key) > 0)
      ? lastPrefix
      : lastUpload?.key;
  return xmlResponse("ListMultipartUploadsResult", {
    Bucket: bucket.name.v,
    KeyMarker: encode(keyMarker ?? ""),
    UploadIdMarker: uploadIdMarker ?? "",
    NextKeyMarker: result.truncated && nextKeyMarker !== undefined
      ? encode(nextKeyMarker)
      : undefined,
    NextUploadIdMarker: result.truncated && lastUpload && nextKeyMarker === lastUpload.key
      ? lastUpload.uploadId
      : undefined,
    Prefix: encode(prefix),
    Delimiter: delimiter === undefined ? undefined : encode(delimiter),
    MaxUploads: maxUploads,
    IsTruncated: result.truncated,
    EncodingType: q.get("encoding-type") === null ? undefined : "url",
    Upload: result.uploads.map((u) => ({
      Key: encode(u.key),
      UploadId: u.uploadId,
      Initiator: { ID: r.accessKeyId, DisplayName: r.accessKeyId },
      Owner: { ID: r.accessKeyId, DisplayName: r.accessKeyId },
      StorageClass: "STANDARD",
      Initiated: new Date(u.initiatedMs).toISOString(),
      ChecksumAlgorithm: u.checksum?.algorithm,
      ChecksumType: u.checksum?.type,
    })),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

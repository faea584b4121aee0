/** Object headers: what is stored from a PUT, and what is returned on GET/HEAD. */
import type { ObjectMeta } from "../../model/object_table.ts";
import { USER_METADATA_MAX_BYTES } from "../../util/limits.ts";
import { objectKeyTooLong } from "../../util/utf8_order.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import {
  CHECKSUM_HEADER_PREFIX,
  type ChecksumAlgorithm,
  checksumAlgorithmNamed,
} from "../../util/hash.ts";

const STORED_STANDARD_HEADERS = [
  "content-type",
  "cache-control",
  "content-disposition",
  "content-encoding",
  "content-language",
  "expires",
  "x-amz-website-redirect-location",
];

export const DEFAULT_CONTENT_TYPE = "binary/octet-stream";

export function checkObjectKey(key: string): void {
  if (objectKeyTooLong(key)) {
    throw new S3Error("KeyTooLongError", 400, "Your key is too long", { MaxSizeAllowed: "1024" });
  }
}

/** S3's storage classes: accepted (and all stored alike), so that an unknown one can be refused. */
const STORAGE_CLASSES = new Set([
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER",
  "GLACIER_IR",
  "DEEP_ARCHIVE",
  "OUTPOSTS",
  "SNOW",
  "EXPRESS_ONEZONE",
  "FSX_OPENZFS",
  "FSX_ONTAP",
]);

/** S3's canned ACLs: accepted on writes (remise keeps no ACLs), so that an unknown one can be refused. */
const CANNED_ACLS = new Set([
  "private",
  "public-read",
  "public-read-write",
  "authenticated-read",
  "aws-exec-read",
  "bucket-owner-read",
  "bucket-owner-full-control",
  "log-delivery-write",
]);

/** Refuses, as S3 does, a canned ACL S3 does not have (400 InvalidArgument). */
export function checkCannedAcl(acl: string | null | undefined): void {
  if (acl != null && !CANNED_ACLS.has(acl)) {
    throw s3Errors.invalidArgument("Invalid canned ACL", "x-amz-acl", acl);
  }
}

/**
 * Checks what a write (PutObject, CopyObject, CreateMultipartUpload, a
 * form) says of the object besides its data, with S3's errors: its storage
 * class, canned ACL and website redirect. `get` reads a header.
 */
export function checkWriteHeaders(get: (name: string) => string | null | undefined): void {
  const storageClass = get("x-amz-storage-class");
  if (storageClass != null && !STORAGE_CLASSES.has(storageClass)) {
    throw new S3Error(
      "InvalidStorageClass",
      400,
      "The storage class you specified is not valid",
      { StorageClassRequested: storageClass },
    );
  }
  checkCannedAcl(get("x-amz-acl"));
  const redirect = get("x-amz-website-redirect-location");
  if (redirect != null && !/^(\/|https?:\/\/)/.test(redirect)) {
    throw new S3Error(
      "InvalidRedirectLocation",
      400,
      "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.",
    );
  }
}

/** The headers of a PUT (or a REPLACE copy / multipart creation) that are stored with the object. */
export function headersToStore(headers: Headers): [string, string][] {
  const stored: [string, string][] = [];
  let metaBytes = 0;
  for (const name of STORED_STANDARD_HEADERS) {
    let value = headers.get(name);
    if (name === "content-encoding" && value !== null) {
      // aws-chunked is the transfer framing of the request, not the object's encoding.
      value = value.split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "aws-chunked")
        .join(", ");
      if (value === "") value = null;
    }
    if (value !== null) stored.push([name, value]);
  }
  if (!stored.some(([n]) => n === "content-type")) {
    stored.unshift(["content-type", DEFAULT_CONTENT_TYPE]);
  }
  for (const [name, value] of headers) {
    if (!name.startsWith("x-amz-meta-")) continue;
    metaBytes += name.length - "x-amz-meta-".length + value.length;
    stored.push([name, value]);
  }
  if (metaBytes > USER_METADATA_MAX_BYTES) {
    throw new S3Error(
      "MetadataTooLarge",
      400,
      `Your metadata headers exceed the maximum allowed metadata size of ${USER_METADATA_MAX_BYTES} bytes.`,
    );
  }
  return stored;
}

export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastHttpDate.second) lastHttpDate = { second, text: new Date(ms).toUTCString() };
  return lastHttpDate.text;
}
/** The last date formatted: objects written in the same second share it. */
let lastHttpDate = { second: NaN, text: "" };

/** The ETag header value: the hex digest in quotes. */
export function quotedEtag(etag: string): string {
  return `"${etag}"`;
}

export function objectResponseHeaders(meta: ObjectMeta, lastModifiedMs: number): Headers {
  const headers = new Headers();
  for (const [name, value] of meta.headers) headers.set(name, value);
  headers.set("etag", quotedEtag(meta.etag));
  headers.set("last-modified", httpDate(lastModifiedMs));
  headers.set("accept-ranges", "bytes");
  return headers;
}

/** The checksum algorithm a PUT announces: a value header, a trailer or the SDK's algorithm header. */
export function requestedChecksum(
  headers: Headers,
): { algorithm: ChecksumAlgorithm; value?: string } | undefined {
  let given: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  for (const [name, value] of headers) {
    if (!name.startsWith(CHECKSUM_HEADER_PREFIX)) continue;
    const suffix = name.slice(CHECKSUM_HEADER_PREFIX.length);
    if (CHECKSUM_HEADERS_OTHER.has(suffix)) continue;
    // A checksum remise cannot verify is refused, never stored unchecked.
    const algorithm = algorithmNamed(suffix);
    if (given !== undefined) {
      throw s3Errors.invalidRequest(
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
      );
    }
    // A value that is no digest at all is BadDigest, as for a wrong one (as ceph's s3-tests expect of S3).
    given = { algorithm, value };
  }
  if (given !== undefined) return given;
  const trailer = headers.get("x-amz-trailer")?.trim().toLowerCase();
  const fromTrailer = trailer?.startsWith(CHECKSUM_HEADER_PREFIX)
    ? trailer.slice(CHECKSUM_HEADER_PREFIX.length)
    : undefined;
  const named = fromTrailer ?? headers.get("x-amz-sdk-checksum-algorithm")?.toLowerCase() ??
    headers.get("x-amz-checksum-algorithm")?.toLowerCase();
  if (named === undefined) return undefined;
  return { algorithm: algorithmNamed(named) };
}

/** x-amz-checksum-* headers that carry no checksum. */
const CHECKSUM_HEADERS_OTHER = new Set(["type", "mode", "algorithm"]);

/** The algorithm a lower-case name (as in x-amz-checksum-NAME) stands for. */
function algorithmNamed(named: string): ChecksumAlgorithm {
  const algorithm = checksumAlgorithmNamed(named);
  if (!algorithm) {
    throw new S3Error("InvalidRequest", 400, `Checksum algorithm "${named}" is not supported`);
  }
  return algorithm;
}

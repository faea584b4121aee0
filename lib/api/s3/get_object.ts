/** GetObject and HeadObject: ranges, part numbers, conditionals, response-* overrides, checksums. */
import type { CurrentObject } from "../../model/objects.ts";
import type { Store } from "../../model/store.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { type ByteRange, readParts } from "../../model/object_data.ts";
import { requireObject, type S3Request } from "./context.ts";
import { readVersionHeader } from "./versions.ts";
import { expirationHeader } from "./expiration_header.ts";
import { objectResponseHeaders } from "./object_headers.ts";
import { evaluateReadPreconditions, ifRangeHolds } from "./preconditions.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { encryptionHeaders, keyToReadFrom, refuseEncryptionOnRead } from "./encryption.ts";
import { lockHeaders } from "./object_lock.ts";
import { parsePartNumber } from "./part_number.ts";

// deno-lint-ignore no-control-regex
const HEADER_VALUE = /^[\u0009\u0020-\u007e\u0080-\u00ff]*$/;

const RESPONSE_OVERRIDES: [string, string][] = [
  ["response-content-type", "content-type"],
  ["response-content-language", "content-language"],
  ["response-expires", "expires"],
  ["response-cache-control", "cache-control"],
  ["response-content-disposition", "content-disposition"],
  ["response-content-encoding", "content-encoding"],
];

/**
 * Parses a Range header against the object size. Undefined means "whole
 * object" (no header, or one S3 ignores such as several ranges); an
 * unsatisfiable range throws InvalidRange.
 */
export function parseRange(header: string | null, size: number): ByteRange | undefined {
  if (header === null) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw invalidRange(size);
    start = Math.max(0, size - suffix);
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size : Math.min(Number(m[2]) + 1, size);
    if (m[2] !== "" && Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw invalidRange(size);
  return { start, end };
}

function invalidRange(size: number): S3Error {
  const error = new S3Error("InvalidRange", 416, "The requested range is not satisfiable", {
    ActualObjectSize: String(size),
  });
  error.headers["content-range"] = `bytes */${size}`;
  return error;
}

export async function handleGetObject(r: S3Request, head: boolean): Promise<Response> {
  const { bucket, key, current } = await requireObject(r, "read");
  if (r.anonymous && RESPONSE_OVERRIDES.some(([param]) => r.target.query.has(param))) {
    throw s3Errors.invalidRequest(
      "Request specific response headers cannot be used for anonymous GET requests.",
    );
  }
  const response = await objectResponse(r.ctx.store, current, r.req.headers, r.target.query, head);
  const added = {
    ...readVersionHeader(current.version, versioningOf(bucket)),
    // Rules expire current objects: a version read by id gets no date.
    ...(response.status !== 304 && !r.target.query.has("versionId")
      ? expirationHeader(bucket, key, current.version.timestampMs, current.data.meta)
      : {}),
  };
  for (const [name, value] of Object.entries(added)) response.headers.set(name, value);
  return response;
}

/** The part a GET or HEAD asks for with `partNumber`, checked against the object's parts. */
function requestedPart(
  query: URLSearchParams,
  requestHeaders: Headers,
  partCount: number,
): number | undefined {
  const param = query.get("partNumber");
  if (param === null) return undefined;
  if (requestHeaders.has("range")) {
    throw s3Errors.invalidRequest(
      "Cannot specify both Range header and partNumber query parameter",
    );
  }
  const n = parsePartNumber(param);
  // A part the object does not have: 400 InvalidPart, as ceph's s3-tests expect of S3.
  if (n > partCount) {
    throw new S3Error("InvalidPart", 400, `The object has no part ${n}: it has ${partCount}.`);
  }
  return n;
}

/**
 * The answer to a GET (or HEAD) of an object: the request's conditionals,
 * range or part number and response-* overrides (from `query`) applied.
 * An object encrypted with a client's key (SSE-C) needs it in the headers.
 */
export async function objectResponse(
  store: Store,
  current: CurrentObject,
  requestHeaders: Headers,
  query: URLSearchParams,
  head: boolean,
): Promise<Response> {
  const { version, data } = current;
  const meta = data.meta;
  const parts = data.type === "parts" ? data.parts : [];
  const partCount = data.type === "parts" ? parts.length : 1;
  // Checked before the object's key: a part that is not there is told as such.
  const partNumber = requestedPart(query, requestHeaders, partCount);
  refuseEncryptionOnRead(requestHeaders);
  const decryptWith = keyToReadFrom(meta, requestHeaders);
  const headers = objectResponseHeaders(meta, version.timestampMs);
  for (const [name, value] of Object.entries(encryptionHeaders(decryptWith))) {
    headers.set(name, value);
  }
  if (meta.retention || meta.legalHold) lockHeaders(meta, headers);
  if (evaluateReadPreconditions(requestHeaders, meta.etag, version.timestampMs) === "notModified") {
    const notModified = new Headers();
    for (const name of ["etag", "last-modified", "cache-control", "expires"]) {
      const v = headers.get(name);
      if (v !== null) notModified.set(name, v);
    }
    return new Response(null, { status: 304, headers: notModified });
  }
  for (const [param, header] of RESPONSE_OVERRIDES) {
    const value = query.get(param);
    if (value === null) continue;
    // A header holds Latin-1 without line breaks: anything else would not be sent.
    if (!HEADER_VALUE.test(value)) {
      throw s3Errors.invalidArgument(`${param} is not a valid header value`, param, value);
    }
    headers.set(header, value);
  }
  let range: ByteRange | undefined;
  // The checksum of what is sent: the object's, or with partNumber the part's.
  let checksumValue = meta.checksum?.value;
  if (partNumber !== undefined) {
    if (data.type === "parts") {
      const part = parts[partNumber - 1];
      const start = parts.slice(0, partNumber - 1).reduce((s, p) => s + p.size, 0);
      range = { start, end: start + part.size };
      if (partCount > 1) checksumValue = part.checksum;
    } else {
      range = { start: 0, end: meta.size };
    }
    if (partCount > 1 || data.type === "parts" && meta.etag.includes("-")) {
      headers.set("x-amz-mp-parts-count", String(partCount));
    }
  } else {
    range = ifRangeHolds(requestHeaders, meta.etag, version.timestampMs)
      ? parseRange(requestHeaders.get("range"), meta.size)
      : undefined;
  }
  const whole = range === undefined;
  if (
    (whole || partNumber !== undefined) && meta.checksum && checksumValue !== undefined &&
    requestHeaders.get("x-amz-checksum-mode")?.toUpperCase() === "ENABLED"
  ) {
    headers.set(`x-amz-checksum-${meta.checksum.algorithm.toLowerCase()}`, checksumValue);
    headers.set("x-amz-checksum-type", meta.checksum.type);
  }
  const effective = range ?? { start: 0, end: meta.size };
  // A part is a range, even when it is the whole object (as S3 answers).
  const status = range === undefined ? 200 : 206;
  if (status === 206) {
    headers.set("content-range", `bytes ${effective.start}-${effective.end - 1}/${meta.size}`);
  }
  headers.set("content-length", String(effective.end - effective.start));
  const tagCount = meta.tags?.v.length ?? 0;
  if (tagCount > 0) headers.set("x-amz-tagging-count", String(tagCount));
  if (head) return new Response(null, { status, headers });
  // Inline bytes are the entry's own (decoded from the store), sent as they are when whole.
  const body = data.type === "inline"
    ? (whole ? data.bytes : data.bytes.subarray(effective.start, effective.end)) as Uint8Array<
      ArrayBuffer
    >
    : effective.end > effective.start
    ? await readParts(store, parts, effective, decryptWith)
    : null;
  return new Response(body as BodyInit | null, { status, headers });
}

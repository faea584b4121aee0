/**
 * The pieces of an AWS Signature Version 4 signature as S3 computes them: the
 * canonical URI, query string and headers, the canonical request, the string
 * to sign and the signing key.
 *
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 *
 * Paths and queries are taken exactly as the client sent them (see
 * {@link splitRawUrl}); S3 does not double-encode, so the canonical form of a
 * path segment or query parameter is its percent-decoded bytes URI-encoded
 * again: clients that escape differently (`%7e` or `~`) sign the same string.
 */
import { Buffer } from "node:buffer";
import { hmacSha256, hmacSha256Hex, sha256Hex } from "../../../util/hash.ts";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
export const SIGV4_TERMINATOR = "aws4_request";
export const S3_SERVICE = "s3";
/** The hex SHA-256 of no bytes. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** Signing keys kept, one per (secret, date, region): they change once a day per key. */
const SIGNING_KEY_CACHE_MAX_ENTRIES = 1024;

const HEX_DIGITS = "0123456789ABCDEF";
/** 1 for the bytes URI encoding leaves alone: A-Z a-z 0-9 - . _ ~ */
const UNRESERVED = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9\-._~]/.test(ch)) UNRESERVED[c] = 1;
}
/** Escapes of every byte, built once: "%00" .. "%FF". */
const ESCAPES: string[] = Array.from(
  { length: 256 },
  (_, b) => "%" + HEX_DIGITS[b >> 4] + HEX_DIGITS[b & 15],
);

const utf8Encoder = new TextEncoder();

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/**
 * The bytes `raw` stands for: each valid `%XX` escape becomes its byte, every
 * other character its UTF-8 bytes (a stray `%` stays a literal `%`).
 */
export function percentDecodeBytes(raw: string): Uint8Array {
  const encoded = utf8Encoder.encode(raw);
  if (encoded.indexOf(37) < 0) return encoded;
  const out = new Uint8Array(encoded.length);
  let n = 0;
  for (let i = 0; i < encoded.length; i++) {
    const b = encoded[i];
    if (b === 37 && i + 2 < encoded.length) {
      const hi = hexValue(encoded[i + 1]);
      const lo = hexValue(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

const utf8Decoder = new TextDecoder();

/** `raw` percent-decoded to a string (invalid UTF-8 becomes U+FFFD); `+` stays `+`. */
export function percentDecode(raw: string): string {
  return raw.indexOf("%") < 0 ? raw : utf8Decoder.decode(percentDecodeBytes(raw));
}

function uriEncodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out += UNRESERVED[b] === 1 ? String.fromCharCode(b) : ESCAPES[b];
  }
  return out;
}

function isAllUnreserved(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || UNRESERVED[c] !== 1) return false;
  }
  return true;
}

/** URI-encodes a decoded string the AWS way: every byte of its UTF-8 but A-Z a-z 0-9 - . _ ~ as %XX. */
export function uriEncode(value: string): string {
  return isAllUnreserved(value) ? value : uriEncodeBytes(utf8Encoder.encode(value));
}

/** The canonical form of one already-encoded path segment or query component. */
function canonicalComponent(raw: string): string {
  return isAllUnreserved(raw) ? raw : uriEncodeBytes(percentDecodeBytes(raw));
}

function canonicalQueryComponent(raw: string): string {
  return canonicalComponent(raw.includes("+") ? raw.replaceAll("+", "%20") : raw);
}

/** The raw path and query of a request URL, as sent (no dot-segment removal, no decoding). */
export function splitRawUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  let start = 0;
  if (scheme >= 0) {
    start = scheme + 3;
    while (start < url.length) {
      const c = url[start];
      if (c === "/" || c === "?" || c === "#") break;
      start++;
    }
  }
  let end = url.indexOf("#", start);
  if (end < 0) end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0 && q < end) {
    return { path: url.slice(start, q), query: url.slice(q + 1, end) };
  }
  return { path: url.slice(start, end), query: "" };
}

/**
 * The canonical URI of a raw request path: each segment between slashes
 * decoded and URI-encoded again; `.` and `..` segments are kept as sent.
 */
export function canonicalUri(rawPath: string): string {
  if (rawPath === "") return "/";
  let simple = true;
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c !== 47 && (c > 255 || UNRESERVED[c] !== 1)) {
      simple = false;
      break;
    }
  }
  if (simple) return rawPath;
  return rawPath.split("/").map(canonicalComponent).join("/");
}

/** One query parameter as sent: name and value still percent-encoded (value "" when absent). */
export interface RawQueryParam {
  name: string;
  value: string;
}

/** The parameters of a raw query string, in order, empty parts skipped. */
export function parseRawQuery(rawQuery: string): RawQueryParam[] {
  const params: RawQueryParam[] = [];
  if (rawQuery === "") return params;
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    params.push(
      eq < 0 ? { name: part, value: "" } : { name: part.slice(0, eq), value: part.slice(eq + 1) },
    );
  }
  return params;
}

/**
 * The canonical query string: names and values re-encoded, sorted by name
 * then value, `name=value` joined by `&`. A presigned request's own
 * `X-Amz-Signature` is left out. A `+` is a space, as the handlers read it
 * (and S3 does), so that what is signed is what is done.
 */
export function canonicalQueryString(
  params: readonly RawQueryParam[],
  omitSignature: boolean,
): string {
  const pairs: [string, string][] = [];
  for (const p of params) {
    const name = canonicalQueryComponent(p.name);
    if (omitSignature && name === "X-Amz-Signature") continue;
    pairs.push([name, canonicalQueryComponent(p.value)]);
  }
  pairs.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  let out = "";
  for (let i = 0; i < pairs.length; i++) {
    if (i > 0) out += "&";
    out += pairs[i][0] + "=" + pairs[i][1];
  }
  return out;
}

const WHITESPACE_RUN = /\s+/g;

/**
 * The canonical headers block: `name:value\n` for each signed header, values
 * trimmed with inner runs of whitespace collapsed to one space. A signed
 * header absent from the request counts as empty.
 */
export function canonicalHeaders(
  headers: { get(name: string): string | null | undefined },
  signedHeaders: readonly string[],
): string {
  let out = "";
  for (const name of signedHeaders) {
    const value = headers.get(name) ?? "";
    out += name + ":" + value.trim().replace(WHITESPACE_RUN, " ") + "\n";
  }
  return out;
}

export interface CanonicalRequestParts {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  /** From {@link canonicalHeaders}: each line ends with `\n`. */
  canonicalHeaders: string;
  /** The signed header names joined by `;`, as the client listed them. */
  signedHeaders: string;
  /** Hex SHA-256 of the payload, `UNSIGNED-PAYLOAD` or a `STREAMING-...` marker. */
  payloadHash: string;
}

export function canonicalRequest(p: CanonicalRequestParts): string {
  return `${p.method}\n${p.canonicalUri}\n${p.canonicalQuery}\n${p.canonicalHeaders}\n${p.signedHeaders}\n${p.payloadHash}`;
}

/** The credential scope: `date/region/s3/aws4_request`. */
export function credentialScope(date: string, region: string, service = S3_SERVICE): string {
  return `${date}/${region}/${service}/${SIGV4_TERMINATOR}`;
}

/** `timestamp` is the ISO 8601 basic form, e.g. 20130524T000000Z. */
export function stringToSign(
  timestamp: string,
  scope: string,
  canonicalRequestText: string,
): string {
  return `${SIGV4_ALGORITHM}\n${timestamp}\n${scope}\n${
    sha256Hex(wireBytes(canonicalRequestText))
  }`;
}

/**
 * The bytes a canonical request stands for. Its path and query are
 * percent-encoded ASCII, but a header value holds the bytes as sent, one
 * character each (a UTF-8 "é" arrives as "Ã©"): those bytes are what the
 * client signed. Text with larger characters (built by hand) is UTF-8.
 */
function wireBytes(text: string): Uint8Array | string {
  // Most requests are ASCII throughout, where both readings are the same bytes.
  if (!NON_ASCII.test(text)) return text;
  return BEYOND_LATIN1.test(text) ? utf8Encoder.encode(text) : Buffer.from(text, "latin1");
}

const NON_ASCII = /[\u0080-\uffff]/;
const BEYOND_LATIN1 = /[\u0100-\uffff]/;

const signingKeyCache = new Map<string, Uint8Array>();

/**
 * HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"),
 * cached per (secret, date, region, service) in a bounded map.
 */
export function signingKey(
  secret: string,
  date: string,
  region: string,
  service = S3_SERVICE,
): Uint8Array {
  const cacheKey = `${date}\n${region}\n${service}\n${secret}`;
  const cached = signingKeyCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const kDate = hmacSha256("AWS4" + secret, date);
  const kRegion = hmacSha256(kDate, region);
  const kService = hmacSha256(kRegion, service);
  const key = hmacSha256(kService, SIGV4_TERMINATOR);
  if (signingKeyCache.size >= SIGNING_KEY_CACHE_MAX_ENTRIES) {
    // Maps iterate in insertion order: drop the oldest entry.
    signingKeyCache.delete(signingKeyCache.keys().next().value!);
  }
  signingKeyCache.set(cacheKey, key);
  return key;
}

/** The lowercase hex HMAC-SHA256 of a string to sign. */
export function signatureHex(key: Uint8Array, stringToSignText: string): string {
  return hmacSha256Hex(key, stringToSignText);
}

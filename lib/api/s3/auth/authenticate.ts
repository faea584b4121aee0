/**
 * Authentication of an S3 request by AWS Signature Version 4, in all the
 * forms S3 clients use: the Authorization header with a signed, unsigned or
 * aws-chunked (signed chunks, unsigned chunks with trailer, signed chunks
 * with signed trailer) payload, and presigned URLs; and by Signature
 * Version 2 (header and presigned URLs), which older clients still send.
 *
 * The request is refused with an S3Error before any body byte is read when
 * its headers or signature are wrong; what can only be checked on the body
 * (payload hash, chunk and trailer signatures, trailing checksum, length) is
 * checked as the returned body streams, which errors instead of ending.
 */
import {
  CHECKSUM_HEADER_PREFIX,
  type ChecksumAlgorithm,
  checksumAlgorithmNamed,
  timingSafeEqualString,
} from "../../../util/hash.ts";
import { REQUEST_TIME_SKEW_MAX_MS } from "../../../util/limits.ts";
import { S3Error, s3Errors } from "../s3_error.ts";
import {
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  credentialScope,
  EMPTY_SHA256,
  parseRawQuery,
  type RawQueryParam,
  signatureHex,
  signingKey,
  splitRawUrl,
  stringToSign,
  UNSIGNED_PAYLOAD,
} from "./canonical_request.ts";
import {
  decodeAwsChunked,
  STREAMING_SIGNED_PAYLOAD,
  STREAMING_SIGNED_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
} from "./aws_chunked_decoder.ts";
import {
  bothAuthMechanisms,
  formatAmzDate,
  parseAmzDate,
  parseAuthorizationHeader,
  parsePresignedQuery,
  type SignatureParams,
} from "./signature_params.ts";
import { verifiedBody } from "./verified_body.ts";
import { presignedVersion, queryHeaders, signedOnlyQueryHeaders } from "./presigned_headers.ts";
import {
  canonicalResourceV2,
  isSignatureV2Header,
  parseSignatureV2Header,
  parseSignatureV2Query,
  resourceVariantsV2,
  type SignatureV2,
  signatureV2,
  stringToSignV2,
} from "./signature_v2.ts";
import {
  contentSha256Mismatch,
  headersNotSigned,
  incompleteBody,
  invalidAccessKeyId,
  invalidDate,
  malformedSignature,
  requestExpired,
  requestTimeTooSkewed,
  signatureDoesNotMatch,
} from "./_auth_errors.ts";

export interface AuthContext {
  /** s3_region from the configuration: requests signed for another region are refused. */
  region: string;
  /** The clock, injected. */
  nowMs: () => number;
  /** The secret of an access key; undefined when the key does not exist. */
  getSecret: (accessKeyId: string) => Promise<string | undefined>;
  /** The bucket, when the Host header named it (Signature V2 signs it as part of the path). */
  hostBucket?: string;
  /** How long a read of the body may wait on the client; BODY_IDLE_MAX_MS when not given. */
  bodyIdleMs?: number;
}

export type AuthResult =
  | { kind: "anonymous"; body: ReadableStream<Uint8Array> | null }
  | {
    kind: "signed";
    accessKeyId: string;
    /** The request body to store: verified and, for aws-chunked, decoded. Errors (S3Error) instead of ending when verification fails, so a consumer that only commits after reading `done` never stores bad data. */
    body: ReadableStream<Uint8Array> | null;
    /** Bytes the decoded body will have when known (Content-Length, or x-amz-decoded-content-length for aws-chunked). */
    contentLength: number | undefined;
    /** For payloads with trailers: resolved after the body ends with the trailing checksum (algorithm like "CRC32C" and base64 value) which has ALREADY been verified against the decoded data. */
    trailerChecksum: () => { algorithm: string; value: string } | undefined;
  };

type Payload =
  | { kind: "sha256"; hex: string }
  | { kind: "unsigned" }
  | { kind: "chunked"; signed: boolean; trailer: boolean };

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const DECIMAL = /^\d+$/;
const noTrailerChecksum = () => undefined;

/**
 * Authenticates `req`, whose `url` must hold the path and query exactly as
 * the client sent them (as Deno.serve gives them). Throws an S3Error when the
 * request is refused.
 */
export async function authenticateRequest(req: Request, ctx: AuthContext): Promise<AuthResult> {
  const { path, query } = splitRawUrl(req.url);
  const params = parseRawQuery(query);
  // Read once: each lookup or walk of a request's Headers costs microseconds.
  const headers: HeaderValues = new Map(req.headers);
  const authorization = headers.get("authorization") ?? null;
  const queryAuth = presignedVersion(params);
  if (authorization === null) {
    if (queryAuth === 2) {
      return await authenticateV2(
        req,
        ctx,
        withSignedOnlyQueryHeaders(headers, params),
        parseSignatureV2Query(params),
        path,
        query,
      );
    }
    if (queryAuth === undefined) return { kind: "anonymous", body: plainBody(req, ctx, undefined) };
  } else if (queryAuth !== undefined) {
    throw bothAuthMechanisms();
  } else if (isSignatureV2Header(authorization)) {
    return await authenticateV2(
      req,
      ctx,
      headers,
      parseSignatureV2Header(authorization),
      path,
      query,
    );
  }
  const sig = authorization !== null
    ? parseAuthorizationHeader(authorization)
    : parsePresignedQuery(params);
  const presigned = sig.location === "query";

  if (sig.region !== ctx.region) {
    throw malformedSignature(
      sig.location,
      `${
        presigned ? "Error parsing the X-Amz-Credential parameter; " : ""
      }the region '${sig.region}' is wrong; expecting '${ctx.region}'`,
      { Region: ctx.region },
    );
  }
  const timestamp = presigned ? sig.timestamp! : headerTimestamp(headers);
  if (timestamp.slice(0, 8) !== sig.date) {
    throw malformedSignature(
      sig.location,
      "Invalid credential date. Date is not the same as X-Amz-Date.",
    );
  }
  checkTime(sig, timestamp, ctx.nowMs());
  const fromQuery = presigned ? queryHeaders(params) : undefined;
  checkSignedHeaders(sig, headers, fromQuery);

  let payloadHash = headers.get("x-amz-content-sha256") ?? null;
  if (payloadHash === null) {
    if (!presigned) {
      throw new S3Error(
        "InvalidRequest",
        400,
        "Missing required header for this request: x-amz-content-sha256",
      );
    }
    // The AWS SDK for JavaScript hoists x-amz-content-sha256 into presigned URLs.
    payloadHash = fromQuery?.get("x-amz-content-sha256") ?? UNSIGNED_PAYLOAD;
  }
  const payload = classifyPayload(payloadHash);

  const secret = await ctx.getSecret(sig.accessKeyId);
  if (secret === undefined) throw invalidAccessKeyId(sig.accessKeyId);
  const key = signingKey(secret, sig.date, sig.region, sig.service);
  const scope = credentialScope(sig.date, sig.region, sig.service);

  const parts = {
    method: req.method,
    canonicalUri: canonicalUri(path),
    canonicalQuery: canonicalQueryString(params, presigned),
    canonicalHeaders: canonicalHeaders(headers, sig.signedHeaders),
    signedHeaders: sig.signedHeadersText,
    payloadHash,
  };
  const canonical = canonicalRequest(parts);
  const toSign = stringToSign(timestamp, scope, canonical);
  let expected = signatureHex(key, toSign);
  if (!timingSafeEqualString(expected, sig.signature)) {
    // Tolerated: a client that signed its path exactly as it sent it, with
    // escapes S3 would write differently (`%7e`, an unescaped `:`).
    const rawPathExpected = parts.canonicalUri === path || path === "" ? undefined : signatureHex(
      key,
      stringToSign(timestamp, scope, canonicalRequest({ ...parts, canonicalUri: path })),
    );
    if (rawPathExpected === undefined || !timingSafeEqualString(rawPathExpected, sig.signature)) {
      throw signatureDoesNotMatch(undefined, {
        AWSAccessKeyId: sig.accessKeyId,
        StringToSign: toSign,
        SignatureProvided: sig.signature,
        CanonicalRequest: canonical,
      });
    }
    expected = rawPathExpected;
  }

  const base = { kind: "signed" as const, accessKeyId: sig.accessKeyId };
  switch (payload.kind) {
    case "unsigned":
      return {
        ...base,
        body: plainBody(req, ctx, undefined),
        contentLength: contentLengthOf(req),
        trailerChecksum: noTrailerChecksum,
      };
    case "sha256": {
      if (req.body === null) {
        if (payload.hex !== EMPTY_SHA256) throw contentSha256Mismatch(payload.hex, EMPTY_SHA256);
        return { ...base, body: null, contentLength: 0, trailerChecksum: noTrailerChecksum };
      }
      return {
        ...base,
        body: plainBody(req, ctx, payload.hex),
        contentLength: contentLengthOf(req),
        trailerChecksum: noTrailerChecksum,
      };
    }
    case "chunked": {
      if (req.body === null) throw incompleteBody("The aws-chunked request body is missing.");
      const decodedContentLength = decodedContentLengthOf(headers);
      const decoded = decodeAwsChunked(req.body, {
        signing: payload.signed
          ? { seedSignature: expected, signingKey: key, timestamp, scope }
          : undefined,
        trailer: payload.trailer,
        trailerChecksum: payload.trailer ? trailerChecksumOf(headers) : undefined,
        decodedContentLength,
        idleMs: ctx.bodyIdleMs,
      });
      return {
        ...base,
        body: decoded.body,
        contentLength: decodedContentLength,
        trailerChecksum: decoded.trailerChecksum,
      };
    }
  }
}

/**
 * Signature Version 2: the header form must carry a Date (or x-amz-date)
 * within the allowed skew; a presigned URL, an Expires not passed. The body
 * is not signed (a sent x-amz-content-sha256 is still checked).
 */
async function authenticateV2(
  req: Request,
  ctx: AuthContext,
  headers: HeaderValues,
  sig: SignatureV2,
  path: string,
  query: string,
): Promise<AuthResult> {
  const nowMs = ctx.nowMs();
  let dateOrExpires: string;
  if (sig.expiresSeconds !== undefined) {
    if (nowMs > sig.expiresSeconds * 1000) throw requestExpired(sig.expiresSeconds * 1000, nowMs);
    dateOrExpires = String(sig.expiresSeconds);
  } else {
    const sent = headers.get("x-amz-date") ?? headers.get("date");
    const ms = sent === undefined ? NaN : Date.parse(sent);
    // S3 takes a date before 1970 for no valid date, not for a skewed one.
    if (Number.isNaN(ms) || ms < 0) throw invalidDate();
    if (Math.abs(nowMs - ms) > REQUEST_TIME_SKEW_MAX_MS) {
      throw requestTimeTooSkewed(formatAmzDate(ms), nowMs);
    }
    dateOrExpires = headers.has("x-amz-date") ? "" : sent!;
  }
  const secret = await ctx.getSecret(sig.accessKeyId);
  if (secret === undefined) throw invalidAccessKeyId(sig.accessKeyId);
  const signs = (resource: string) =>
    timingSafeEqualString(
      signatureV2(secret, stringToSignV2(req.method, headers, dateOrExpires, resource)),
      sig.signature,
    );
  const canonical = canonicalResourceV2(path, query, ctx.hostBucket);
  if (!signs(canonical) && !resourceVariantsV2(path, query, ctx.hostBucket).some(signs)) {
    throw signatureDoesNotMatch(undefined, {
      AWSAccessKeyId: sig.accessKeyId,
      StringToSign: stringToSignV2(req.method, headers, dateOrExpires, canonical),
      SignatureProvided: sig.signature,
    });
  }
  const sha256 = headers.get("x-amz-content-sha256");
  const payload = sha256 === undefined ? undefined : classifyPayload(sha256);
  if (payload !== undefined && payload.kind === "chunked") {
    throw s3Errors.invalidRequest("aws-chunked bodies need AWS4-HMAC-SHA256");
  }
  const hex = payload?.kind === "sha256" ? payload.hex : undefined;
  return {
    kind: "signed",
    accessKeyId: sig.accessKeyId,
    body: plainBody(req, ctx, hex),
    contentLength: contentLengthOf(req),
    trailerChecksum: noTrailerChecksum,
  };
}

/** A request's headers by lower-case name, as `Headers` combines them. */
type HeaderValues = Map<string, string>;

/**
 * The headers a V2 presigned URL's signature covers: those of the request
 * (with the query's applied ones, see withQueryHeaders) and the checksum
 * parameters of its query, signed but not applied. A header of the same name
 * sent too is the one signed, so that no `x-amz-*` header sent goes unsigned.
 */
function withSignedOnlyQueryHeaders(
  headers: HeaderValues,
  params: readonly RawQueryParam[],
): HeaderValues {
  const signedOnly = signedOnlyQueryHeaders(params);
  return signedOnly.size === 0 ? headers : new Map([...signedOnly, ...headers]);
}

/** The request time of header authentication: x-amz-date, else Date, as 20130524T000000Z. */
function headerTimestamp(headers: HeaderValues): string {
  const amzDate = headers.get("x-amz-date");
  if (amzDate !== undefined) {
    const t = amzDate.trim();
    if (Number.isNaN(parseAmzDate(t))) throw invalidDate();
    return t;
  }
  const date = headers.get("date");
  const ms = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(ms)) throw invalidDate();
  return formatAmzDate(ms);
}

function checkTime(sig: SignatureParams, timestamp: string, nowMs: number): void {
  const timeMs = parseAmzDate(timestamp);
  if (sig.location === "header") {
    if (Math.abs(nowMs - timeMs) > REQUEST_TIME_SKEW_MAX_MS) {
      throw requestTimeTooSkewed(timestamp, nowMs);
    }
    return;
  }
  if (timeMs - nowMs > REQUEST_TIME_SKEW_MAX_MS) {
    throw new S3Error("AccessDenied", 403, "Request is not valid yet", {
      "X-Amz-Date": timestamp,
      ServerTime: new Date(nowMs).toISOString(),
    });
  }
  const expiresMs = timeMs + sig.expiresSeconds! * 1000;
  if (nowMs > expiresMs) {
    throw requestExpired(expiresMs, nowMs, { "X-Amz-Expires": String(sig.expiresSeconds) });
  }
}

/**
 * Host must be signed, and so must every x-amz-* header but
 * x-amz-content-sha256 (as in S3); those a presigned URL's query holds
 * (`fromQuery`, see presigned_headers.ts) are covered by the query's signature.
 */
function checkSignedHeaders(
  sig: SignatureParams,
  headers: HeaderValues,
  fromQuery: Map<string, string> | undefined,
): void {
  if (!sig.signedHeaders.includes("host")) {
    throw malformedSignature(sig.location, "the SignedHeaders must include host.");
  }
  let unsigned: string[] | undefined;
  for (const [name, value] of headers) {
    if (
      name.startsWith("x-amz-") && name !== "x-amz-content-sha256" &&
      !sig.signedHeaders.includes(name) && fromQuery?.get(name)?.trim() !== value
    ) {
      (unsigned ??= []).push(name);
    }
  }
  if (unsigned !== undefined) throw headersNotSigned(unsigned);
}

function classifyPayload(value: string): Payload {
  switch (value) {
    case UNSIGNED_PAYLOAD:
      return { kind: "unsigned" };
    case STREAMING_SIGNED_PAYLOAD:
      return { kind: "chunked", signed: true, trailer: false };
    case STREAMING_SIGNED_PAYLOAD_TRAILER:
      return { kind: "chunked", signed: true, trailer: true };
    case STREAMING_UNSIGNED_PAYLOAD_TRAILER:
      return { kind: "chunked", signed: false, trailer: true };
  }
  if (SHA256_HEX.test(value)) return { kind: "sha256", hex: value.toLowerCase() };
  throw new S3Error(
    "InvalidArgument",
    400,
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.",
    { ArgumentName: "x-amz-content-sha256", ArgumentValue: value },
  );
}

function contentLengthOf(req: Request): number | undefined {
  const value = req.headers.get("content-length");
  return value !== null && DECIMAL.test(value) ? Number(value) : undefined;
}

/**
 * A body no SigV4 header covers (a form upload signs its fields): counted
 * against Content-Length, and a read that fails (the client went away) is
 * IncompleteBody, as for a signed body.
 */
export function unsignedBody(req: Request, ctx: AuthContext): ReadableStream<Uint8Array> | null {
  return plainBody(req, ctx, undefined);
}

function plainBody(
  req: Request,
  ctx: AuthContext,
  sha256Hex: string | undefined,
): ReadableStream<Uint8Array> | null {
  if (req.body === null) return null;
  return verifiedBody(
    req.body,
    { sha256Hex, contentLength: contentLengthOf(req) },
    ctx.bodyIdleMs,
  );
}

function decodedContentLengthOf(headers: HeaderValues): number | undefined {
  const value = headers.get("x-amz-decoded-content-length");
  if (value === undefined) return undefined;
  if (!DECIMAL.test(value.trim())) {
    throw new S3Error(
      "InvalidArgument",
      400,
      "x-amz-decoded-content-length must be a non-negative integer.",
      { ArgumentName: "x-amz-decoded-content-length", ArgumentValue: value },
    );
  }
  return Number(value.trim());
}

function trailerChecksumOf(headers: HeaderValues): ChecksumAlgorithm | undefined {
  const value = headers.get("x-amz-trailer");
  if (value === undefined || value.trim() === "") return undefined;
  const name = value.trim().toLowerCase();
  const algorithm = name.startsWith(CHECKSUM_HEADER_PREFIX)
    ? checksumAlgorithmNamed(name.slice(CHECKSUM_HEADER_PREFIX.length))
    : undefined;
  if (algorithm === undefined) {
    throw new S3Error(
      "InvalidRequest",
      400,
      `The value specified in the x-amz-trailer header is not supported: ${value}`,
    );
  }
  return algorithm;
}

/**
 * The parameters of a Signature Version 4 signature, read from the
 * Authorization header or from a presigned URL's query, and the request
 * timestamp format both use.
 */
import { S3Error } from "../s3_error.ts";
import { PRESIGNED_EXPIRES_MAX_SECONDS } from "../../../util/limits.ts";
import {
  percentDecode,
  type RawQueryParam,
  S3_SERVICE,
  SIGV4_ALGORITHM,
  SIGV4_TERMINATOR,
} from "./canonical_request.ts";
import {
  authorizationWithoutSpace,
  malformedSignature,
  onlySigV4Supported,
  type SignatureLocation,
} from "./_auth_errors.ts";

export interface SignatureParams {
  location: SignatureLocation;
  accessKeyId: string;
  /** The credential scope's date, YYYYMMDD. */
  date: string;
  region: string;
  service: string;
  /** Lowercase signed header names, in the client's order. */
  signedHeaders: string[];
  /** The SignedHeaders list as the client wrote it (line 5 of the canonical request). */
  signedHeadersText: string;
  /** Lowercase hex. */
  signature: string;
  /** Presigned only: X-Amz-Date. */
  timestamp?: string;
  /** Presigned only: X-Amz-Expires. */
  expiresSeconds?: number;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const CREDENTIAL_DATE = /^\d{8}$/;

/** Milliseconds since the epoch of an ISO 8601 basic timestamp (20130524T000000Z), or NaN. */
export function parseAmzDate(timestamp: string): number {
  // Requests of one second share their timestamp: parse each once.
  if (timestamp === lastParsed.timestamp) return lastParsed.ms;
  const ms = parseAmzDateUncached(timestamp);
  lastParsed = { timestamp, ms };
  return ms;
}
let lastParsed = { timestamp: "", ms: NaN };

function parseAmzDateUncached(timestamp: string): number {
  const m = AMZ_DATE.exec(timestamp);
  if (m === null) return NaN;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return NaN;
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/** The ISO 8601 basic timestamp of a time: 20130524T000000Z. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(location: SignatureLocation, text: string): Credential {
  const parts = text.split("/");
  const prefix = location === "query" ? "Error parsing the X-Amz-Credential parameter; " : "";
  if (parts.length !== 5 || parts[0] === "") {
    throw malformedSignature(
      location,
      `${prefix}the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  const [accessKeyId, date, region, service, terminator] = parts;
  if (!CREDENTIAL_DATE.test(date)) {
    throw malformedSignature(
      location,
      `${prefix}incorrect date format "${date}". This date in the credential must be in the format "yyyyMMdd".`,
    );
  }
  if (service !== S3_SERVICE) {
    throw malformedSignature(
      location,
      `${prefix}incorrect service "${service}". This endpoint belongs to "${S3_SERVICE}".`,
    );
  }
  if (terminator !== SIGV4_TERMINATOR) {
    throw malformedSignature(
      location,
      `${prefix}incorrect terminal "${terminator}". This endpoint uses "${SIGV4_TERMINATOR}".`,
    );
  }
  return { accessKeyId, date, region, service };
}

function parseSignedHeaders(location: SignatureLocation, text: string): string[] {
  const names = text.split(";").map((name) => name.trim().toLowerCase());
  if (names.some((name) => name === "")) {
    throw malformedSignature(location, `the SignedHeaders list "${text}" has an empty name.`);
  }
  return names;
}

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/s3/aws4_request,
 * SignedHeaders=a;b, Signature=HEX` (spaces after commas optional).
 */
export function parseAuthorizationHeader(value: string): SignatureParams {
  const text = value.trim();
  const space = text.indexOf(" ");
  const algorithm = space < 0 ? text : text.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    throw space < 0 ? authorizationWithoutSpace() : onlySigV4Supported();
  }
  const fields = new Map<string, string>();
  for (const part of text.slice(space + 1).split(",")) {
    const field = part.trim();
    if (field === "") continue;
    const eq = field.indexOf("=");
    if (eq < 0) throw malformedSignature("header", `"${field}" is not of the form name=value.`);
    fields.set(field.slice(0, eq).trim(), field.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  for (
    const [name, v] of [["Credential", credential], ["SignedHeaders", signedHeaders], [
      "Signature",
      signature,
    ]]
  ) {
    if (v === undefined || v === "") throw malformedSignature("header", `missing ${name}.`);
  }
  return {
    location: "header",
    ...parseCredential("header", credential!),
    signedHeaders: parseSignedHeaders("header", signedHeaders!),
    signedHeadersText: signedHeaders!,
    signature: signature!.toLowerCase(),
  };
}

const REQUIRED_QUERY_PARAMS = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Signature",
  "X-Amz-Date",
  "X-Amz-SignedHeaders",
  "X-Amz-Expires",
];

/** Parses the X-Amz-* parameters of a presigned URL. */
export function parsePresignedQuery(params: readonly RawQueryParam[]): SignatureParams {
  const values = new Map<string, string>();
  for (const p of params) {
    if (p.name.startsWith("X-Amz-") && !values.has(p.name)) {
      values.set(p.name, percentDecode(p.value));
    }
  }
  if (REQUIRED_QUERY_PARAMS.some((name) => !values.get(name))) {
    throw malformedSignature(
      "query",
      "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    );
  }
  if (values.get("X-Amz-Algorithm") !== SIGV4_ALGORITHM) {
    throw malformedSignature("query", `X-Amz-Algorithm only supports "${SIGV4_ALGORITHM}"`);
  }
  const expiresText = values.get("X-Amz-Expires")!;
  if (/^-\d+$/.test(expiresText)) {
    throw malformedSignature("query", "X-Amz-Expires must be non-negative");
  }
  if (!/^\d+$/.test(expiresText)) {
    throw malformedSignature("query", "X-Amz-Expires should be a number");
  }
  const expiresSeconds = Number(expiresText);
  if (expiresSeconds > PRESIGNED_EXPIRES_MAX_SECONDS) {
    throw malformedSignature(
      "query",
      `X-Amz-Expires must be less than a week (in seconds) that is; ${PRESIGNED_EXPIRES_MAX_SECONDS}`,
    );
  }
  const timestamp = values.get("X-Amz-Date")!;
  if (Number.isNaN(parseAmzDate(timestamp))) {
    throw malformedSignature(
      "query",
      `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`,
    );
  }
  const signedHeadersText = values.get("X-Amz-SignedHeaders")!;
  return {
    location: "query",
    ...parseCredential("query", values.get("X-Amz-Credential")!),
    signedHeaders: parseSignedHeaders("query", signedHeadersText),
    signedHeadersText,
    signature: values.get("X-Amz-Signature")!.toLowerCase(),
    timestamp,
    expiresSeconds,
  };
}

/** Both an Authorization header and query-string authentication. */
export function bothAuthMechanisms(): S3Error {
  return new S3Error(
    "InvalidArgument",
    400,
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
    { ArgumentName: "Authorization" },
  );
}

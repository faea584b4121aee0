/**
 * A minimal AWS Signature Version 4 signer for the benchmark's load generator:
 * header-based signatures with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so a
 * request costs two SHA-256 and one HMAC over a few hundred bytes, whatever
 * its body. The signing key is derived once per (date, region).
 *
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 */
import { createHash, createHmac } from "node:crypto";

export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

export interface SigV4Credentials {
  accessKey: string;
  secretKey: string;
  region: string;
}

/** A request to sign: `path` already URI-encoded, `query` as decoded pairs. */
export interface SignInput {
  method: string;
  host: string;
  path: string;
  query?: [string, string][];
  /** Extra headers to sign (lower-case names), for example `content-md5`. */
  headers?: Record<string, string>;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** URI-encodes a string the AWS way: every byte but A-Z a-z 0-9 - . _ ~ as %XX. */
export function uriEncode(value: string): string {
  if (UNRESERVED.test(value)) return value;
  let out = "";
  for (const b of new TextEncoder().encode(value)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** An object key as a path: each segment URI-encoded, slashes kept. */
export function encodeKeyPath(bucket: string, key?: string): string {
  const k = key === undefined ? "" : "/" + key.split("/").map(uriEncode).join("/");
  return "/" + uriEncode(bucket) + k;
}

/** The canonical (and wire) query string: pairs sorted by encoded name, then value. */
export function canonicalQuery(query: [string, string][] = []): string {
  return query
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

export class SigV4Signer {
  #keyDate = "";
  #signingKey: Buffer = Buffer.alloc(0);
  #second = -1;
  #amzDate = "";

  constructor(readonly credentials: SigV4Credentials) {}

  /** `x-amz-date` for now, recomputed at most once a second. */
  #now(): string {
    const ms = Date.now();
    const second = Math.floor(ms / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#amzDate = new Date(second * 1000).toISOString().replace(/[-:]/g, "").replace(
        /\.\d{3}/,
        "",
      );
    }
    return this.#amzDate;
  }

  #key(date: string): Buffer {
    if (date !== this.#keyDate) {
      const hmac = (key: string | Buffer, data: string) =>
        createHmac("sha256", key).update(data).digest();
      const kDate = hmac("AWS4" + this.credentials.secretKey, date);
      const kRegion = hmac(kDate, this.credentials.region);
      const kService = hmac(kRegion, "s3");
      this.#signingKey = hmac(kService, "aws4_request");
      this.#keyDate = date;
    }
    return this.#signingKey;
  }

  /** The headers to send (host excluded: it is on the wire already) for `input`. */
  sign(input: SignInput): Record<string, string> {
    const amzDate = this.#now();
    const date = amzDate.slice(0, 8);
    const headers: Record<string, string> = {
      host: input.host,
      "x-amz-content-sha256": UNSIGNED_PAYLOAD,
      "x-amz-date": amzDate,
      ...input.headers,
    };
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names.map((n) => `${n}:${headers[n].trim()}\n`).join("");
    const signedHeaders = names.join(";");
    const canonicalRequest = [
      input.method,
      input.path,
      canonicalQuery(input.query),
      canonicalHeaders,
      signedHeaders,
      UNSIGNED_PAYLOAD,
    ].join("\n");
    const scope = `${date}/${this.credentials.region}/s3/aws4_request`;
    const stringToSign = [
      "AWS4-HMAC-SHA256",
      amzDate,
      scope,
      createHash("sha256").update(canonicalRequest).digest("hex"),
    ].join("\n");
    const signature = createHmac("sha256", this.#key(date)).update(stringToSign).digest("hex");
    delete headers.host;
    headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${this.credentials.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }
}

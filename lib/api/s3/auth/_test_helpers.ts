/** Helpers shared by this folder's tests. */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { S3Error } from "../s3_error.ts";
import { sha256Hex } from "../../../util/hash.ts";
import { EMPTY_SHA256, signatureHex } from "./canonical_request.ts";
import { chunkStringToSign, trailerStringToSign } from "./aws_chunked_decoder.ts";

/** The credentials of the AWS documentation's examples. */
export const EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
export const EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
export const EXAMPLE_TIMESTAMP = "20130524T000000Z";
export const EXAMPLE_TIME_MS = Date.UTC(2013, 4, 24);

/**
 * A Request whose `url` is exactly `url`: `new Request()` would remove dot
 * segments, Deno.serve does not.
 */
export function rawRequest(url: string, init?: RequestInit): Request {
  const req = new Request(url, init);
  Object.defineProperty(req, "url", { value: url });
  return req;
}

/** Awaits `action` and checks it failed with the S3 error `code` (and `status`, message part). */
export async function assertS3Error(
  action: Promise<unknown> | (() => unknown),
  code: string,
  status?: number,
  messageIncludes?: string,
): Promise<S3Error> {
  let error: unknown;
  try {
    await (typeof action === "function" ? action() : action);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof S3Error, `expected S3Error ${code}, got ${error}`);
  assert.equal(error.code, code, error.message);
  if (status !== undefined) assert.equal(error.status, status);
  if (messageIncludes !== undefined) {
    assert.ok(
      error.message.includes(messageIncludes),
      `"${error.message}" lacks "${messageIncludes}"`,
    );
  }
  return error;
}

/** Reads a stream to its end; rejects with the stream's error. */
export async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (stream === null) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const part of stream) {
    parts.push(part);
    length += part.byteLength;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Reads a stream that must fail: checks it errors with `code` and never
 * reports `done`; returns the bytes delivered before the error.
 */
export async function assertStreamFails(
  stream: ReadableStream<Uint8Array> | null,
  code: string,
  messageIncludes?: string,
): Promise<number> {
  assert.ok(stream !== null);
  const reader = stream.getReader();
  let delivered = 0;
  const error = await assertS3Error(
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        assert.ok(!done, `the stream ended instead of failing with ${code}`);
        delivered += value.byteLength;
      }
    })(),
    code,
    undefined,
    messageIncludes,
  );
  assert.ok(error.status >= 400);
  return delivered;
}

/** A stream yielding `bytes` in pieces of the given sizes (cycled), to test read boundaries. */
export function streamOf(
  bytes: Uint8Array,
  pieceSizes: number[] = [bytes.length],
): ReadableStream<Uint8Array> {
  let offset = 0;
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const size = Math.max(1, pieceSizes[i++ % pieceSizes.length]);
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

/** Concatenates strings and byte arrays into one byte array. */
export function bytesOf(...parts: (string | Uint8Array)[]): Uint8Array {
  const encoded = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  const out = new Uint8Array(encoded.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of encoded) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBytes(data: SourceData): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The SHA-256 (or HMAC-SHA256 with a secret) the AWS SDK signer asks for, over node:crypto. */
export class NodeSha256 {
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  #secret: SourceData | undefined;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = this.#make();
  }
  #make() {
    return this.#secret === undefined
      ? createHash("sha256")
      : createHmac("sha256", toBytes(this.#secret));
  }
  update(data: SourceData): void {
    this.#hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {
    this.#hash = this.#make();
  }
}

/** Percent-encoding as the AWS SDKs write URLs: encodeURIComponent plus ! ' ( ) *. */
export function sdkEscape(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/** The query string the AWS SDK's HTTP handlers send for a query object. */
export function sdkQueryString(query: Record<string, string | string[] | null>): string {
  const parts: string[] = [];
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (Array.isArray(value)) {
      for (const v of value) parts.push(`${sdkEscape(key)}=${sdkEscape(v)}`);
    } else if (value === null) {
      parts.push(sdkEscape(key));
    } else {
      parts.push(`${sdkEscape(key)}=${sdkEscape(value)}`);
    }
  }
  return parts.join("&");
}

/**
 * An aws-chunked body signed as clients do (minio-go, aws-sdk-java): each
 * chunk's signature chained from `seed`, then the trailers and their signature.
 */
export function signedChunks(
  signing: { key: Uint8Array; timestamp: string; scope: string },
  seed: string,
  chunks: Uint8Array[],
  trailers?: [string, string][],
): Uint8Array {
  const { key, timestamp, scope } = signing;
  let previous = seed;
  const parts: (string | Uint8Array)[] = [];
  for (const data of [...chunks, new Uint8Array(0)]) {
    const hash = data.length === 0 ? EMPTY_SHA256 : sha256Hex(data);
    previous = signatureHex(key, chunkStringToSign(timestamp, scope, previous, hash));
    parts.push(`${data.length.toString(16)};chunk-signature=${previous}\r\n`, data);
    if (data.length > 0 || trailers === undefined) parts.push("\r\n");
  }
  if (trailers !== undefined) {
    const canonical = trailers.map(([n, v]) => `${n}:${v}\n`).join("");
    for (const [n, v] of trailers) parts.push(`${n}:${v}\r\n`);
    const signature = signatureHex(key, trailerStringToSign(timestamp, scope, previous, canonical));
    parts.push(`x-amz-trailer-signature:${signature}\r\n\r\n`);
  }
  return bytesOf(...parts);
}

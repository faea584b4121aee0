/**
 * Helpers shared by the S3 integration tests: raw SigV4-signed requests (signed
 * by `@smithy/signature-v4`, an implementation independent of the server's),
 * raw HTTP/1.1 over a socket, S3 error assertions, store snapshots and
 * reference checksums.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { Xxh3_128, Xxh3_64, Xxh64 } from "@aws-sdk/checksums/xxh";
import { deserialize } from "node:v8";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { type Credentials, REGION, type TestServer } from "./harness.ts";

// --- Signing ---

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBytes(data: SourceData): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** SHA-256 / HMAC-SHA256 on `node:crypto`, in the shape `SignatureV4` expects. */
class NodeSha256 {
  #secret?: Uint8Array;
  #hash!: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : toBytes(secret);
    this.reset();
  }
  update(data: SourceData): void {
    this.#hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {
    this.#hash = this.#secret ? createHmac("sha256", this.#secret) : createHash("sha256");
  }
}

/** Percent-encodes like SigV4 (RFC 3986 unreserved characters kept). */
export function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The path of an object or bucket, each key character escaped, slashes kept. */
export function objectPath(bucket: string, key?: string): string {
  if (key === undefined) return `/${uriEscape(bucket)}`;
  return `/${uriEscape(bucket)}/${key.split("/").map(uriEscape).join("/")}`;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function md5Base64(data: string | Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

export function md5Hex(data: string | Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

export interface SignOptions {
  method: string;
  /** Already escaped path, e.g. from `objectPath`. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  region?: string;
  signingDate?: Date;
  /** The x-amz-content-sha256 to declare; default: the body's real hash. */
  payloadHash?: string;
}

/** Signs a request with SigV4 (Authorization header); returns the headers to send. */
export async function signRequest(
  server: TestServer,
  credentials: Credentials,
  options: SignOptions,
): Promise<{ url: string; headers: Record<string, string> }> {
  const signer = new SignatureV4({
    credentials,
    region: options.region ?? REGION,
    service: "s3",
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: true,
  });
  const host = `127.0.0.1:${server.apiPort}`;
  const headers: Record<string, string> = { host, ...options.headers };
  headers["x-amz-content-sha256"] = options.payloadHash ?? sha256Hex(options.body ?? "");
  const signed = await signer.sign({
    method: options.method,
    protocol: "http:",
    hostname: "127.0.0.1",
    port: server.apiPort,
    path: options.path,
    query: options.query ?? {},
    headers,
    body: options.body,
  }, { signingDate: options.signingDate });
  const query = Object.entries(options.query ?? {}).map(([k, v]) =>
    `${uriEscape(k)}=${uriEscape(v)}`
  ).join("&");
  return {
    url: `${server.endpoint}${options.path}${query ? `?${query}` : ""}`,
    headers: signed.headers as Record<string, string>,
  };
}

/** Sends a SigV4-signed request with `fetch`. */
export async function signedFetch(
  server: TestServer,
  credentials: Credentials,
  options: SignOptions,
): Promise<Response> {
  const { url, headers } = await signRequest(server, credentials, options);
  const sendHeaders = { ...headers };
  delete sendHeaders.host;
  return await fetch(url, { method: options.method, headers: sendHeaders, body: options.body });
}

/** The `<Code>` of an S3 error document. */
export function errorCodeOf(xml: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
}

/** Asserts `res` is an S3 XML error with this status and code; returns the body. */
export async function assertErrorResponse(
  res: Response,
  status: number,
  code: string,
): Promise<string> {
  const body = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${body}`);
  assert.match(body, /^<\?xml[^>]*>\s*<Error>/, `not an S3 error document: ${body}`);
  assert.equal(errorCodeOf(body), code, `wrong <Code> in ${body}`);
  return body;
}

/** Asserts `promise` rejects with an S3 error of this code and status. */
export async function assertS3Error(
  promise: Promise<unknown>,
  code: string,
  status: number,
): Promise<S3ServiceException> {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof S3ServiceException)) throw e;
    assert.equal(
      e.$metadata.httpStatusCode,
      status,
      `expected status ${status} (${code}), got ${e.$metadata.httpStatusCode} ${e.name}: ${e.message}`,
    );
    assert.equal(e.name, code, `expected ${code}, got ${e.name}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code} (${status}), but the request succeeded`);
}

// --- Store snapshots ---

export interface ObjectSnapshot {
  key: string;
  size: number;
  etag: string;
  sha256: string;
}

/** Every bucket `s3` sees and every object in it, with each body's SHA-256. */
export async function snapshotStore(
  s3: S3Client,
): Promise<Record<string, ObjectSnapshot[]>> {
  const result: Record<string, ObjectSnapshot[]> = {};
  const buckets = await s3.send(new ListBucketsCommand({}));
  for (const b of buckets.Buckets ?? []) {
    result[b.Name!] = await snapshotBucket(s3, b.Name!);
  }
  return result;
}

/** Every object of `bucket` (listed page by page), with each body's SHA-256. */
export async function snapshotBucket(s3: S3Client, bucket: string): Promise<ObjectSnapshot[]> {
  const objects: ObjectSnapshot[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const bytes = await got.Body!.transformToByteArray();
      assert.equal(got.ETag, o.ETag, `GET and LIST disagree on the ETag of ${o.Key}`);
      assert.equal(bytes.byteLength, o.Size, `GET and LIST disagree on the size of ${o.Key}`);
      objects.push({ key: o.Key!, size: o.Size!, etag: o.ETag!, sha256: sha256Hex(bytes) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

// --- Raw HTTP over a socket ---

/** What came back on a raw connection: the bytes read until EOF or timeout. */
export interface RawReply {
  text: string;
  /** The status of the first response line, or undefined if none came. */
  status?: number;
  /** True when the server closed the connection (EOF, reset) before the timeout. */
  closed: boolean;
}

/**
 * Sends `head` (and `body`) on a fresh TCP connection, optionally closes the
 * write side, and reads until the server closes or `timeoutMs` passes.
 */
export async function rawExchange(
  port: number,
  head: string,
  body: Uint8Array | undefined,
  options: { closeWrite?: boolean; timeoutMs?: number } = {},
): Promise<RawReply> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let closed = false;
  try {
    await writeAll(conn, new TextEncoder().encode(head));
    if (body) await writeAll(conn, body);
    if (options.closeWrite) await conn.closeWrite();
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (n === "timeout") break;
      if (n === null) {
        closed = true;
        break;
      }
      chunks.push(buf.slice(0, n));
      if (responseComplete(chunks)) break;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  const text = new TextDecoder().decode(concat(chunks));
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { text, status: match ? Number(match[1]) : undefined, closed };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.byteLength) off += await conn.write(data.subarray(off));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** True when the bytes hold a whole response with a content-length body. */
function responseComplete(chunks: Uint8Array[]): boolean {
  const text = new TextDecoder().decode(concat(chunks));
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  if (!length) return false;
  return new TextEncoder().encode(text.slice(end + 4)).byteLength >= Number(length[1]);
}

/** An HTTP/1.1 request head with a SigV4 Authorization header over UNSIGNED-PAYLOAD. */
export async function signedRawHead(
  server: TestServer,
  credentials: Credentials,
  method: string,
  path: string,
  headers: Record<string, string>,
  query?: Record<string, string>,
): Promise<string> {
  const signed = await signRequest(server, credentials, {
    method,
    path,
    query,
    headers,
    payloadHash: "UNSIGNED-PAYLOAD",
  });
  const target = signed.url.slice(server.endpoint.length);
  const lines = [`${method} ${target} HTTP/1.1`];
  for (const [k, v] of Object.entries(signed.headers)) lines.push(`${k}: ${v}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

// --- Reference checksums (plain JS, independent of the server's) ---

function crcTable(polynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ polynomial : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
}
const CRC32_TABLE = crcTable(0xedb88320);
const CRC32C_TABLE = crcTable(0x82f63b78);

function crc(table: Uint32Array, data: Uint8Array): string {
  let c = 0xffffffff;
  for (const b of data) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  c = (c ^ 0xffffffff) >>> 0;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, c);
  return btoa(String.fromCharCode(...out));
}

/** The base64 value of `x-amz-checksum-<algorithm>` for `data`. */
export function checksumOf(
  algorithm: "CRC32" | "CRC32C" | "SHA1" | "SHA256" | "SHA512" | "MD5",
  data: Uint8Array,
): string {
  switch (algorithm) {
    case "CRC32":
      return crc(CRC32_TABLE, data);
    case "CRC32C":
      return crc(CRC32C_TABLE, data);
    default:
      return createHash(algorithm.toLowerCase()).update(data).digest("base64");
  }
}

/** The base64 xxHash checksum of `data`, as the AWS SDK for JavaScript computes it. */
export async function xxhashOf(
  algorithm: "XXHASH64" | "XXHASH3" | "XXHASH128",
  data: Uint8Array,
): Promise<string> {
  const hasher = algorithm === "XXHASH64"
    ? new Xxh64()
    : algorithm === "XXHASH3"
    ? new Xxh3_64()
    : new Xxh3_128();
  hasher.update(data);
  return btoa(String.fromCharCode(...await hasher.digest()));
}

/** Compares strings by their UTF-8 bytes, the order S3 lists keys in. */
export function compareUtf8(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  const n = Math.min(ea.length, eb.length);
  for (let i = 0; i < n; i++) if (ea[i] !== eb[i]) return ea[i] - eb[i];
  return ea.length - eb.length;
}

/** Asserts `promise` rejects with an S3 error of this HTTP status (for body-less HEAD answers). */
export async function assertS3Status(promise: Promise<unknown>, status: number): Promise<void> {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof S3ServiceException)) throw e;
    assert.equal(e.$metadata.httpStatusCode, status, `expected ${status}, got ${e.name}`);
    return;
  }
  assert.fail(`expected status ${status}, but the request succeeded`);
}

/** An object's bytes (or one part's, with `partNumber`) through the SDK. */
export async function getBytes(
  s3: S3Client,
  bucket: string,
  key: string,
  partNumber?: number,
): Promise<Uint8Array> {
  const res = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, PartNumber: partNumber }),
  );
  return await res.Body!.transformToByteArray();
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Every key of a bucket, page after page. */
export async function keysOf(s3: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Paths of the block files under a test server's directory (data_dir = DIR/data). */
export async function blockFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (/^[0-9a-f]{64}$/.test(e.name)) files.push(`${d}/${e.name}`);
    }
  };
  await walk(`${dir}/data/blocks`);
  return files;
}

/** Blocks with a reference count above zero in a node's metadata. */
export async function referencedBlocks(dir: string): Promise<number> {
  const kv = await Deno.openKv(`${dir}/meta/metadata.kv`);
  try {
    let n = 0;
    for await (const { value } of kv.list<Uint8Array>({ prefix: ["block", "rc"] })) {
      // A stored value is a tag byte, then the value in V8's serialization format.
      if ((deserialize(value.subarray(1)) as { count: number }).count > 0) n++;
    }
    return n;
  } finally {
    kv.close();
  }
}

/** PUTs each XML body to `/bucket?subresource` and asserts the S3 error it gets: [body, code, status]. */
export async function assertConfigurationsRefused(
  server: TestServer,
  credentials: Credentials,
  bucket: string,
  subresource: string,
  cases: [xml: string, code: string, status: number][],
): Promise<void> {
  for (const [xml, code, status] of cases) {
    const res = await signedFetch(server, credentials, {
      method: "PUT",
      path: objectPath(bucket),
      query: { [subresource]: "" },
      body: xml,
    });
    await assertErrorResponse(res, status, code).catch((e) => {
      throw new Error(`${xml}: ${e.message}`);
    });
  }
}

/** Data that is easy to find on disk: a marker repeated, with a position in each. */
export function markedBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  const text = new TextEncoder();
  for (let i = 0; i < size; i += 64) {
    out.set(
      text.encode(`PLAINTEXT-MARKER-${String(i).padStart(12, "0")}`).subarray(0, size - i),
      i,
    );
  }
  return out;
}

/** Whether any file under `dir` holds `needle`. */
export async function anyFileHolds(dir: string, needle: Uint8Array): Promise<boolean> {
  const marker = Buffer.from(needle);
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && await anyFileHolds(path, needle)) return true;
    if (e.isFile && Buffer.from(await Deno.readFile(path)).includes(marker)) return true;
  }
  return false;
}

/**
 * Conditional PUTs of one key at once, `writers` per round, each its own
 * body: with If-None-Match: * on a new key, then with If-Match on the ETag
 * they all read. In every round exactly one succeeds, the others are 412
 * PreconditionFailed, and the key holds the winner's body. `clientOf(i)`
 * sends the i-th writer's requests.
 */
export async function assertOneConditionalWriterWins(
  clientOf: (writer: number) => S3Client,
  bucket: string,
  options: { rounds: number; writers: number; bodySize: (round: number) => number },
): Promise<void> {
  const { rounds, writers } = options;
  for (let round = 0; round < rounds; round++) {
    const key = `conditional-race/${round}`;
    const race = async (condition: { IfNoneMatch: string } | { IfMatch: string }) => {
      // Bodies differ from writer to writer and from race to race: a winner's ETag matches no
      // other writer's If-Match.
      const fill = "IfMatch" in condition ? 100 : 1;
      const bodies = Array.from(
        { length: writers },
        (_, w) => new Uint8Array(options.bodySize(round)).fill(fill + w),
      );
      const outcomes = await Promise.allSettled(
        bodies.map((body, w) =>
          clientOf(w).send(
            new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...condition }),
          )
        ),
      );
      const winners = outcomes.flatMap((o, w) => o.status === "fulfilled" ? [w] : []);
      for (const o of outcomes) {
        if (o.status === "rejected") {
          assert.equal((o.reason as S3ServiceException).name, "PreconditionFailed", `${o.reason}`);
        }
      }
      assert.equal(winners.length, 1, `round ${round}, ${JSON.stringify(condition)}: one winner`);
      const stored = await getBytes(clientOf(0), bucket, key);
      assert.ok(sameBytes(stored, bodies[winners[0]]), `round ${round}: the winner's body`);
      return (outcomes[winners[0]] as PromiseFulfilledResult<{ ETag?: string }>).value.ETag!;
    };
    const created = await race({ IfNoneMatch: "*" });
    await race({ IfMatch: created });
  }
}

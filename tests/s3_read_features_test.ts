/**
 * Read-side S3 features against a real `remise server` with 64 KiB blocks and
 * a `root_domain`: ranges, conditional GET/HEAD and PUT, presigned response
 * overrides, ListObjects v1 markers, url encoding, FetchOwner, exhaustive
 * truncation checks, GetBucketVersioning, NotImplemented sub-resources and
 * virtual-hosted-style requests.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { type Credentials, deterministicBytes, REGION, TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  compareUtf8,
  getBytes,
  md5Hex,
  objectPath,
  sameBytes,
  signedFetch,
  snapshotStore,
  uriEscape,
} from "./_s3_helpers.ts";

const BLOCK = 64 * 1024;
const ROOT_DOMAIN = "s3.test.localhost";
const READ = "reads";
const LIST = "listing";
const ENC = "encoding";
const V1 = "markers";
const VHOST = "vhost";
const enc = new TextEncoder();

/** Decodes a key from an `encoding-type=url` listing (AWS encodes a space as `+`). */
function urlDecode(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, " "));
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof data === "string") return enc.encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** SHA-256 / HMAC-SHA256 in the shape `SignatureV4` expects. */
class Sha256 {
  #secret?: Uint8Array;
  #hash!: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret = secret === undefined ? undefined : toBytes(secret);
    this.reset();
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {
    this.#hash = this.#secret ? createHmac("sha256", this.#secret) : createHash("sha256");
  }
}

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Uint8Array;
}

/**
 * Sends a SigV4-signed request to 127.0.0.1 with the `Host` header `host`
 * (which `fetch` cannot set), signed over that host.
 */
async function hostRequest(
  port: number,
  credentials: Credentials,
  host: string,
  method: string,
  path: string,
  query: Record<string, string> = {},
  body?: Uint8Array,
): Promise<HttpReply> {
  const signer = new SignatureV4({
    credentials,
    region: REGION,
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
  });
  const payload = body ?? new Uint8Array();
  const headers: Record<string, string> = {
    host: `${host}:${port}`,
    "x-amz-content-sha256": createHash("sha256").update(payload).digest("hex"),
  };
  if (body) headers["content-length"] = String(body.byteLength);
  const signed = await signer.sign({
    method,
    protocol: "http:",
    hostname: host,
    port,
    path,
    query,
    headers,
    body: payload,
  });
  const qs = Object.entries(query).map(([k, v]) => `${uriEscape(k)}=${uriEscape(v)}`).join("&");
  return await new Promise<HttpReply>((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      method,
      path: qs ? `${path}?${qs}` : path,
      headers: signed.headers,
      setHost: false,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: new Uint8Array(Buffer.concat(chunks)),
        }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
    req.end(body);
  });
}

/** The entries a listing should show: keys, or common prefixes when a delimiter groups them. */
function expectedEntries(keys: string[], prefix: string, delimiter?: string): string[] {
  const out = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const i = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    out.add(i >= 0 ? key.slice(0, i + delimiter!.length) : key);
  }
  return [...out].sort(compareUtf8);
}

/** Keys that share prefixes, delimiters at every depth, and characters around "/". */
function listingKeys(): string[] {
  const keys = [
    "a",
    "a!",
    "a.",
    "a/",
    "a//double",
    "a/1",
    "a/2",
    "a/b/",
    "a/b/c",
    "a/b/d/e",
    "a0",
    "a~",
    "docs/readme",
    "docs/guide/intro",
    "docs/guide/setup",
    "docs/api/v1",
    "docs/api/v2",
    "docs-old/x",
    "docs.txt",
    "photos/index.html",
    "z",
    "zz/",
    "zz/top",
    "ü/unicode",
    "ünïcode",
    "日本/語",
  ];
  for (const y of ["2023", "2024"]) {
    for (const m of ["jan", "feb"]) {
      for (const i of [1, 2, 3]) keys.push(`photos/${y}/${m}/${i}.jpg`);
    }
  }
  for (let i = 0; i < 10; i++) keys.push(`file${String(i).padStart(2, "0")}`);
  for (let i = 0; i < 12; i++) keys.push(`b/${String(i).padStart(2, "0")}`);
  return keys;
}

/**
 * Lists `LIST` page by page (v2 continuation tokens or v1 markers), checking
 * each page is full when truncated and follows the previous one; returns all
 * entries (keys and common prefixes) in order.
 */
async function listPaged(
  s3: S3Client,
  version: 1 | 2,
  prefix: string,
  delimiter: string | undefined,
  pageSize: number,
  expectedCount: number,
): Promise<string[]> {
  const seen: string[] = [];
  let token: string | undefined;
  for (let pages = 1;; pages++) {
    assert.ok(pages <= expectedCount + 2, "too many pages");
    let contents: string[];
    let prefixes: string[];
    let truncated: boolean;
    let next: string | undefined;
    if (version === 2) {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: LIST,
          Prefix: prefix || undefined,
          Delimiter: delimiter,
          MaxKeys: pageSize,
          ContinuationToken: token,
        }),
      );
      contents = (page.Contents ?? []).map((o) => o.Key!);
      prefixes = (page.CommonPrefixes ?? []).map((p) => p.Prefix!);
      truncated = page.IsTruncated === true;
      assert.equal(page.KeyCount, contents.length + prefixes.length, "KeyCount");
      assert.equal(page.MaxKeys, pageSize, "MaxKeys");
      next = page.NextContinuationToken;
      if (truncated) assert.ok(next, "truncated without a continuation token");
    } else {
      const page = await s3.send(
        new ListObjectsCommand({
          Bucket: LIST,
          Prefix: prefix || undefined,
          Delimiter: delimiter,
          MaxKeys: pageSize,
          Marker: token,
        }),
      );
      contents = (page.Contents ?? []).map((o) => o.Key!);
      prefixes = (page.CommonPrefixes ?? []).map((p) => p.Prefix!);
      truncated = page.IsTruncated === true;
      const last = [...contents, ...prefixes].sort(compareUtf8).at(-1);
      if (truncated && delimiter) assert.equal(page.NextMarker, last, "NextMarker");
      if (truncated && page.NextMarker !== undefined) {
        assert.equal(page.NextMarker, last, "NextMarker");
      }
      next = page.NextMarker ?? last;
    }
    const entries = [...contents, ...prefixes].sort(compareUtf8);
    assert.ok(entries.length <= pageSize, `${entries.length} entries on a page`);
    if (truncated) assert.equal(entries.length, pageSize, "a truncated page must be full");
    if (seen.length && entries.length) {
      assert.ok(
        compareUtf8(entries[0], seen.at(-1)!) > 0,
        `page ${pages} starts at ${JSON.stringify(entries[0])} after ${
          JSON.stringify(seen.at(-1))
        }`,
      );
    }
    seen.push(...entries);
    if (!truncated) return seen;
    token = next;
  }
}

Deno.test("S3 read features", async (t) => {
  const server = await TestServer.start({
    blockSize: BLOCK,
    extraConfig: `root_domain = "${ROOT_DOMAIN}"`,
  });
  const credentials = await server.createKey("owner");
  const s3 = server.client(credentials);
  try {
    for (const b of [READ, LIST, ENC, V1, VHOST]) {
      await s3.send(new CreateBucketCommand({ Bucket: b }));
    }
    const size = 3 * BLOCK + 3392; // 200000 bytes: 4 blocks, the last one short
    const data = deterministicBytes(size, 5);
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: READ,
        Key: "r.bin",
        Body: data,
        ContentType: "application/x-r",
      }),
    );
    const inline = enc.encode("0123456789abcdefghijklmnopqrstuvwxyz");
    await s3.send(new PutObjectCommand({ Bucket: READ, Key: "inline.txt", Body: inline }));

    await t.step("Range bytes=a-b, a-, -n, across blocks: 206 and Content-Range", async () => {
      const cases: [string, number, number][] = [
        ["bytes=0-0", 0, 0],
        ["bytes=0-9", 0, 9],
        ["bytes=65530-65545", 65530, 65545],
        ["bytes=65536-131071", 65536, 131071],
        ["bytes=60000-140000", 60000, 140000],
        ["bytes=1-199998", 1, 199998],
        ["bytes=196600-", 196600, size - 1],
        [`bytes=${size - 1}-`, size - 1, size - 1],
        ["bytes=0-", 0, size - 1],
        ["bytes=-100", size - 100, size - 1],
        ["bytes=-70000", size - 70000, size - 1],
        ["bytes=-300000", 0, size - 1],
        ["bytes=150000-999999", 150000, size - 1],
      ];
      for (const [range, first, last] of cases) {
        const res = await s3.send(
          new GetObjectCommand({ Bucket: READ, Key: "r.bin", Range: range }),
        );
        assert.equal(res.$metadata.httpStatusCode, 206, range);
        assert.equal(res.ContentRange, `bytes ${first}-${last}/${size}`, range);
        assert.equal(res.ContentLength, last - first + 1, range);
        assert.equal(res.ETag, put.ETag);
        const bytes = await res.Body!.transformToByteArray();
        assert.ok(sameBytes(bytes, data.subarray(first, last + 1)), `body of ${range}`);
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: READ, Key: "r.bin", Range: range }),
        );
        assert.equal(head.$metadata.httpStatusCode, 206, `HEAD ${range}`);
        assert.equal(head.ContentLength, last - first + 1, `HEAD ${range}`);
        assert.equal(head.ContentRange, `bytes ${first}-${last}/${size}`, `HEAD ${range}`);
      }
      const res = await s3.send(
        new GetObjectCommand({ Bucket: READ, Key: "inline.txt", Range: "bytes=10-15" }),
      );
      assert.equal(res.ContentRange, `bytes 10-15/${inline.byteLength}`);
      assert.equal(await res.Body!.transformToString(), "abcdef");
      const suffix = await s3.send(
        new GetObjectCommand({ Bucket: READ, Key: "inline.txt", Range: "bytes=-3" }),
      );
      assert.equal(await suffix.Body!.transformToString(), "xyz");
    });

    await t.step("unsatisfiable ranges are 416 InvalidRange", async () => {
      for (const range of [`bytes=${size}-`, `bytes=${size}-${size + 10}`, "bytes=300000-300010"]) {
        const e = await assertS3Error(
          s3.send(new GetObjectCommand({ Bucket: READ, Key: "r.bin", Range: range })),
          "InvalidRange",
          416,
        );
        assert.ok(e);
        await assertS3Status(
          s3.send(new HeadObjectCommand({ Bucket: READ, Key: "r.bin", Range: range })),
          416,
        );
      }
      const raw = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath(READ, "r.bin"),
        headers: { range: "bytes=999999-" },
      });
      await assertErrorResponse(raw, 416, "InvalidRange");
    });

    await t.step("conditional GET and HEAD: 304 and 412 as AWS answers them", async () => {
      const etag = put.ETag!;
      const head0 = await s3.send(new HeadObjectCommand({ Bucket: READ, Key: "r.bin" }));
      const modified = head0.LastModified!;
      const past = new Date(modified.getTime() - 3600_000);
      const future = new Date(Date.now() + 3600_000);
      const other = `"${md5Hex("other")}"`;
      type Cond = {
        IfMatch?: string;
        IfNoneMatch?: string;
        IfModifiedSince?: Date;
        IfUnmodifiedSince?: Date;
      };
      const cases: [Cond, number][] = [
        [{ IfMatch: etag }, 200],
        [{ IfMatch: etag.replace(/"/g, "") }, 200],
        [{ IfMatch: "*" }, 200],
        [{ IfMatch: other }, 412],
        [{ IfNoneMatch: etag }, 304],
        [{ IfNoneMatch: "*" }, 304],
        [{ IfNoneMatch: other }, 200],
        [{ IfModifiedSince: past }, 200],
        [{ IfModifiedSince: future }, 304],
        [{ IfModifiedSince: modified }, 304],
        [{ IfUnmodifiedSince: future }, 200],
        [{ IfUnmodifiedSince: modified }, 200],
        [{ IfUnmodifiedSince: past }, 412],
        // AWS: If-Match true wins over If-Unmodified-Since false.
        [{ IfMatch: etag, IfUnmodifiedSince: past }, 200],
        // AWS: If-None-Match false with If-Modified-Since true -> 304.
        [{ IfNoneMatch: etag, IfModifiedSince: past }, 304],
        // If-None-Match true wins over If-Modified-Since false.
        [{ IfNoneMatch: other, IfModifiedSince: future }, 200],
        [{ IfMatch: other, IfNoneMatch: other }, 412],
      ];
      for (const [cond, status] of cases) {
        const what = JSON.stringify(cond);
        const get = () => s3.send(new GetObjectCommand({ Bucket: READ, Key: "r.bin", ...cond }));
        const head = () => s3.send(new HeadObjectCommand({ Bucket: READ, Key: "r.bin", ...cond }));
        if (status === 200) {
          const res = await get();
          assert.equal(res.$metadata.httpStatusCode, 200, what);
          assert.equal((await res.Body!.transformToByteArray()).byteLength, size, what);
          assert.equal((await head()).$metadata.httpStatusCode, 200, what);
        } else {
          await assertS3Status(get(), status).catch((e) => {
            throw new Error(`GET ${what}: ${e.message}`);
          });
          await assertS3Status(head(), status).catch((e) => {
            throw new Error(`HEAD ${what}: ${e.message}`);
          });
        }
      }
      // A 412 is an S3 error document; a 304 has no body but keeps the ETag.
      const failed = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath(READ, "r.bin"),
        headers: { "if-match": other },
      });
      await assertErrorResponse(failed, 412, "PreconditionFailed");
      const notModified = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath(READ, "r.bin"),
        headers: { "if-none-match": etag },
      });
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get("etag"), etag);
      assert.equal((await notModified.arrayBuffer()).byteLength, 0);
    });

    await t.step("presigned GET with response-* overrides", async () => {
      const expires = new Date("2030-01-02T03:04:05Z");
      const url = await getSignedUrl(
        s3,
        new GetObjectCommand({
          Bucket: READ,
          Key: "inline.txt",
          ResponseContentType: "text/x-override",
          ResponseContentDisposition: 'attachment; filename="over ride.txt"',
          ResponseCacheControl: "no-cache, max-age=0",
          ResponseContentLanguage: "fr-CA",
          ResponseExpires: expires,
        }),
        { expiresIn: 300 },
      );
      const res = await fetch(url);
      const body = await res.text();
      assert.equal(res.status, 200, body);
      assert.equal(body, "0123456789abcdefghijklmnopqrstuvwxyz");
      assert.equal(res.headers.get("content-type"), "text/x-override");
      assert.equal(res.headers.get("content-disposition"), 'attachment; filename="over ride.txt"');
      assert.equal(res.headers.get("cache-control"), "no-cache, max-age=0");
      assert.equal(res.headers.get("content-language"), "fr-CA");
      assert.equal(new Date(res.headers.get("expires")!).getTime(), expires.getTime());
      // Without overrides the stored content type comes back.
      const plain = await fetch(
        await getSignedUrl(s3, new GetObjectCommand({ Bucket: READ, Key: "r.bin" }), {
          expiresIn: 60,
        }),
      );
      assert.equal(plain.headers.get("content-type"), "application/x-r");
      await plain.body?.cancel();
      // The SDK (header-signed) may use the overrides too.
      const sdk = await s3.send(
        new GetObjectCommand({
          Bucket: READ,
          Key: "inline.txt",
          ResponseContentType: "text/x-sdk",
        }),
      );
      assert.equal(sdk.ContentType, "text/x-sdk");
      await sdk.Body!.transformToByteArray();
    });

    await t.step("PutObject with If-None-Match * and If-Match", async () => {
      const first = enc.encode("first");
      const created = await s3.send(
        new PutObjectCommand({ Bucket: READ, Key: "cond-put", Body: first, IfNoneMatch: "*" }),
      );
      assert.equal(created.ETag, `"${md5Hex(first)}"`);
      let before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(
          new PutObjectCommand({
            Bucket: READ,
            Key: "cond-put",
            Body: enc.encode("second"),
            IfNoneMatch: "*",
          }),
        ),
        "PreconditionFailed",
        412,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      await assertS3Error(
        s3.send(
          new PutObjectCommand({
            Bucket: READ,
            Key: "cond-put",
            Body: enc.encode("third"),
            IfMatch: `"${md5Hex("wrong")}"`,
          }),
        ),
        "PreconditionFailed",
        412,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      assert.deepEqual(await getBytes(s3, READ, "cond-put"), first);
      const updated = await s3.send(
        new PutObjectCommand({
          Bucket: READ,
          Key: "cond-put",
          Body: enc.encode("fourth"),
          IfMatch: created.ETag,
        }),
      );
      assert.equal(updated.ETag, `"${md5Hex("fourth")}"`);
      assert.deepEqual(await getBytes(s3, READ, "cond-put"), enc.encode("fourth"));
      // If-None-Match with ETags: no replacing the object that has one of them.
      before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(
          new PutObjectCommand({
            Bucket: READ,
            Key: "cond-put",
            Body: enc.encode("fifth"),
            IfNoneMatch: `${created.ETag}, ${updated.ETag}`,
          }),
        ),
        "PreconditionFailed",
        412,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      await s3.send(
        new PutObjectCommand({
          Bucket: READ,
          Key: "cond-put",
          Body: enc.encode("fifth"),
          IfNoneMatch: created.ETag,
        }),
      );
      assert.deepEqual(await getBytes(s3, READ, "cond-put"), enc.encode("fifth"));
      // If-Match on a key that does not exist.
      before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(
          new PutObjectCommand({
            Bucket: READ,
            Key: "no-such",
            Body: enc.encode("x"),
            IfMatch: created.ETag,
          }),
        ),
        "NoSuchKey",
        404,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      // A large (block-stored) conditional write.
      await s3.send(
        new PutObjectCommand({ Bucket: READ, Key: "cond-big", Body: data, IfNoneMatch: "*" }),
      );
      await assertS3Error(
        s3.send(
          new PutObjectCommand({ Bucket: READ, Key: "cond-big", Body: inline, IfNoneMatch: "*" }),
        ),
        "PreconditionFailed",
        412,
      );
      assert.ok(sameBytes(await getBytes(s3, READ, "cond-big"), data));
    });

    await t.step("ListObjects v1: Marker, and NextMarker with a delimiter", async () => {
      for (const k of ["a/1", "a/2", "b", "c/1", "c/2", "d", "e/x"]) {
        await s3.send(new PutObjectCommand({ Bucket: V1, Key: k, Body: enc.encode(k) }));
      }
      const page = (marker?: string, maxKeys = 2) =>
        s3.send(
          new ListObjectsCommand({ Bucket: V1, Delimiter: "/", MaxKeys: maxKeys, Marker: marker }),
        );
      const p1 = await page();
      assert.deepEqual(p1.CommonPrefixes?.map((p) => p.Prefix), ["a/"]);
      assert.deepEqual(p1.Contents?.map((o) => o.Key), ["b"]);
      assert.equal(p1.IsTruncated, true);
      assert.equal(p1.NextMarker, "b");
      const p2 = await page(p1.NextMarker);
      assert.equal(p2.Marker, "b");
      assert.deepEqual(p2.CommonPrefixes?.map((p) => p.Prefix), ["c/"]);
      assert.deepEqual(p2.Contents?.map((o) => o.Key), ["d"]);
      assert.equal(p2.IsTruncated, true);
      assert.equal(p2.NextMarker, "d");
      const p3 = await page(p2.NextMarker);
      assert.deepEqual(p3.CommonPrefixes?.map((p) => p.Prefix), ["e/"]);
      assert.deepEqual(p3.Contents ?? [], []);
      assert.equal(p3.IsTruncated, false);
      // A page that ends on a common prefix names it as NextMarker; the next page skips it.
      const q1 = await page(undefined, 1);
      assert.equal(q1.NextMarker, "a/");
      const q2 = await page(q1.NextMarker, 1);
      assert.deepEqual(q2.Contents?.map((o) => o.Key), ["b"]);
      assert.deepEqual(q2.CommonPrefixes ?? [], []);
      // Marker without delimiter: keys strictly after it.
      const flat = await s3.send(new ListObjectsCommand({ Bucket: V1, Marker: "c/1" }));
      assert.deepEqual(flat.Contents?.map((o) => o.Key), ["c/2", "d", "e/x"]);
      assert.equal(flat.IsTruncated, false);
      const owned = flat.Contents![0];
      assert.ok(owned.Owner?.ID, "ListObjects v1 names each object's owner");
      assert.equal(owned.Size, 3);
      assert.equal(owned.ETag, `"${md5Hex("c/2")}"`);
    });

    const oddKeys = [
      "with space",
      "dir with space/file",
      "ünïcødé",
      "a+b",
      "new\nline",
      "percent%20literal",
      "amp&eq=semi;",
      "tilde~star*quote'",
      "tab\there",
      '<xml>&"',
    ];

    await t.step("ListObjectsV2 and v1 with EncodingType url", async () => {
      for (const k of oddKeys) {
        await s3.send(new PutObjectCommand({ Bucket: ENC, Key: k, Body: enc.encode(k) }));
      }
      const expectedKeys = oddKeys.filter((k) => !k.includes("/")).sort(compareUtf8);
      const v2 = await s3.send(
        new ListObjectsV2Command({ Bucket: ENC, EncodingType: "url", Delimiter: "/" }),
      );
      assert.equal(v2.EncodingType, "url");
      const raw2 = v2.Contents!.map((o) => o.Key!);
      for (const k of raw2) {
        assert.doesNotMatch(k, /[ \n\t<>"&]/, `not url-encoded: ${JSON.stringify(k)}`);
        assert.doesNotMatch(k, /[^\x21-\x7e]/, `not url-encoded: ${JSON.stringify(k)}`);
      }
      assert.ok(!raw2.includes("a+b"), "a '+' in a key must be encoded (%2B)");
      assert.deepEqual(raw2.map(urlDecode), expectedKeys);
      assert.deepEqual(v2.CommonPrefixes!.map((p) => urlDecode(p.Prefix!)), ["dir with space/"]);
      // As S3 encodes: "/" stays, a space is %20.
      assert.equal(v2.CommonPrefixes![0].Prefix, "dir%20with%20space/");
      assert.equal(v2.Delimiter, "/");
      assert.doesNotMatch(v2.CommonPrefixes![0].Prefix!, / /);
      // Without encoding the same keys come back verbatim.
      const plain = await s3.send(new ListObjectsV2Command({ Bucket: ENC }));
      assert.deepEqual(plain.Contents!.map((o) => o.Key), [...oddKeys].sort(compareUtf8));
      // StartAfter and Prefix are echoed encoded.
      const after = await s3.send(
        new ListObjectsV2Command({
          Bucket: ENC,
          EncodingType: "url",
          StartAfter: "new\nline",
          MaxKeys: 2,
        }),
      );
      assert.equal(urlDecode(after.StartAfter!), "new\nline");
      const sorted = [...oddKeys].sort(compareUtf8);
      const from = sorted.indexOf("new\nline") + 1;
      assert.deepEqual(after.Contents!.map((o) => urlDecode(o.Key!)), sorted.slice(from, from + 2));
      const pre = await s3.send(
        new ListObjectsV2Command({ Bucket: ENC, EncodingType: "url", Prefix: "dir with space/" }),
      );
      assert.equal(urlDecode(pre.Prefix!), "dir with space/");
      assert.deepEqual(pre.Contents!.map((o) => urlDecode(o.Key!)), ["dir with space/file"]);

      // Version 1, paged by one so that NextMarker is encoded too.
      const seen: string[] = [];
      let marker: string | undefined;
      for (let i = 0; i < 20; i++) {
        const page = await s3.send(
          new ListObjectsCommand({
            Bucket: ENC,
            EncodingType: "url",
            Delimiter: "/",
            MaxKeys: 3,
            Marker: marker,
          }),
        );
        assert.equal(page.EncodingType, "url");
        for (const o of page.Contents ?? []) {
          assert.doesNotMatch(
            o.Key!,
            /[^\x21-\x7e]/,
            `v1 key not url-encoded: ${JSON.stringify(o.Key)}`,
          );
          seen.push(urlDecode(o.Key!));
        }
        for (const p of page.CommonPrefixes ?? []) seen.push(urlDecode(p.Prefix!));
        if (!page.IsTruncated) break;
        assert.ok(page.NextMarker, "a truncated v1 page with a delimiter has a NextMarker");
        assert.doesNotMatch(page.NextMarker!, /[^\x21-\x7e]/);
        marker = urlDecode(page.NextMarker!);
      }
      assert.deepEqual(
        seen.sort(compareUtf8),
        [...expectedKeys, "dir with space/"].sort(compareUtf8),
      );
      // Version 1 echoes the prefix as it was given (botocore does not decode it there).
      const v1Prefix = await s3.send(
        new ListObjectsCommand({ Bucket: ENC, EncodingType: "url", Prefix: "dir with space/" }),
      );
      assert.equal(v1Prefix.Prefix, "dir with space/");
      assert.deepEqual(v1Prefix.Contents?.map((o) => urlDecode(o.Key!)), ["dir with space/file"]);
    });

    await t.step("ListObjectsV2 FetchOwner", async () => {
      const without = await s3.send(new ListObjectsV2Command({ Bucket: ENC, MaxKeys: 3 }));
      for (const o of without.Contents!) assert.equal(o.Owner, undefined, "no Owner unless asked");
      const withOwner = await s3.send(
        new ListObjectsV2Command({ Bucket: ENC, FetchOwner: true, MaxKeys: 3 }),
      );
      for (const o of withOwner.Contents!) {
        assert.ok(o.Owner?.ID, "FetchOwner gives each Owner an ID");
      }
    });

    await t.step("put ~60 keys sharing prefixes", async () => {
      const keys = listingKeys();
      assert.ok(keys.length >= 55);
      await Promise.all(
        keys.map((k) =>
          s3.send(new PutObjectCommand({ Bucket: LIST, Key: k, Body: enc.encode(k) }))
        ),
      );
    });

    for (const version of [2, 1] as const) {
      await t.step(
        `exact truncation at every page size 1..20, ListObjects v${version}`,
        async () => {
          const keys = listingKeys();
          const combos: { prefix: string; delimiter?: string }[] = [
            { prefix: "" },
            { prefix: "", delimiter: "/" },
            { prefix: "photos/", delimiter: "/" },
            { prefix: "a", delimiter: "/" },
            { prefix: "docs/" },
          ];
          const failures: string[] = [];
          for (const { prefix, delimiter } of combos) {
            const expected = expectedEntries(keys, prefix, delimiter);
            for (let pageSize = 1; pageSize <= 20; pageSize++) {
              const what = `v${version} prefix=${JSON.stringify(prefix)} delimiter=${
                delimiter ?? "none"
              } MaxKeys=${pageSize}`;
              try {
                const seen = await listPaged(
                  s3,
                  version,
                  prefix,
                  delimiter,
                  pageSize,
                  expected.length,
                );
                assert.deepEqual(seen, expected);
              } catch (e) {
                failures.push(`${what}: ${(e as Error).message.split("\n")[0]}`);
              }
            }
          }
          assert.deepEqual(failures, [], `${failures.length} listings went wrong`);
        },
      );
    }

    await t.step("ListObjectsV2 StartAfter with continuation tokens", async () => {
      const expected = expectedEntries(listingKeys(), "").filter((k) =>
        compareUtf8(k, "docs/") > 0
      );
      const seen: string[] = [];
      let token: string | undefined;
      for (let i = 0; i < 100; i++) {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: LIST,
            StartAfter: "docs/",
            MaxKeys: 7,
            ContinuationToken: token,
          }),
        );
        assert.equal(page.StartAfter, "docs/");
        seen.push(...(page.Contents ?? []).map((o) => o.Key!));
        if (!page.IsTruncated) break;
        token = page.NextContinuationToken;
      }
      assert.deepEqual(seen, expected);
    });

    await t.step("GetBucketVersioning answers no status", async () => {
      const res = await s3.send(new GetBucketVersioningCommand({ Bucket: READ }));
      assert.equal(res.$metadata.httpStatusCode, 200);
      assert.equal(res.Status, undefined);
      assert.equal(res.MFADelete, undefined);
      await assertS3Error(
        s3.send(new GetBucketVersioningCommand({ Bucket: "no-such-bucket" })),
        "NoSuchBucket",
        404,
      );
    });

    await t.step(
      "GET of bucket configurations: never a listing; unset ones 404, analytics 501",
      async () => {
        for (
          const [sub, status, code] of [
            ["policy", 404, "NoSuchBucketPolicy"],
            ["cors", 404, "NoSuchCORSConfiguration"],
            ["lifecycle", 404, "NoSuchLifecycleConfiguration"],
            ["website", 404, "NoSuchWebsiteConfiguration"],
            ["tagging", 404, "NoSuchTagSet"],
            ["analytics", 501, "NotImplemented"],
          ] as const
        ) {
          const res = await signedFetch(server, credentials, {
            method: "GET",
            path: objectPath(READ),
            query: { [sub]: "" },
          });
          const body = await assertErrorResponse(res, status, code);
          assert.doesNotMatch(body, /ListBucketResult/, `?${sub} answered as a listing`);
        }
      },
    );

    await t.step(
      "GetObjectAcl and GetObjectTagging: owner full control, no tags; PutObjectAcl private only; 404 for no key",
      async () => {
        const acl = await s3.send(new GetObjectAclCommand({ Bucket: READ, Key: "inline.txt" }));
        assert.equal(acl.Owner?.ID, credentials.accessKeyId);
        assert.deepEqual(acl.Grants?.map((g) => g.Permission), ["FULL_CONTROL"]);
        const tags = await s3.send(
          new GetObjectTaggingCommand({ Bucket: READ, Key: "inline.txt" }),
        );
        assert.deepEqual(tags.TagSet ?? [], []);
        await assertS3Error(
          s3.send(new PutObjectAclCommand({ Bucket: READ, Key: "inline.txt", ACL: "public-read" })),
          "NotImplemented",
          501,
        );
        const privateAcl = await s3.send(
          new PutObjectAclCommand({ Bucket: READ, Key: "inline.txt", ACL: "private" }),
        );
        assert.equal(privateAcl.$metadata.httpStatusCode, 200);
        const ofMissingKey = [
          () => s3.send(new GetObjectAclCommand({ Bucket: READ, Key: "missing" })),
          () => s3.send(new GetObjectTaggingCommand({ Bucket: READ, Key: "missing" })),
          () => s3.send(new PutObjectAclCommand({ Bucket: READ, Key: "missing", ACL: "private" })),
        ];
        for (const call of ofMissingKey) await assertS3Error(call(), "NoSuchKey", 404);
        // An ACL in a body, even with the canned header private, is not taken.
        const aclBody = await signedFetch(server, credentials, {
          method: "PUT",
          path: objectPath(READ, "inline.txt"),
          query: { acl: "" },
          headers: { "x-amz-acl": "private" },
          body: "<AccessControlPolicy/>",
        });
        await assertErrorResponse(aclBody, 501, "NotImplemented");
        // A canned ACL S3 does not have is refused as S3 does, not taken for one remise lacks.
        for (const path of [objectPath(READ, "inline.txt"), objectPath(READ)]) {
          const unknownAcl = await signedFetch(server, credentials, {
            method: "PUT",
            path,
            query: { acl: "" },
            headers: { "x-amz-acl": "public-ready" },
          });
          await assertErrorResponse(unknownAcl, 400, "InvalidArgument");
        }
      },
    );

    await t.step(
      "ListObjectVersions: each object is its one version, null; versionId=null reads it",
      async () => {
        const all = await s3.send(new ListObjectVersionsCommand({ Bucket: READ }));
        const keys = (all.Versions ?? []).map((v) => v.Key);
        assert.ok(keys.includes("inline.txt") && keys.includes("r.bin"), keys.join(","));
        for (const v of all.Versions ?? []) {
          assert.equal(v.VersionId, "null");
          assert.equal(v.IsLatest, true);
        }
        assert.equal(all.IsTruncated, false);
        // One key a page, continued with the markers it answers.
        const seen: string[] = [];
        let keyMarker: string | undefined;
        let versionIdMarker: string | undefined;
        for (let pages = 1;; pages++) {
          assert.ok(pages <= keys.length, "the pages end");
          const page = await s3.send(
            new ListObjectVersionsCommand({
              Bucket: READ,
              MaxKeys: 1,
              KeyMarker: keyMarker,
              VersionIdMarker: versionIdMarker,
            }),
          );
          seen.push(...(page.Versions ?? []).map((v) => v.Key!));
          if (!page.IsTruncated) break;
          assert.equal(page.NextVersionIdMarker, "null");
          keyMarker = page.NextKeyMarker;
          versionIdMarker = page.NextVersionIdMarker;
        }
        assert.deepEqual(seen, keys);

        const got = await s3.send(
          new GetObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: "null" }),
        );
        const plain = await s3.send(new GetObjectCommand({ Bucket: READ, Key: "inline.txt" }));
        assert.deepEqual(
          await got.Body!.transformToByteArray(),
          await plain.Body!.transformToByteArray(),
        );
        // An id remise could not have given is InvalidArgument; one it could have, NoSuchVersion.
        const malformed = [
          () => s3.send(new GetObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: "x1" })),
          () =>
            s3.send(new DeleteObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: "x1" })),
        ];
        for (const call of malformed) await assertS3Error(call(), "InvalidArgument", 400);
        const unknown = "0b0e3c4e-0000-4000-8000-000000000000";
        await assertS3Error(
          s3.send(new GetObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: unknown })),
          "NoSuchVersion",
          404,
        );
        // A HEAD answer has no body to name the error: its status says it.
        await assertS3Status(
          s3.send(new HeadObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: unknown })),
          404,
        );
        // Deleting a version that is not there succeeds, as deleting it twice does.
        await s3.send(
          new DeleteObjectCommand({ Bucket: READ, Key: "inline.txt", VersionId: unknown }),
        );
        assert.ok((await s3.send(new HeadObjectCommand({ Bucket: READ, Key: "inline.txt" }))).ETag);
        // A version id names a version that exists: there is no writing one.
        const putVersion = await signedFetch(server, credentials, {
          method: "PUT",
          path: objectPath(READ, "inline.txt"),
          query: { versionId: "x1" },
          body: "x",
        });
        await assertErrorResponse(putVersion, 501, "NotImplemented");
        await assertS3Error(
          s3.send(new ListObjectVersionsCommand({ Bucket: READ, VersionIdMarker: "null" })),
          "InvalidArgument",
          400,
        );
      },
    );

    await t.step("virtual-hosted-style requests on root_domain", async () => {
      const port = server.apiPort;
      const vhost = `${VHOST}.${ROOT_DOMAIN}`;
      const body = deterministicBytes(2 * BLOCK + 17, 9);
      const putRes = await hostRequest(
        port,
        credentials,
        vhost,
        "PUT",
        "/dir/v%20key.bin",
        {},
        body,
      );
      assert.equal(putRes.status, 200, new TextDecoder().decode(putRes.body));
      assert.equal(putRes.headers.etag, `"${md5Hex(body)}"`);
      // Written through the virtual host, read path-style, and the other way round.
      assert.ok(sameBytes(await getBytes(s3, VHOST, "dir/v key.bin"), body));
      await s3.send(
        new PutObjectCommand({ Bucket: VHOST, Key: "path-style", Body: enc.encode("ps") }),
      );
      const got = await hostRequest(port, credentials, vhost, "GET", "/path-style");
      assert.equal(got.status, 200);
      assert.equal(new TextDecoder().decode(got.body), "ps");
      const whole = await hostRequest(port, credentials, vhost, "GET", "/dir/v%20key.bin");
      assert.ok(sameBytes(whole.body, body));
      const list = await hostRequest(port, credentials, vhost, "GET", "/", { "list-type": "2" });
      const xml = new TextDecoder().decode(list.body);
      assert.equal(list.status, 200, xml);
      assert.match(xml, /<Name>vhost<\/Name>/);
      assert.deepEqual(
        [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]),
        ["dir/v key.bin", "path-style"],
      );
      // Path-style on the root domain itself still works.
      const rootStyle = await hostRequest(
        port,
        credentials,
        `${ROOT_DOMAIN}`,
        "GET",
        `/${VHOST}/path-style`,
      );
      assert.equal(rootStyle.status, 200);
      assert.equal(new TextDecoder().decode(rootStyle.body), "ps");
      // A virtual host for a missing bucket.
      const missing = await hostRequest(port, credentials, `nope.${ROOT_DOMAIN}`, "GET", "/x");
      assert.equal(missing.status, 404);
      assert.match(new TextDecoder().decode(missing.body), /<Code>NoSuchBucket<\/Code>/);
      // Deleting through the virtual host.
      const del = await hostRequest(port, credentials, vhost, "DELETE", "/path-style");
      assert.equal(del.status, 204);
      await assertS3Status(
        s3.send(new HeadObjectCommand({ Bucket: VHOST, Key: "path-style" })),
        404,
      );
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { Xxh3_128, Xxh3_64, Xxh64 } from "@aws-sdk/checksums/xxh";
import { type ChecksumAlgorithm, checksumHasher, sha256Hex, toBase64 } from "../../../util/hash.ts";
import {
  canonicalHeaders,
  canonicalRequest,
  credentialScope,
  EMPTY_SHA256,
  signatureHex,
  signingKey,
  stringToSign,
} from "./canonical_request.ts";
import { type AuthContext, authenticateRequest, type AuthResult } from "./authenticate.ts";
import {
  assertS3Error,
  assertStreamFails,
  bytesOf,
  EXAMPLE_ACCESS_KEY_ID,
  EXAMPLE_SECRET,
  EXAMPLE_TIME_MS,
  EXAMPLE_TIMESTAMP,
  NodeSha256,
  rawRequest,
  readAll,
  sdkEscape,
  sdkQueryString,
  signedChunks as signChunks,
} from "./_test_helpers.ts";

const REGION = "garage";
const ACCESS_KEY_ID = "GK31c2f218a2e44f485b94239e";
const SECRET = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d38d1f1a20b8f7b";
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const MINUTE = 60_000;

function context(nowMs = NOW, region = REGION): AuthContext {
  return {
    region,
    nowMs: () => nowMs,
    getSecret: (id) =>
      Promise.resolve(
        id === ACCESS_KEY_ID ? SECRET : id === EXAMPLE_ACCESS_KEY_ID ? EXAMPLE_SECRET : undefined,
      ),
  };
}

interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

interface SignOptions {
  method?: string;
  /** The path as the SDK sends it (already percent-encoded). */
  path?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  secret?: string;
  region?: string;
  date?: Date;
  applyChecksum?: boolean;
}

function signer(o: SignOptions): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: o.secret ?? SECRET },
    region: o.region ?? REGION,
    service: "s3",
    sha256: NodeSha256,
    // As the S3 clients configure it: the path is signed as sent.
    uriEscapePath: false,
    applyChecksum: o.applyChecksum ?? true,
  });
}

function sdkRequest(o: SignOptions): SdkRequest {
  const headers: Record<string, string> = { host: "localhost:3900", ...o.headers };
  if (o.body !== undefined) {
    headers["content-length"] = String(
      typeof o.body === "string" ? new TextEncoder().encode(o.body).length : o.body.length,
    );
  }
  return {
    method: o.method ?? "GET",
    protocol: "http:",
    hostname: "localhost",
    port: 3900,
    path: o.path ?? "/bucket/key",
    query: { ...o.query },
    headers,
    body: o.body,
  };
}

/** The Request Deno.serve would hand over for what the SDK sends. */
function toRequest(r: SdkRequest, body: string | Uint8Array | undefined = r.body): Request {
  const qs = sdkQueryString(r.query);
  return rawRequest(`http://localhost:3900${r.path}${qs === "" ? "" : "?" + qs}`, {
    method: r.method,
    headers: r.headers,
    body: body as BodyInit | undefined,
  });
}

/** A request signed in its Authorization header by the AWS SDK's signer. */
async function signed(o: SignOptions = {}): Promise<SdkRequest> {
  return await signer(o).sign(sdkRequest(o), {
    signingDate: o.date ?? new Date(NOW),
  }) as SdkRequest;
}

/**
 * A presigned request by the AWS SDK's signer, prepared as the S3 presigner
 * does: x-amz-content-sha256 UNSIGNED-PAYLOAD, hoisted into the query.
 */
async function presigned(o: SignOptions & { expiresIn?: number } = {}): Promise<SdkRequest> {
  const headers = { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...o.headers };
  return await signer(o).presign(sdkRequest({ ...o, headers }), {
    signingDate: o.date ?? new Date(NOW),
    expiresIn: o.expiresIn ?? 3600,
  }) as SdkRequest;
}

function assertSigned(result: AuthResult): Extract<AuthResult, { kind: "signed" }> {
  assert.equal(result.kind, "signed");
  return result as Extract<AuthResult, { kind: "signed" }>;
}

function seedOf(r: SdkRequest): string {
  return /Signature=([0-9a-f]{64})/.exec(r.headers.authorization)![1];
}

// ---- AWS documentation examples, end to end ----

Deno.test("AWS docs example requests are accepted", async () => {
  const ctx = context(EXAMPLE_TIME_MS, "us-east-1");
  const credential = `Credential=${EXAMPLE_ACCESS_KEY_ID}/20130524/us-east-1/s3/aws4_request`;
  const get = rawRequest("http://examplebucket.s3.amazonaws.com/test.txt", {
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": EXAMPLE_TIMESTAMP,
      authorization:
        `AWS4-HMAC-SHA256 ${credential},SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,` +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    },
  });
  assert.equal(
    assertSigned(await authenticateRequest(get, ctx)).accessKeyId,
    EXAMPLE_ACCESS_KEY_ID,
  );

  const put = rawRequest("http://examplebucket.s3.amazonaws.com/test%24file.text", {
    method: "PUT",
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-date": EXAMPLE_TIMESTAMP,
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
      "content-length": "21",
      authorization: `AWS4-HMAC-SHA256 ${credential},` +
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class," +
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    },
    body: "Welcome to Amazon S3.",
  });
  const putResult = assertSigned(await authenticateRequest(put, ctx));
  assert.equal(new TextDecoder().decode(await readAll(putResult.body)), "Welcome to Amazon S3.");
  assert.equal(putResult.contentLength, 21);

  const presignedUrl =
    "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  const presignedGet = rawRequest(presignedUrl, {
    headers: { host: "examplebucket.s3.amazonaws.com" },
  });
  assertSigned(await authenticateRequest(presignedGet, ctx));
  await assertS3Error(
    authenticateRequest(presignedGet, context(EXAMPLE_TIME_MS + 86401_000, "us-east-1")),
    "AccessDenied",
    403,
    "Request has expired",
  );
});

Deno.test("AWS docs example: chunked upload with signed chunks", async () => {
  const chunk1 = new Uint8Array(65536).fill(97);
  const chunk2 = new Uint8Array(1024).fill(97);
  const body = bytesOf(
    "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
    chunk1,
    "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
    chunk2,
    "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
  );
  assert.equal(body.length, 66824);
  const req = rawRequest("http://s3.amazonaws.com/examplebucket/chunkObject.txt", {
    method: "PUT",
    headers: {
      host: "s3.amazonaws.com",
      "x-amz-date": EXAMPLE_TIMESTAMP,
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      authorization:
        `AWS4-HMAC-SHA256 Credential=${EXAMPLE_ACCESS_KEY_ID}/20130524/us-east-1/s3/aws4_request,` +
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;" +
        "x-amz-decoded-content-length;x-amz-storage-class," +
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": "66560",
      "content-length": "66824",
    },
    body: body as BodyInit,
  });
  const result = assertSigned(
    await authenticateRequest(req, context(EXAMPLE_TIME_MS, "us-east-1")),
  );
  assert.equal(result.contentLength, 66560);
  assert.deepEqual(await readAll(result.body), bytesOf(chunk1, chunk2));
  assert.equal(result.trailerChecksum(), undefined);
});

// ---- Requests signed by the AWS SDK's signer ----

Deno.test("header auth: GET and PUT signed by the AWS SDK signer are accepted", async () => {
  const get = assertSigned(await authenticateRequest(toRequest(await signed()), context()));
  assert.equal(get.accessKeyId, ACCESS_KEY_ID);
  assert.equal(get.body, null);

  const put = await signed({
    method: "PUT",
    body: "hello world",
    headers: { "content-type": "text/plain" },
  });
  assert.equal(put.headers["x-amz-content-sha256"], sha256Hex("hello world"));
  const result = assertSigned(await authenticateRequest(toRequest(put), context()));
  assert.equal(new TextDecoder().decode(await readAll(result.body)), "hello world");
  assert.equal(result.contentLength, 11);
});

Deno.test("a header value sent as UTF-8 bytes is checked as the client signed it", async () => {
  // botocore signs the text and sends its UTF-8 bytes; Deno.serve shows each
  // byte as one character (C3 A9, "é", arrives as "Ã©").
  const put = await signed({
    method: "PUT",
    body: "x",
    headers: { "x-amz-meta-name": "Hello World\u00e9" },
  });
  const wire = {
    ...put,
    headers: { ...put.headers, "x-amz-meta-name": "Hello World\u00c3\u00a9" },
  };
  assertSigned(await authenticateRequest(toRequest(wire), context()));
  const altered = { ...put, headers: { ...put.headers, "x-amz-meta-name": "Hello World\u00c3" } };
  await assertS3Error(authenticateRequest(toRequest(altered), context()), "SignatureDoesNotMatch");
});

Deno.test("keys with spaces, +, unicode, dot segments; queries with empty values", async () => {
  const keys = [
    "my file.txt",
    "a+b=c&d;e,f",
    "日本語/é/ü ñ.txt",
    "../x/./y",
    "a/../../b/..",
    "~tilde!'()*$@:",
    "%41%2F",
    "dir//double/",
  ];
  for (const key of keys) {
    const path = "/bucket/" + key.split("/").map(sdkEscape).join("/");
    const query = {
      "list-type": "2",
      prefix: "",
      delimiter: "/",
      "start-after": "a b+c/é",
      "x-id": "",
    };
    for (const r of [await signed({ path, query }), await presigned({ path, query })]) {
      const result = await authenticateRequest(toRequest(r), context());
      assert.equal(assertSigned(result).accessKeyId, ACCESS_KEY_ID, key);
    }
  }
});

Deno.test("a parameter sent without '=' (?acl) matches the signer's acl=", async () => {
  const r = await signed({ path: "/bucket", query: { acl: "" } });
  const req = rawRequest("http://localhost:3900/bucket?acl", { headers: r.headers });
  assertSigned(await authenticateRequest(req, context()));
});

Deno.test("dot segments survive a real Deno.serve, end to end", async () => {
  const r = await signed({ path: "/bucket/a/../b/./c%7e" });
  const ac = new AbortController();
  let result: AuthResult | S3ErrorLike | undefined;
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    async (req) => {
      try {
        result = await authenticateRequest(req, context());
      } catch (e) {
        result = e as S3ErrorLike;
      }
      return new Response("ok");
    },
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const head = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(
    new TextEncoder().encode(`GET ${r.path} HTTP/1.1\r\n${head}connection: close\r\n\r\n`),
  );
  for await (const _ of conn.readable) { /* drain the response */ }
  ac.abort();
  await server.finished;
  assert.equal((result as AuthResult).kind, "signed", String((result as S3ErrorLike)?.message));
});
type S3ErrorLike = { code: string; message: string };

Deno.test("a client that signed its path as sent, with escapes S3 writes otherwise, is tolerated", async () => {
  const r = await signed({ path: "/bucket/a%7eb:c" });
  assertSigned(await authenticateRequest(toRequest(r), context()));
});

Deno.test("UNSIGNED-PAYLOAD: the body passes through, only counted", async () => {
  const r = await signed({
    method: "PUT",
    headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    body: "unsigned body",
  });
  const result = assertSigned(await authenticateRequest(toRequest(r), context()));
  assert.equal(new TextDecoder().decode(await readAll(result.body)), "unsigned body");
});

Deno.test("presigned: accepted within its validity, refused before and after", async () => {
  const r = await presigned({ expiresIn: 600 });
  assert.ok(r.query["X-Amz-Signature"]);
  assertSigned(await authenticateRequest(toRequest(r), context()));
  assertSigned(await authenticateRequest(toRequest(r), context(NOW + 600_000)));
  await assertS3Error(
    authenticateRequest(toRequest(r), context(NOW + 601_000)),
    "AccessDenied",
    403,
    "Request has expired",
  );
  // Dated more than 15 minutes ahead of the server's clock.
  await assertS3Error(
    authenticateRequest(toRequest(r), context(NOW - 16 * MINUTE)),
    "AccessDenied",
    403,
    "Request is not valid yet",
  );
  // A week is the most S3 accepts.
  const week = await presigned({ expiresIn: 604800 });
  assertSigned(await authenticateRequest(toRequest(week), context(NOW + 604800_000)));
});

Deno.test("presigned: tampered or invalid parameters", async () => {
  const r = await presigned({ expiresIn: 600 });
  const longer = { ...r, query: { ...r.query, "X-Amz-Expires": "1200" } };
  await assertS3Error(
    authenticateRequest(toRequest(longer), context()),
    "SignatureDoesNotMatch",
    403,
  );
  for (const expires of ["604801", "ten", "-1"]) {
    const bad = { ...r, query: { ...r.query, "X-Amz-Expires": expires } };
    await assertS3Error(
      authenticateRequest(toRequest(bad), context()),
      "AuthorizationQueryParametersError",
      400,
    );
  }
  const otherRegion = await presigned({ region: "eu-west-1" });
  await assertS3Error(
    authenticateRequest(toRequest(otherRegion), context()),
    "AuthorizationQueryParametersError",
    400,
    "the region 'eu-west-1' is wrong; expecting 'garage'",
  );
  const wrongSecret = await presigned({ secret: "not the secret" });
  await assertS3Error(
    authenticateRequest(toRequest(wrongSecret), context()),
    "SignatureDoesNotMatch",
    403,
  );
  const req = toRequest(r);
  req.headers.set("x-amz-meta-injected", "1");
  const e = await assertS3Error(authenticateRequest(req, context()), "AccessDenied", 403);
  assert.equal(e.extra.HeadersNotSigned, "x-amz-meta-injected");
});

Deno.test("presigned PUT: the payload is unsigned unless x-amz-content-sha256 says otherwise", async () => {
  const r = await presigned({
    method: "PUT",
    headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
  });
  // The signer hoists x-amz-* headers into the query, as the S3 presigner does.
  assert.equal(r.query["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
  const result = assertSigned(await authenticateRequest(toRequest(r, "data"), context()));
  assert.equal(new TextDecoder().decode(await readAll(result.body)), "data");

  // Presigned over the hash of no bytes: only an empty body matches.
  const empty = await presigned({
    method: "PUT",
    headers: { "x-amz-content-sha256": EMPTY_SHA256 },
  });
  assertSigned(await authenticateRequest(toRequest(empty, ""), context()));
  const notEmpty = assertSigned(await authenticateRequest(toRequest(empty, "x"), context()));
  await assertStreamFails(notEmpty.body, "XAmzContentSHA256Mismatch");
});

Deno.test("header auth refusals carry AWS's codes", async () => {
  await assertS3Error(
    authenticateRequest(toRequest(await signed({ secret: "wrong secret" })), context()),
    "SignatureDoesNotMatch",
    403,
  );

  const withRange = await signed({ headers: { range: "bytes=0-9" } });
  const modified = toRequest({
    ...withRange,
    headers: { ...withRange.headers, range: "bytes=0-99" },
  });
  const mismatch = await assertS3Error(
    authenticateRequest(modified, context()),
    "SignatureDoesNotMatch",
    403,
  );
  assert.ok(mismatch.extra.CanonicalRequest.includes("range:bytes=0-99"));

  const otherPath = toRequest({ ...withRange, path: "/bucket/other" });
  await assertS3Error(authenticateRequest(otherPath, context()), "SignatureDoesNotMatch");
  const otherQuery = toRequest({ ...withRange, query: { "x-id": "GetObject" } });
  await assertS3Error(authenticateRequest(otherQuery, context()), "SignatureDoesNotMatch");

  const added = toRequest(withRange);
  added.headers.set("x-amz-copy-source", "/bucket/secret");
  const notSigned = await assertS3Error(authenticateRequest(added, context()), "AccessDenied", 403);
  assert.equal(notSigned.extra.HeadersNotSigned, "x-amz-copy-source");

  const wrongRegion = await assertS3Error(
    authenticateRequest(toRequest(await signed({ region: "us-east-1" })), context()),
    "AuthorizationHeaderMalformed",
    400,
    "the region 'us-east-1' is wrong; expecting 'garage'",
  );
  assert.equal(wrongRegion.extra.Region, REGION);

  await assertS3Error(
    authenticateRequest(toRequest(await signed({ date: new Date(NOW - 16 * MINUTE) })), context()),
    "RequestTimeTooSkewed",
    403,
  );
  await assertS3Error(
    authenticateRequest(toRequest(await signed({ date: new Date(NOW + 16 * MINUTE) })), context()),
    "RequestTimeTooSkewed",
    403,
  );
  assertSigned(
    await authenticateRequest(
      toRequest(await signed({ date: new Date(NOW - 14 * MINUTE) })),
      context(),
    ),
  );

  const unknown = await signed();
  unknown.headers.authorization = unknown.headers.authorization.replace(ACCESS_KEY_ID, "GKunknown");
  await assertS3Error(
    authenticateRequest(toRequest(unknown), context()),
    "InvalidAccessKeyId",
    403,
  );

  await assertS3Error(
    authenticateRequest(toRequest(await signed({ applyChecksum: false })), context()),
    "InvalidRequest",
    400,
    "Missing required header for this request: x-amz-content-sha256",
  );
  await assertS3Error(
    authenticateRequest(
      toRequest(await signed({ headers: { "x-amz-content-sha256": "nonsense" } })),
      context(),
    ),
    "InvalidArgument",
    400,
  );

  const otherDate = await signed();
  otherDate.headers.authorization = otherDate.headers.authorization.replace(
    "/20250115/",
    "/20250114/",
  );
  await assertS3Error(
    authenticateRequest(toRequest(otherDate), context()),
    "AuthorizationHeaderMalformed",
    400,
    "Date is not the same as X-Amz-Date",
  );

  const noDate = await signed();
  delete noDate.headers["x-amz-date"];
  await assertS3Error(authenticateRequest(toRequest(noDate), context()), "AccessDenied", 403);

  const malformed = await signed();
  malformed.headers.authorization = malformed.headers.authorization.replace(
    "SignedHeaders=",
    "Signed=",
  );
  await assertS3Error(
    authenticateRequest(toRequest(malformed), context()),
    "AuthorizationHeaderMalformed",
    400,
  );
});

Deno.test("a body that does not match x-amz-content-sha256 errors before done", async () => {
  const r = await signed({ method: "PUT", body: "the signed body" });
  const result = assertSigned(
    await authenticateRequest(toRequest(r, "another body!!!"), context()),
  );
  assert.equal(await assertStreamFails(result.body, "XAmzContentSHA256Mismatch"), 15);
  // A hash of content with no body at all is refused at once.
  const noBody = await signed({ headers: { "x-amz-content-sha256": sha256Hex("x") } });
  await assertS3Error(
    authenticateRequest(toRequest(noBody), context()),
    "XAmzContentSHA256Mismatch",
    400,
  );
});

Deno.test("anonymous requests, and two mechanisms at once", async () => {
  const anonymous = await authenticateRequest(
    rawRequest("http://localhost:3900/bucket/key?list-type=2", { method: "PUT", body: "x" }),
    context(),
  );
  assert.equal(anonymous.kind, "anonymous");
  assert.equal(new TextDecoder().decode(await readAll(anonymous.body)), "x");

  await assertS3Error(
    authenticateRequest(
      rawRequest("http://localhost:3900/bucket/key?AWSAccessKeyId=AKID&Expires=1&Signature=abc", {
        headers: { authorization: "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=" },
      }),
      context(),
    ),
    "InvalidArgument",
    400,
    "Only one auth mechanism",
  );
  const r = await presigned();
  const both = toRequest({
    ...r,
    headers: { ...r.headers, authorization: (await signed()).headers.authorization },
  });
  await assertS3Error(
    authenticateRequest(both, context()),
    "InvalidArgument",
    400,
    "Only one auth mechanism",
  );
});

// ---- aws-chunked bodies behind SDK-signed headers ----

const scope = credentialScope("20250115", REGION);
const key = signingKey(SECRET, "20250115", REGION);
const TIMESTAMP = "20250115T120000Z";

/** Encodes chunks as signing clients do, chained from `seed`. */
function signedChunks(
  seed: string,
  chunks: Uint8Array[],
  trailers?: [string, string][],
): Uint8Array {
  return signChunks({ key, timestamp: TIMESTAMP, scope }, seed, chunks, trailers);
}

function checksum(algorithm: "CRC32" | "CRC32C", data: Uint8Array): string {
  const h = checksumHasher(algorithm);
  h.update(data);
  return toBase64(h.digest());
}

const chunkA = new Uint8Array(70000).map((_, i) => i % 251);
const chunkB = new TextEncoder().encode("the last, short chunk");
const decoded = bytesOf(chunkA, chunkB);

function chunkedHeaders(mode: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    "x-amz-content-sha256": mode,
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(decoded.length),
    ...extra,
  };
}

Deno.test("STREAMING-AWS4-HMAC-SHA256-PAYLOAD: decoded and verified", async () => {
  const r = await signed({
    method: "PUT",
    headers: chunkedHeaders("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
  });
  const body = signedChunks(seedOf(r), [chunkA, chunkB]);
  const result = assertSigned(await authenticateRequest(toRequest(r, body), context()));
  assert.equal(result.contentLength, decoded.length);
  assert.deepEqual(await readAll(result.body), decoded);

  const badSignature = body.slice();
  badSignature[200] ^= 1;
  const bad = assertSigned(await authenticateRequest(toRequest(r, badSignature), context()));
  await assertStreamFails(bad.body, "SignatureDoesNotMatch");

  const truncated = assertSigned(
    await authenticateRequest(toRequest(r, body.subarray(0, 50000)), context()),
  );
  await assertStreamFails(truncated.body, "IncompleteBody");
});

Deno.test("aws-chunked decoded length must match x-amz-decoded-content-length", async () => {
  for (
    const [declared, code] of [[decoded.length + 1, "IncompleteBody"], [
      decoded.length - 1,
      "InvalidRequest",
    ]] as const
  ) {
    const r = await signed({
      method: "PUT",
      headers: chunkedHeaders("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", {
        "x-amz-decoded-content-length": String(declared),
      }),
    });
    const result = assertSigned(
      await authenticateRequest(toRequest(r, signedChunks(seedOf(r), [chunkA, chunkB])), context()),
    );
    assert.equal(result.contentLength, declared);
    await assertStreamFails(result.body, code);
  }
});

Deno.test("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed trailer with a checksum", async () => {
  const r = await signed({
    method: "PUT",
    headers: chunkedHeaders("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", {
      "x-amz-trailer": "x-amz-checksum-crc32c",
    }),
  });
  const value = checksum("CRC32C", decoded);
  const body = signedChunks(seedOf(r), [chunkA, chunkB], [["x-amz-checksum-crc32c", value]]);
  const result = assertSigned(await authenticateRequest(toRequest(r, body), context()));
  assert.deepEqual(await readAll(result.body), decoded);
  assert.deepEqual(result.trailerChecksum(), { algorithm: "CRC32C", value });

  const wrong = signedChunks(seedOf(r), [chunkA, chunkB], [["x-amz-checksum-crc32c", "AAAAAA=="]]);
  const bad = assertSigned(await authenticateRequest(toRequest(r, wrong), context()));
  await assertStreamFails(
    bad.body,
    "BadDigest",
    "The CRC32C you specified did not match the calculated checksum.",
  );
  assert.equal(bad.trailerChecksum(), undefined);
});

/** `decoded` as two unsigned aws-chunked chunks, then the trailer `name: value`. */
function unsignedTrailerBody(name: string, value: string): Uint8Array {
  return bytesOf(
    `${chunkA.length.toString(16)}\r\n`,
    chunkA,
    `\r\n${chunkB.length.toString(16)}\r\n`,
    chunkB,
    `\r\n0\r\n${name}:${value}\r\n\r\n`,
  );
}

Deno.test("STREAMING-UNSIGNED-PAYLOAD-TRAILER: checksum verified, wrong one refused", async () => {
  const r = await signed({
    method: "PUT",
    headers: chunkedHeaders("STREAMING-UNSIGNED-PAYLOAD-TRAILER", {
      "x-amz-trailer": "x-amz-checksum-crc32",
    }),
  });
  const encode = (value: string) => unsignedTrailerBody("x-amz-checksum-crc32", value);
  const value = checksum("CRC32", decoded);
  const result = assertSigned(await authenticateRequest(toRequest(r, encode(value)), context()));
  assert.deepEqual(await readAll(result.body), decoded);
  assert.deepEqual(result.trailerChecksum(), { algorithm: "CRC32", value });

  const bad = assertSigned(
    await authenticateRequest(toRequest(r, encode(checksum("CRC32", chunkB))), context()),
  );
  await assertStreamFails(bad.body, "BadDigest", "CRC32");

  const unsupported = await signed({
    method: "PUT",
    headers: chunkedHeaders("STREAMING-UNSIGNED-PAYLOAD-TRAILER", {
      "x-amz-trailer": "x-amz-checksum-blake3",
    }),
  });
  await assertS3Error(
    authenticateRequest(toRequest(unsupported, encode(value)), context()),
    "InvalidRequest",
    400,
  );
});

Deno.test("STREAMING-UNSIGNED-PAYLOAD-TRAILER with the newer algorithms: SHA512, MD5, xxHash", async () => {
  // Values from implementations other than the server's adapter.
  const expected: [ChecksumAlgorithm, string][] = [
    ["SHA512", createHash("sha512").update(decoded).digest("base64")],
    ["MD5", createHash("md5").update(decoded).digest("base64")],
    ["XXHASH64", toBase64(await digestOf(new Xxh64(), decoded))],
    ["XXHASH3", toBase64(await digestOf(new Xxh3_64(), decoded))],
    ["XXHASH128", toBase64(await digestOf(new Xxh3_128(), decoded))],
  ];
  for (const [algorithm, value] of expected) {
    const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
    const r = await signed({
      method: "PUT",
      headers: chunkedHeaders("STREAMING-UNSIGNED-PAYLOAD-TRAILER", { "x-amz-trailer": name }),
    });
    const encode = (sent: string) => unsignedTrailerBody(name, sent);
    const result = assertSigned(await authenticateRequest(toRequest(r, encode(value)), context()));
    assert.deepEqual(await readAll(result.body), decoded, algorithm);
    assert.deepEqual(result.trailerChecksum(), { algorithm, value });
    const wrong = value.startsWith("A") ? `B${value.slice(1)}` : `A${value.slice(1)}`;
    const bad = assertSigned(
      await authenticateRequest(toRequest(r, encode(wrong)), context()),
    );
    await assertStreamFails(bad.body, "BadDigest", algorithm);
  }
});

async function digestOf(
  hasher: { update(data: Uint8Array): void; digest(): Promise<Uint8Array> },
  data: Uint8Array,
): Promise<Uint8Array> {
  hasher.update(data);
  return await hasher.digest();
}

Deno.test("header auth dated by the Date header alone (no x-amz-date)", async () => {
  const headers = {
    host: "localhost:3900",
    date: new Date(NOW).toUTCString(),
    "x-amz-content-sha256": EMPTY_SHA256,
  };
  const signedNames = ["date", "host", "x-amz-content-sha256"];
  const canonical = canonicalRequest({
    method: "GET",
    canonicalUri: "/bucket/key",
    canonicalQuery: "",
    canonicalHeaders: canonicalHeaders(new Headers(headers), signedNames),
    signedHeaders: signedNames.join(";"),
    payloadHash: EMPTY_SHA256,
  });
  const signature = signatureHex(key, stringToSign(TIMESTAMP, scope, canonical));
  const authorization = `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/${scope}, ` +
    `SignedHeaders=${signedNames.join(";")}, Signature=${signature}`;
  const req = rawRequest("http://localhost:3900/bucket/key", {
    headers: { ...headers, authorization },
  });
  assertSigned(await authenticateRequest(req, context()));
  await assertS3Error(
    authenticateRequest(req, context(NOW + 20 * MINUTE)),
    "RequestTimeTooSkewed",
    403,
  );
});

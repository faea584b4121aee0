/**
 * authenticateRequest against what the real AWS SDK for JavaScript v3 sends:
 * the S3 client's requests are captured by its request handler, turned into
 * the Request Deno.serve would give, and authenticated.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { checksumHasher, toBase64 } from "../../../util/hash.ts";
import { type AuthContext, authenticateRequest, type AuthResult } from "./authenticate.ts";
import { rawRequest, readAll, sdkQueryString } from "./_test_helpers.ts";

const REGION = "garage";
const ACCESS_KEY_ID = "GK0123456789abcdef01234567";
const SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const context: AuthContext = {
  region: REGION,
  nowMs: () => Date.now(),
  getSecret: (id) => Promise.resolve(id === ACCESS_KEY_ID ? SECRET : undefined),
};

interface Captured {
  result?: AuthResult;
  error?: unknown;
  body?: Uint8Array;
  request: Request;
}

interface SdkHttpRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

function toBody(body: unknown): BodyInit | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string" || body instanceof Uint8Array) return body as BodyInit;
  if (body instanceof Readable) {
    return Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
  }
  throw new Error(`unexpected SDK body ${Object.prototype.toString.call(body)}`);
}

const LIST_RESULT = new TextEncoder().encode(
  `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Name>bucket</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`,
);

/** An S3 client whose requests are authenticated in process; `captured` receives each. */
function client(captured: Captured[]): S3Client {
  return new S3Client({
    region: REGION,
    endpoint: "http://localhost:3900",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET },
    maxAttempts: 1,
    requestHandler: {
      async handle(request: SdkHttpRequest) {
        const qs = sdkQueryString(request.query ?? {});
        const req = rawRequest(`http://localhost:3900${request.path}${qs === "" ? "" : "?" + qs}`, {
          method: request.method,
          headers: request.headers,
          body: toBody(request.body),
        });
        const entry: Captured = { request: req };
        captured.push(entry);
        try {
          entry.result = await authenticateRequest(req, context);
          entry.body = await readAll(entry.result.body);
        } catch (e) {
          entry.error = e;
        }
        const list = request.method === "GET" && request.query?.["list-type"] === "2";
        return {
          response: {
            statusCode: 200,
            headers: { etag: '"0"' },
            body: request.method === "GET" && !list
              ? Readable.from([new Uint8Array([1, 2, 3])])
              : (list ? LIST_RESULT : new Uint8Array(0)),
          },
        };
      },
      updateHttpClientConfig() {},
      httpHandlerConfigs: () => ({}),
    } as never,
  });
}

function only(
  captured: Captured[],
): Captured & { result: Extract<AuthResult, { kind: "signed" }> } {
  assert.equal(captured.length, 1);
  const [c] = captured;
  if (c.error !== undefined) throw c.error;
  assert.equal(c.result?.kind, "signed");
  return c as never;
}

const KEYS = [
  "simple.txt",
  "with space/and+plus=&?.txt",
  "unicode/日本語 é ü.bin",
  "../dots/./x",
  "!'()*~",
];

Deno.test("S3Client PutObject with a string body (signed payload)", async () => {
  for (const key of KEYS) {
    const captured: Captured[] = [];
    await client(captured).send(
      new PutObjectCommand({ Bucket: "bucket", Key: key, Body: "hello from the SDK" }),
    );
    const c = only(captured);
    assert.equal(new TextDecoder().decode(c.body), "hello from the SDK", key);
    assert.equal(c.result.accessKeyId, ACCESS_KEY_ID);
  }
});

Deno.test("S3Client PutObject with a stream body (aws-chunked with a checksum trailer)", async () => {
  const data = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
  const captured: Captured[] = [];
  await client(captured).send(
    new PutObjectCommand({
      Bucket: "bucket",
      Key: "streamed object",
      Body: Readable.from([
        data.subarray(0, 65536),
        data.subarray(65536, 131072),
        data.subarray(131072),
      ]),
      ContentLength: data.length,
      ChecksumAlgorithm: "CRC32C",
    }),
  );
  const c = only(captured);
  assert.equal(c.request.headers.get("x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  assert.deepEqual(c.body, data);
  assert.equal(c.result.contentLength, data.length);
  const h = checksumHasher("CRC32C");
  h.update(data);
  assert.deepEqual(c.result.trailerChecksum(), {
    algorithm: "CRC32C",
    value: toBase64(h.digest()),
  });
});

Deno.test("S3Client ListObjectsV2 and GetObject with special keys", async () => {
  for (const key of KEYS) {
    const captured: Captured[] = [];
    await client(captured).send(
      new ListObjectsV2Command({ Bucket: "bucket", Prefix: key, Delimiter: "/", StartAfter: "" }),
    );
    only(captured);
    const getCaptured: Captured[] = [];
    const out = await client(getCaptured).send(
      new GetObjectCommand({ Bucket: "bucket", Key: key, Range: "bytes=0-9" }),
    );
    await out.Body?.transformToByteArray();
    only(getCaptured);
  }
});

Deno.test("presigned URLs from @aws-sdk/s3-request-presigner", async () => {
  const s3 = client([]);
  for (const key of KEYS) {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "bucket", Key: key }), {
      expiresIn: 300,
    });
    const result = await authenticateRequest(
      rawRequest(url, { headers: { host: "localhost:3900" } }),
      context,
    );
    assert.equal(result.kind, "signed", key);
  }
  const putUrl = await getSignedUrl(
    s3,
    new PutObjectCommand({ Bucket: "bucket", Key: "up load" }),
    {
      expiresIn: 300,
    },
  );
  const put = await authenticateRequest(
    rawRequest(putUrl, { method: "PUT", headers: { host: "localhost:3900" }, body: "uploaded" }),
    context,
  );
  assert.equal(new TextDecoder().decode(await readAll(put.body)), "uploaded");
});

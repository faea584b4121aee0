/**
 * A fuzzer of signed S3 requests: random methods, buckets, keys, sub-resources,
 * headers and bodies (XML documents, random bytes, 5 MiB, bodies cut short),
 * most signed with SigV4 (one in ten anonymous), each sent over a connection
 * of its own. Any answer of
 * 500 or above but 501 (what remise refuses on purpose) and 503, or a
 * connection that gives no answer, is reported; the exit code is then 1.
 * Against a running store (`make dev`, or a node of scripts/partition):
 *
 *   deno run -A scripts/fuzz/s3_fuzz.ts --endpoint http://127.0.0.1:3900 \
 *     --key-file KEY.json [--requests 3000] [--seed 1] [--region us-east-1]
 *
 * KEY.json holds `accessKeyId` and `secretAccessKey` (the admin API's answer
 * to POST /v1/keys). The key creates and may delete the buckets `fuzz-a` and
 * `fuzz-v` (versioned): use a store whose data does not matter.
 * `tests/fuzz_test.ts` runs a short seeded round of it with the test suite.
 */
import { parseArgs } from "node:util";
import { canonicalQuery, encodeKeyPath, SigV4Signer } from "../../bench/sigv4.ts";
import { seededRandom } from "../../lib/util/seeded_random.ts";

const BUCKETS = ["fuzz-a", "fuzz-a", "fuzz-a", "fuzz-v", "fuzz-v", "no-such-bucket", "UPPER", "ab"];
const KEYS = ["k", "dir/k", "a b", "%", "ü", "k".repeat(1100), "..", "k/", "obj", "mp", "x\u0000y"];
const SUBRESOURCES: Record<string, string[]> = {
  uploads: [""],
  uploadId: ["", "bogus", "x".repeat(300)],
  partNumber: ["1", "0", "-1", "10001", "abc", "1e1", ""],
  versionId: ["", "null", "bogus"],
  tagging: [""],
  acl: [""],
  versioning: [""],
  lifecycle: [""],
  policy: [""],
  cors: [""],
  website: [""],
  delete: [""],
  "list-type": ["2", "3"],
  "max-keys": ["-1", "0", "abc", "99999999999", "5"],
  prefix: ["", "a", "%"],
  delimiter: ["/", "xx"],
  "continuation-token": ["", "garbage"],
  "encoding-type": ["url", "bogus"],
  "max-uploads": ["-5", "x"],
  "part-number-marker": ["x"],
  "version-id-marker": ["bogus"],
  "object-lock": [""],
  retention: [""],
  "legal-hold": [""],
  location: [""],
  attributes: [""],
  encryption: [""],
  "response-content-type": ["text/plain", "a\r\nb"],
  select: [""],
  "max-buckets": ["0", "-1", "10001"],
};
const HEADERS: Record<string, string[]> = {
  "content-md5": ["bogus", "1B2M2Y8AsgTpgAmY7PhCfg=="],
  "x-amz-copy-source": ["fuzz-a/k", "/fuzz-a/obj", "no-such-bucket/k", "fuzz-a/k?versionId=x", "%"],
  "x-amz-copy-source-range": ["bytes=0-0", "bytes=5-1", "bytes=x"],
  "x-amz-metadata-directive": ["COPY", "REPLACE", "bogus"],
  range: ["bytes=0-0", "bytes=-1", "bytes=5-1", "bytes=", "bytes=0-1,3-4", "items=0-1"],
  "if-match": ["*", '"x"'],
  "if-none-match": ["*", '"x"'],
  "if-modified-since": ["garbage", "Tue, 01 Jan 2030 00:00:00 GMT"],
  "x-amz-tagging": ["a=b", "=", "a=b&a=c", "%%", "aws:x=1"],
  "x-amz-server-side-encryption": ["AES256", "aws:kms", "bogus"],
  "x-amz-server-side-encryption-customer-algorithm": ["AES256", "bogus"],
  "x-amz-server-side-encryption-customer-key": ["short", "A".repeat(44)],
  "x-amz-object-lock-mode": ["GOVERNANCE", "bogus"],
  "x-amz-object-lock-retain-until-date": ["garbage", "2099-01-01T00:00:00Z"],
  "x-amz-object-lock-legal-hold": ["ON", "x"],
  "x-amz-meta-a": ["v", "x".repeat(3000)],
  "content-type": ["text/plain", "multipart/form-data; boundary=x"],
  "x-amz-checksum-crc32": ["bogus", "AAAAAA=="],
  "x-amz-sdk-checksum-algorithm": ["CRC32", "bogus"],
  "x-amz-storage-class": ["GLACIER", "bogus"],
  "x-amz-acl": ["private", "public-read", "bogus"],
  "x-amz-website-redirect-location": ["/x", "bogus"],
  "x-amz-bucket-object-lock-enabled": ["true", "x"],
  "x-amz-object-ownership": ["BucketOwnerEnforced", "ObjectWriter", "x"],
};
const encoder = new TextEncoder();
const BODIES: Uint8Array[] = [
  "",
  "<",
  "<x/>",
  "<Delete><Object><Key>k</Key></Object></Delete>",
  "<Delete>" + "<Object><Key>k</Key></Object>".repeat(1001) + "</Delete>",
  "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>",
  '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>',
  "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
  "<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
  '{"Version":"2012-10-17","Statement":[]}',
  "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>",
  '<!DOCTYPE x [<!ENTITY a "aaaa">]><Tagging>&a;</Tagging>',
].map((text) => encoder.encode(text)).concat([
  Uint8Array.from({ length: 3000 }, (_, i) => (i * 2654435761) >>> 24), // bytes that are no text
  new Uint8Array(5 * 1024 * 1024 + 3),
]);

/** An answer's status, or what happened instead, and the request it answered. */
export interface Outcome {
  status: number | string;
  request: string;
}

/** Where to send, as whom, how many requests, and the seed that makes their sequence. */
export interface FuzzOptions {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  requests: number;
  seed: number;
}

/** Statuses counted, and the outcomes that fail: a 5xx but 501 and 503, or no answer. */
export interface FuzzResult {
  counts: Map<string, number>;
  failures: Outcome[];
}

/** Sends `options.requests` random requests, setting up buckets and objects now and then. */
export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const endpoint = new URL(options.endpoint);
  const signer = new SigV4Signer({
    accessKey: options.accessKeyId,
    secretKey: options.secretAccessKey,
    region: options.region,
  });
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

  /**
   * Sends one request over a connection of its own: signed, or `anonymous`;
   * `cutShort` announces 10 more bytes than it sends.
   */
  async function send(
    method: string,
    path: string,
    query: [string, string][],
    headers: Record<string, string>,
    body: Uint8Array,
    { cutShort = false, anonymous = false } = {},
  ): Promise<Outcome> {
    const host = endpoint.host;
    const signed = anonymous ? headers : signer.sign({ method, host, path, query, headers });
    const queryString = canonicalQuery(query);
    const target = path + (queryString ? `?${queryString}` : "");
    const lines = [`${method} ${target} HTTP/1.1`, `host: ${host}`, "connection: close"];
    for (const [name, value] of Object.entries(signed)) lines.push(`${name}: ${value}`);
    lines.push(`content-length: ${body.byteLength + (cutShort ? 10 : 0)}`);
    const request = `${anonymous ? "anonymous " : ""}${method} ${target.slice(0, 100)} ` +
      `[${Object.keys(headers).join(", ")}]`;
    const conn = await Deno.connect({ hostname: endpoint.hostname, port: Number(endpoint.port) });
    const timer = setTimeout(() => conn.close(), 60_000);
    try {
      const writing = (async () => {
        await writeAll(conn, encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
        await writeAll(conn, body);
        if (cutShort) await conn.closeWrite();
      })().catch(() => {}); // an answer before the whole body is read may close the connection
      const answer = new Uint8Array(await new Response(conn.readable).arrayBuffer());
      await writing;
      const statusLine = new TextDecoder().decode(answer.subarray(0, 32));
      const status = /^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1];
      return { status: status ? Number(status) : "no answer", request };
    } catch (e) {
      return { status: `connection error (${(e as Error).name})`, request };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Buckets and objects for the requests to find; recreated now and then, as requests delete them. */
  async function setUp(): Promise<void> {
    const versioning =
      "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    const steps: [string, string, [string, string][], string][] = [
      ["PUT", encodeKeyPath("fuzz-a"), [], ""],
      ["PUT", encodeKeyPath("fuzz-v"), [], ""],
      ["PUT", encodeKeyPath("fuzz-v"), [["versioning", ""]], versioning],
      ["PUT", encodeKeyPath("fuzz-a", "k"), [], "hello"],
      ["PUT", encodeKeyPath("fuzz-a", "obj"), [], "x".repeat(100)],
      ["POST", encodeKeyPath("fuzz-a", "mp"), [["uploads", ""]], ""],
    ];
    for (const [method, path, query, body] of steps) {
      await send(method, path, query, {}, encoder.encode(body));
    }
  }

  function randomRequest(): Promise<Outcome> {
    const method = pick(["GET", "PUT", "POST", "DELETE", "HEAD", "GET", "PUT"]);
    const shape = random();
    const path = shape < 0.1
      ? "/"
      : shape < 0.4
      ? encodeKeyPath(pick(BUCKETS))
      : encodeKeyPath(pick(BUCKETS), pick(KEYS));
    const query: [string, string][] = [];
    for (let i = Math.floor(random() * 4); i > 0; i--) {
      const name = pick(Object.keys(SUBRESOURCES));
      query.push([name, pick(SUBRESOURCES[name])]);
    }
    const headers: Record<string, string> = {};
    for (let i = Math.floor(random() * 5); i > 0; i--) {
      const name = pick(Object.keys(HEADERS));
      headers[name] = pick(HEADERS[name]);
    }
    const body = method === "PUT" || method === "POST" ? pick(BODIES) : new Uint8Array(0);
    return send(method, path, query, headers, body, {
      cutShort: body.byteLength > 0 && random() < 0.05,
      anonymous: random() < 0.1,
    });
  }

  const counts = new Map<string, number>();
  const failures: Outcome[] = [];
  for (let i = 0; i < options.requests; i++) {
    if (i % 150 === 0) await setUp();
    const outcome = await randomRequest();
    const label = String(outcome.status);
    counts.set(label, (counts.get(label) ?? 0) + 1);
    const status = outcome.status;
    if (typeof status === "string" || (status >= 500 && status !== 501 && status !== 503)) {
      failures.push(outcome);
    }
  }
  return { counts, failures };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let sent = 0;
  while (sent < bytes.byteLength) sent += await conn.write(bytes.subarray(sent));
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      endpoint: { type: "string", default: "http://127.0.0.1:3900" },
      "key-file": { type: "string" },
      requests: { type: "string", default: "3000" },
      seed: { type: "string", default: "1" },
      region: { type: "string", default: "us-east-1" },
    },
  });
  if (!args["key-file"]) throw new Error("--key-file KEY.json is required");
  const key = JSON.parse(await Deno.readTextFile(args["key-file"]));
  const { counts, failures } = await fuzz({
    endpoint: args.endpoint,
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    region: args.region,
    requests: Number(args.requests),
    seed: Number(args.seed),
  });
  console.log(
    [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}: ${n}`).join(", "),
  );
  for (const f of failures.slice(0, 20)) console.log(`FAILED ${f.status}: ${f.request}`);
  console.log(`${args.requests} requests, seed ${args.seed}: ${failures.length} failed`);
  Deno.exit(failures.length === 0 ? 0 : 1);
}

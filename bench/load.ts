/**
 * The benchmark's load generator: a process of its own, driven by one JSON
 * command per line on stdin, answering one JSON line per command on stdout.
 * Requests go over the minimal HTTP/1.1 client in `http1.ts`, signed by the
 * minimal SigV4 signer in `sigv4.ts` (UNSIGNED-PAYLOAD); every result carries
 * the CPU this process used while producing it.
 *
 * Commands (see `LoadCommand`): target, request, small, large, multipart,
 * list, ttfb, exit.
 */
import process from "node:process";
import { Http1Connection, parseTarget, requestHead, type Target } from "./http1.ts";
import { canonicalQuery, encodeKeyPath, SigV4Signer } from "./sigv4.ts";

const CHUNK_BYTES = 1024 * 1024;
/** Every this many bytes of a generated body carry a unique stamp, so no block dedupes. */
const STAMP_EVERY_BYTES = 64 * 1024;

/** Keys `keyName(prefix, n, dirs)` for n in [from, to). */
export type KeyRange = [prefix: string, from: number, to: number, dirs?: number];

/** `prefix` + n, or with `dirs`, `prefix` + "dNNN/" + n: keys spread over `dirs` folders. */
export function keyName(prefix: string, n: number, dirs?: number): string {
  return dirs ? `${prefix}d${String(n % dirs).padStart(3, "0")}/${n}` : prefix + n;
}

export type LoadCommand =
  | {
    cmd: "target";
    endpoint: string;
    accessKey: string;
    secretKey: string;
    region: string;
  }
  | {
    cmd: "request";
    method: string;
    bucket: string;
    key?: string;
    query?: [string, string][];
    body?: string;
  }
  | {
    cmd: "small";
    method: "PUT" | "GET" | "HEAD" | "DELETE";
    bucket: string;
    concurrency: number;
    /** PUT: keys `keyName(prefix, n, dirs)`, n from `start`; stops after `durationMs` or `count` keys. */
    prefix?: string;
    start?: number;
    dirs?: number;
    count?: number;
    size?: number;
    durationMs?: number;
    /** DELETE: a 404 is not an error (cleanup of keys that may be gone). */
    ignoreMissing?: boolean;
    /** GET/HEAD: read these keys round robin; DELETE: delete them in order, each once. */
    keys?: KeyRange[];
  }
  | {
    cmd: "large";
    method: "PUT" | "GET";
    bucket: string;
    keys: string[];
    size: number;
    parallel: number;
  }
  | {
    cmd: "multipart";
    bucket: string;
    /** The object's key; with several uploads, `KEY.1`, `KEY.2`... */
    key: string;
    size: number;
    partSize: number;
    /** Parts in flight per upload. */
    concurrency: number;
    /** Uploads run at once (1 when not given), each of `size` bytes. */
    uploads?: number;
  }
  | { cmd: "list"; bucket: string; prefix: string; delimiter?: string }
  | {
    cmd: "ttfb";
    bucket: string;
    key: string;
    tries: number;
    /** Range GETs of this many bytes at random offsets of an object of `objectSize`. */
    rangeBytes?: number;
    objectSize?: number;
  }
  | { cmd: "exit" };

let target: Target | undefined;
let signer: SigV4Signer | undefined;
/** Makes this run's bodies unlike any other run's. */
const RUN_NONCE = crypto.getRandomValues(new Uint32Array(2));
let bodySerial = 0;

/** 1 MiB of random bytes, the base of every generated body. */
const BASE = (() => {
  const b = new Uint8Array(CHUNK_BYTES);
  for (let off = 0; off < b.length; off += 65536) {
    crypto.getRandomValues(b.subarray(off, off + 65536));
  }
  return b;
})();

function ready(): { target: Target; signer: SigV4Signer } {
  if (!target || !signer) throw new Error("no target: send a `target` command first");
  return { target, signer };
}

interface Signed {
  head: Uint8Array;
}

function signedHead(
  method: string,
  bucket: string,
  key: string | undefined,
  query: [string, string][] = [],
  contentLength?: number,
  extra: Record<string, string> = {},
): Signed {
  const { target, signer } = ready();
  const path = encodeKeyPath(bucket, key);
  const headers = signer.sign({ method, host: target.host, path, query });
  const qs = canonicalQuery(query);
  return {
    head: requestHead(
      method,
      qs ? `${path}?${qs}` : path,
      target.host,
      { ...headers, ...extra },
      contentLength,
    ),
  };
}

/** A pool of keep-alive connections to the target. */
class Pool {
  #idle: Http1Connection[] = [];
  async get(): Promise<Http1Connection> {
    for (;;) {
      const c = this.#idle.pop();
      if (!c) return await Http1Connection.open(ready().target);
      if (!c.closed) return c;
    }
  }
  put(c: Http1Connection) {
    if (!c.closed) this.#idle.push(c);
  }
  closeAll() {
    for (const c of this.#idle) c.close();
    this.#idle = [];
  }
}
const pool = new Pool();

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** A unique stamp in `buf` every STAMP_EVERY_BYTES: run nonce, body serial, offset. */
function stamp(buf: Uint8Array, serial: number, offset: number) {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = 0; at + 16 <= buf.byteLength; at += STAMP_EVERY_BYTES) {
    view.setUint32(at, RUN_NONCE[0]);
    view.setUint32(at + 4, RUN_NONCE[1]);
    view.setUint32(at + 8, serial);
    view.setUint32(at + 12, (offset + at) / 16);
  }
}

/** Writes `size` generated bytes, unique to this body, in 1 MiB writes of one reused buffer. */
async function writeBody(conn: Http1Connection, size: number): Promise<void> {
  const serial = ++bodySerial;
  const buf = BASE.slice();
  for (let off = 0; off < size; off += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, size - off);
    stamp(buf, serial, off);
    await conn.write(n === CHUNK_BYTES ? buf : buf.subarray(0, n));
  }
}

interface Exchange {
  status: number;
  headers: Map<string, string>;
  bytes: number;
  text?: string;
}

/** One request on a pooled connection; the body is generated (`bodySize`) or given. */
async function exchange(
  method: string,
  bucket: string,
  key: string | undefined,
  options: {
    query?: [string, string][];
    body?: Uint8Array;
    bodySize?: number;
    collect?: boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<Exchange> {
  // a PUT or POST without a body says so (Content-Length: 0), as SDKs do
  const length = options.body?.byteLength ?? options.bodySize ??
    (method === "PUT" || method === "POST" ? 0 : undefined);
  const { head } = signedHead(method, bucket, key, options.query, length, options.headers);
  const conn = await pool.get();
  try {
    if (options.body && options.body.byteLength <= 64 * 1024) {
      const both = new Uint8Array(head.byteLength + options.body.byteLength);
      both.set(head);
      both.set(options.body, head.byteLength);
      await conn.write(both);
    } else {
      await conn.write(head);
      if (options.body) await conn.write(options.body);
      else if (options.bodySize) await writeBody(conn, options.bodySize);
    }
    const res = await conn.readHead();
    const collect = options.collect || res.status >= 300;
    const body = await conn.readBody(method, res, collect);
    pool.put(conn);
    return { status: res.status, headers: res.headers, bytes: body.bytes, text: body.text };
  } catch (e) {
    conn.close();
    throw e;
  }
}

function describe(x: Exchange): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(x.text ?? "")?.[1];
  const msg = /<Message>([^<]*)<\/Message>/.exec(x.text ?? "")?.[1];
  return `HTTP ${x.status}${code ? ` ${code}` : ""}${msg ? `: ${msg}` : ""}`;
}

async function small(c: Extract<LoadCommand, { cmd: "small" }>) {
  const size = c.size ?? 4096;
  // every PUT body is different (a stamp at its start): the store cannot dedupe them
  const putBody = () => {
    const b = BASE.slice(0, size);
    if (size >= 16) stamp(b, ++bodySerial, 0);
    return b;
  };
  const deadline = c.durationMs === undefined ? Infinity : performance.now() + c.durationMs;
  const ranges = c.keys ?? [];
  const total = ranges.reduce((n, [, from, to]) => n + (to - from), 0);
  if (c.method !== "PUT" && total === 0) throw new Error(`${c.method} needs keys`);
  const keyAt = (i: number): string => {
    for (const [prefix, from, to, dirs] of ranges) {
      if (i < to - from) return keyName(prefix, from + i, dirs);
      i -= to - from;
    }
    throw new Error("key index out of range");
  };
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const t0 = performance.now();
  const cpu0 = cpuMicros();
  let last = t0;
  await Promise.all(Array.from({ length: c.concurrency }, async () => {
    for (;;) {
      if (performance.now() >= deadline) break;
      const i = next++;
      let key: string;
      if (c.method === "PUT") {
        if (c.count !== undefined && i >= c.count) break;
        key = keyName(c.prefix ?? "", (c.start ?? 0) + i, c.dirs);
      } else if (c.method === "DELETE") {
        if (i >= total) break;
        key = keyAt(i);
      } else {
        key = keyAt(i % total);
      }
      const start = performance.now();
      try {
        const body = c.method === "PUT" ? putBody() : undefined;
        const x = await exchange(c.method, c.bucket, key, { body });
        const ok = c.method === "DELETE"
          ? x.status === 204 || x.status === 200 || (c.ignoreMissing === true && x.status === 404)
          : x.status === 200;
        if (!ok) {
          errors++;
          firstError ??= `${c.method} ${key}: ${describe(x)}`;
        }
      } catch (e) {
        errors++;
        firstError ??= `${c.method} ${key}: ${(e as Error).message}`;
      }
      last = performance.now();
      latencies.push(last - start);
    }
  }));
  const seconds = (last - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  pool.closeAll();
  return {
    ops: latencies.length,
    seconds,
    opsPerSec: latencies.length / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    errors,
    firstError,
    consumed: Math.min(next, c.method === "PUT" ? next : total),
    genCpuPct: (cpuMicros() - cpu0) / 10 / (last - t0),
  };
}

async function large(c: Extract<LoadCommand, { cmd: "large" }>) {
  const t0 = performance.now();
  const cpu0 = cpuMicros();
  let bytes = 0;
  let next = 0;
  await Promise.all(Array.from({ length: c.parallel }, async () => {
    for (;;) {
      const i = next++;
      if (i >= c.keys.length) break;
      const key = c.keys[i];
      const x = c.method === "PUT"
        ? await exchange("PUT", c.bucket, key, { bodySize: c.size })
        : await exchange("GET", c.bucket, key);
      if (x.status !== 200) throw new Error(`${c.method} ${key}: ${describe(x)}`);
      if (c.method === "GET" && x.bytes !== c.size) {
        throw new Error(`GET ${key}: ${x.bytes} bytes, expected ${c.size}`);
      }
      bytes += c.size;
    }
  }));
  const ms = performance.now() - t0;
  pool.closeAll();
  return {
    bytes,
    seconds: ms / 1000,
    mibPerSec: bytes / 1048576 / (ms / 1000),
    genCpuPct: (cpuMicros() - cpu0) / 10 / ms,
  };
}

function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m ? unescapeXml(m[1]) : undefined;
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#(\d+)|#x([0-9a-fA-F]+));/g, (_, name, dec, hex) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[name as string]!;
  });
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

async function multipart(c: Extract<LoadCommand, { cmd: "multipart" }>) {
  const t0 = performance.now();
  const cpu0 = cpuMicros();
  const uploads = c.uploads ?? 1;
  const keys = uploads === 1
    ? [c.key]
    : Array.from({ length: uploads }, (_, i) => `${c.key}.${i + 1}`);
  await Promise.all(keys.map((key) => multipartUpload(c, key)));
  const ms = performance.now() - t0;
  pool.closeAll();
  return {
    bytes: c.size * uploads,
    parts: Math.ceil(c.size / c.partSize) * uploads,
    seconds: ms / 1000,
    mibPerSec: (c.size * uploads) / 1048576 / (ms / 1000),
    genCpuPct: (cpuMicros() - cpu0) / 10 / ms,
  };
}

/** One multipart upload of `c.size` bytes to `key`, `c.concurrency` parts in flight. */
async function multipartUpload(c: Extract<LoadCommand, { cmd: "multipart" }>, key: string) {
  const init = await exchange("POST", c.bucket, key, { query: [["uploads", ""]], collect: true });
  const uploadId = xmlValue(init.text ?? "", "UploadId");
  if (init.status !== 200 || !uploadId) throw new Error(`CreateMultipartUpload: ${describe(init)}`);
  const parts = Math.ceil(c.size / c.partSize);
  const etags: string[] = [];
  let next = 1;
  await Promise.all(Array.from({ length: c.concurrency }, async () => {
    for (;;) {
      const n = next++;
      if (n > parts) break;
      const size = Math.min(c.partSize, c.size - (n - 1) * c.partSize);
      const x = await exchange("PUT", c.bucket, key, {
        query: [["partNumber", String(n)], ["uploadId", uploadId]],
        bodySize: size,
      });
      const etag = x.headers.get("etag");
      if (x.status !== 200 || !etag) throw new Error(`UploadPart ${n}: ${describe(x)}`);
      etags[n - 1] = etag;
    }
  }));
  const xml = "<CompleteMultipartUpload>" +
    etags.map((e, i) =>
      `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(e)}</ETag></Part>`
    )
      .join("") +
    "</CompleteMultipartUpload>";
  const done = await exchange("POST", c.bucket, key, {
    query: [["uploadId", uploadId]],
    body: new TextEncoder().encode(xml),
    collect: true,
  });
  if (done.status !== 200 || /<Error>/.test(done.text ?? "")) {
    throw new Error(`CompleteMultipartUpload: ${describe(done)}`);
  }
}

/** Lists `prefix` page by page; with a delimiter, walks down every common prefix too. */
async function list(c: Extract<LoadCommand, { cmd: "list" }>) {
  const t0 = performance.now();
  const cpu0 = cpuMicros();
  let keys = 0;
  let prefixes = 0;
  let requests = 0;
  const pending = [c.prefix];
  while (pending.length > 0) {
    const prefix = pending.shift()!;
    let token: string | undefined;
    do {
      const query: [string, string][] = [["list-type", "2"], ["prefix", prefix], [
        "max-keys",
        "1000",
      ]];
      if (c.delimiter) query.push(["delimiter", c.delimiter]);
      if (token) query.push(["continuation-token", token]);
      const x = await exchange("GET", c.bucket, undefined, { query, collect: true });
      requests++;
      if (x.status !== 200) throw new Error(`ListObjectsV2 ${prefix}: ${describe(x)}`);
      const text = x.text ?? "";
      keys += text.split("<Contents>").length - 1;
      for (const m of text.matchAll(/<CommonPrefixes><Prefix>([^<]*)<\/Prefix>/g)) {
        prefixes++;
        pending.push(unescapeXml(m[1]));
      }
      token = /<IsTruncated>true</.test(text) ? xmlValue(text, "NextContinuationToken") : undefined;
    } while (token);
  }
  const ms = performance.now() - t0;
  pool.closeAll();
  return {
    keys,
    prefixes,
    requests,
    seconds: ms / 1000,
    keysPerSec: keys / (ms / 1000),
    genCpuPct: (cpuMicros() - cpu0) / 10 / ms,
  };
}

/** Time to the first body byte of a GET, on a connection opened beforehand. */
async function ttfb(c: Extract<LoadCommand, { cmd: "ttfb" }>) {
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  const firsts: number[] = [];
  const totals: number[] = [];
  for (let i = 0; i < c.tries; i++) {
    const conn = await Http1Connection.open(ready().target);
    let extra: Record<string, string> = {};
    if (c.rangeBytes && c.objectSize) {
      const start = Math.floor(Math.random() * (c.objectSize - c.rangeBytes));
      extra = { range: `bytes=${start}-${start + c.rangeBytes - 1}` };
    }
    const { head } = signedHead("GET", c.bucket, c.key, [], undefined, extra);
    const start = performance.now();
    let first = NaN;
    try {
      await conn.write(head);
      const res = await conn.readHead();
      if (res.status !== 200 && res.status !== 206) {
        const body = await conn.readBody("GET", res, true);
        throw new Error(`GET ${c.key}: HTTP ${res.status} ${body.text?.slice(0, 300)}`);
      }
      if (c.rangeBytes) {
        // the whole range: small enough to read to the end
        const body = await conn.readBody("GET", res, false, () => first = performance.now());
        if (body.bytes !== c.rangeBytes) throw new Error(`range GET: ${body.bytes} bytes`);
      } else {
        // the first bytes only, then drop the connection
        await conn.readBody(
          "GET",
          { ...res, contentLength: 1, chunked: false },
          false,
          () => first = performance.now(),
        );
      }
      firsts.push(first - start);
      totals.push(performance.now() - start);
    } finally {
      conn.close();
    }
  }
  const sortedFirst = Float64Array.from(firsts).sort();
  const sortedTotal = Float64Array.from(totals).sort();
  const ms = performance.now() - t0;
  return {
    tries: c.tries,
    p50Ms: percentile(sortedFirst, 0.5),
    p90Ms: percentile(sortedFirst, 0.9),
    minMs: sortedFirst[0],
    totalP50Ms: percentile(sortedTotal, 0.5),
    genCpuPct: (cpuMicros() - cpu0) / 10 / ms,
  };
}

async function run(c: LoadCommand): Promise<unknown> {
  switch (c.cmd) {
    case "target":
      pool.closeAll();
      target = parseTarget(c.endpoint);
      signer = new SigV4Signer({
        accessKey: c.accessKey,
        secretKey: c.secretKey,
        region: c.region,
      });
      return {};
    case "request": {
      const x = await exchange(c.method, c.bucket, c.key, {
        query: c.query,
        body: c.body === undefined ? undefined : new TextEncoder().encode(c.body),
        collect: true,
      });
      pool.closeAll();
      return { status: x.status, text: x.text, headers: Object.fromEntries(x.headers) };
    }
    case "small":
      return await small(c);
    case "large":
      return await large(c);
    case "multipart":
      return await multipart(c);
    case "list":
      return await list(c);
    case "ttfb":
      return await ttfb(c);
    case "exit":
      return {};
  }
}

if (import.meta.main) {
  const encoder = new TextEncoder();
  let buffered = "";
  const out = async (obj: unknown) => {
    const bytes = encoder.encode(JSON.stringify(obj) + "\n");
    let off = 0;
    while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
  };
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() === "") continue;
      const msg = JSON.parse(line) as LoadCommand & { id: number };
      try {
        const result = await run(msg);
        await out({ id: msg.id, ok: true, result });
      } catch (e) {
        await out({ id: msg.id, ok: false, error: (e as Error).stack ?? String(e) });
      }
      if (msg.cmd === "exit") Deno.exit(0);
    }
  }
}

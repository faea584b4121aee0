/**
 * Kill/restart chaos against a 3-node remise cluster (replication factor 3,
 * one zone per node, certificates made by `remise cert`), started the way a
 * user would: one TOML file per node, `remise server -c FILE`, then
 * `remise layout assign/apply`, `remise key create`, buckets through S3.
 *
 *   deno run -A --unstable-kv scripts/chaos/kill_restart.ts [options]
 *
 *   --seed N          choices and contents (default: random; printed)
 *   --duration S      seconds of chaos (default 180)
 *   --workers N       concurrent client loops (default 4)
 *   --converge S      seconds given to anti-entropy before the final check (default 75)
 *   --dir DIR         scratch directory (default /tmp/chaos-SEED; removed unless --keep)
 *   --block-size B    block_size of the nodes (default "64K")
 *   --no-kill         the same workload without faults (a baseline)
 *   --freeze-only     freezes (SIGSTOP, then SIGCONT) as the only faults
 *   --tombstone-gc S  REMISE_TEST_TOMBSTONE_GC_MS for the nodes (test-only setting): deletion
 *                     records are collected after S seconds instead of a day, so that a run
 *                     exercises their collection
 *   --cas-workers N   client loops of conditional writes to shared keys (default 3)
 *   --disk-full       each node's directory is a tmpfs of its own (needs root), and a fault
 *                     more: a node's disk filled, to the last byte or under its
 *                     min_free_space, for 5-25 s, sometimes with a restart while full
 *   --split-disks     with --disk-full, a tmpfs for each node's metadata_dir (512 MiB) and
 *                     one for its data_dir: a fill takes one of the two
 *   --disk-size MIB   size of each node's tmpfs with --disk-full (default 1536: deleted
 *                     blocks are removed ten minutes later, and a run writes ~600 MiB a node)
 *   --clock-skew      each start of a node sets its clock off by a new amount, up to 10 min
 *                     ahead or behind (REMISE_TEST_CLOCK_OFFSET_MS, test-only): a home
 *                     server whose clock is wrong until NTP corrects it at its next boot
 *   --bit-rot         a fault more: 1-4 block files of a node damaged (a bit flipped, cut short
 *                     or removed), half of the time with another node killed for seconds;
 *                     at the end, every node scrubs and fetches missing blocks, and every
 *                     block file must match its hash, every live block be on every node
 *   --disk-loss       a fault more: a node's disks lost (it is killed, its metadata_dir and
 *                     data_dir emptied, and it starts again with its certificate, as README
 *                     tells to rebuild a node from the others), half of the time just after
 *                     another node was frozen for seconds (it missed writes); once the cluster
 *                     is whole (every node synced since the last loss: waited for up to 3
 *                     min, without faults)
 *   --replace         a node lost for good (its site gone) and replaced by a new node in its
 *                     zone, as README tells: once 25% of the run is over, and again at 60%,
 *                     each once the cluster is whole; the end checks that every node applies
 *                     only the last layout version (the older ones retired)
 *   --keep            keep DIR (configs, data, node logs, ops.jsonl) after the run
 *
 * Client loops write through random nodes (maxAttempts 1, so that each
 * answer is one request's): PutObject (inline, multi-block), overwrites,
 * DeleteObject, multipart uploads (parts through different nodes, completion
 * through another), CopyObject, and, in a bucket with versioning enabled,
 * versioned puts (empty ones among them), delete markers and deletions by
 * version id. Every key is written by one loop only, so each key's history
 * is sequential: after an acknowledged (2xx) write the key's state is
 * known; a write that failed with a 5xx or a dropped connection is ambiguous
 * (either state may be the outcome); a 4xx, or a connection refused by a
 * node that was down from the request's start to its end, changed nothing
 * (the HTTP client sends a request again on a new connection when its pooled
 * one is reset, and then reports that one's refusal: the first may have
 * arrived). An outcome that README documents (a completion that reached one
 * replica, then aborted, leaves the key absent) is counted apart, not as an
 * anomaly.
 *
 * Two more loops (--cas-workers) share three keys: each reads a key, then
 * writes it on condition that it is still what was read (a PutObject with
 * If-None-Match: * when it was absent, else a PutObject, a one-part
 * CompleteMultipartUpload or a DeleteObject with If-Match). The history of
 * those writes and reads must show that the writers took turns
 * (conditional_chains.ts): no two acknowledged writes replaced one object, no
 * read returned what an acknowledged write had replaced, and the end state is
 * the last write.
 *
 * Meanwhile a node is SIGKILLed every 5-15 s and restarted with the same
 * configuration and directories: one at random; the one serving a large
 * upload; one right after a CompleteMultipartUpload reached it; two at once
 * (half of the time the two a write in flight on the third goes to); one,
 * then a second while a write is in flight on it (the write may reach the
 * third node alone); or one again just after its restart. Or a node is
 * frozen (SIGSTOP) for 1.5-12 s, mostly while a write, often a conditional
 * one, is in flight on it, then goes on (SIGCONT). With --disk-full, a
 * node's disk is also filled for seconds, to the last byte or under its
 * reserve, sometimes with the node restarted while full. With --clock-skew,
 * each start of a node sets its clock off by up to 10 min. With --bit-rot,
 * some of a node's block files are damaged, and the end checks that
 * scrubbing and resync made every node's blocks whole again. With
 * --disk-loss, a node's disks are lost and it is rebuilt from the others;
 * with --replace, a node is lost for good and a new one takes its place
 * through a layout change, while the faults go on. Both wait until the
 * cluster is whole again after the last loss. Client loops
 * follow a write that failed ambiguously as clients do: sometimes sending it
 * again, deleting the key, or aborting the upload (as lib-storage does).
 *
 * Then every node is up again, and the acknowledged state is checked
 * through every node twice (at once, then after --converge seconds): GET and
 * HEAD of every key, ranged GETs, ListObjectsV2, ListObjectVersions (every
 * acknowledged version id with its content), ListMultipartUploads, that the
 * nodes agree, the nodes' logs, block errors and disk usage. Once they are
 * stopped, each node's metadata is read (metadata_check.ts): a complete
 * version whose data is missing, or a Merkle leaf that does not match its
 * entries, is an anomaly; live data named by nothing is told.
 *
 * Exits 1 when an anomaly was found; ops.jsonl in DIR lists every request.
 */
import { checkMetadata, describeReport, type MetadataReport } from "./metadata_check.ts";
import { blockFiles, checkBlockFiles, type Damage, damageBlock } from "./block_rot.ts";
import {
  checkConditionalHistory,
  type ConditionalRead,
  type ConditionalWrite,
} from "./conditional_chains.ts";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { V8_FLAGS_OPTION } from "../../lib/util/v8_flags.ts";

// --- Options ---

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const flag = (name: string) => Deno.args.includes(`--${name}`);

const SEED = Number(option("seed") ?? Math.floor(Math.random() * 1e9));
const DURATION_MS = Number(option("duration") ?? "180") * 1000;
const WORKERS = Number(option("workers") ?? "4");
const CONVERGE_MS = Number(option("converge") ?? "75") * 1000;
const DIR = option("dir") ?? `/tmp/chaos-${SEED}`;
const BLOCK_SIZE = option("block-size") ?? "64K";
const NO_KILL = flag("no-kill");
const FREEZE_ONLY = flag("freeze-only");
const TOMBSTONE_GC_MS = Number(option("tombstone-gc") ?? "0") * 1000;
const KEEP = flag("keep");
const CLOCK_SKEW = flag("clock-skew");
const BIT_ROT = flag("bit-rot");
const DISK_LOSS = flag("disk-loss");
const REPLACE = flag("replace");
/**
 * A node's clock offsets with --clock-skew, in ms. Within 15 min, since a node
 * refuses a signature dated further from its clock (RequestTimeTooSkewed).
 */
const CLOCK_OFFSETS_MS = [
  0,
  0,
  1_500,
  -1_500,
  40_000,
  -40_000,
  6 * 60_000,
  -6 * 60_000,
  -10 * 60_000,
];
const CAS_WORKERS = Number(option("cas-workers") ?? "3");
const SPLIT_DISKS = flag("split-disks");
const DISK_FULL = flag("disk-full") || SPLIT_DISKS;
/** The metadata disk's size with --split-disks: room for the reserve, the ballast and ~100 MiB. */
const META_DISK_MIB = 512;
const DISK_MIB = Number(option("disk-size") ?? "1536");
const NODES = 3;
const KEYS_PER_WORKER = 12;
const VKEYS_PER_WORKER = 4;
const PLAIN = "chaos-plain";
const VERSIONED = "chaos-versioned";
const CAS = "chaos-cas";
const CAS_KEYS = ["c0", "c1", "c2/shared é"];
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const REGION = "us-east-1";
const ADMIN_TOKEN = "chaos-admin-token-0123456789";
const REQUEST_TIMEOUT_MS = 90_000;

// --- Randomness and contents ---

/** mulberry32: the run's choices, from --seed. */
let rngState = SEED >>> 0;
function rand(): number {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A piece of content: `size` bytes generated from `seed` (xorshift32). */
interface Segment {
  seed: number;
  size: number;
}
/** An object's content, as the pieces it was written from. */
type Desc = Segment[];

function segmentBytes(s: Segment): Uint8Array {
  const words = new Uint32Array(Math.ceil(s.size / 4));
  let x = (Math.imul(s.seed + 1, 0x9e3779b1) ^ 0x85ebca6b) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer, 0, s.size);
}

function descBytes(desc: Desc): Uint8Array {
  if (desc.length === 1) return segmentBytes(desc[0]);
  const out = new Uint8Array(descSize(desc));
  let off = 0;
  for (const s of desc) {
    out.set(segmentBytes(s), off);
    off += s.size;
  }
  return out;
}
const descSize = (desc: Desc) => desc.reduce((n, s) => n + s.size, 0);
const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("hex");
const newSegment = (size: number): Segment => ({ seed: randInt(0, 2 ** 31), size });
const unquote = (etag: string | undefined) => (etag ?? "").replace(/^"|"$/g, "");

// --- Nodes ---

interface Node {
  i: number;
  dir: string;
  config: string;
  log: string;
  apiPort: number;
  adminPort: number;
  rpcPort: number;
  proc?: Deno.ChildProcess;
  up: boolean;
  /** When it last started (Date.now()). */
  startedMs: number;
  kills: number;
  starts: number;
  /** Mount points of its tmpfs disks (--disk-full). */
  disks: string[];
  /** How far its clock is off, in ms (--clock-skew): drawn again at each start. */
  clockOffsetMs: number;
}

let nextPort = 20000 + Math.floor(Math.random() * 10000);
function freePort(): number {
  for (;;) {
    const port = nextPort++;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // in use
    }
  }
}

/** Runs a program to its end: its output, or an error with what it said. */
async function runTool(
  name: string,
  args: string[],
  label = `${name} ${args.join(" ")}`,
): Promise<string> {
  const out = await new Deno.Command(name, {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`${label}: ${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}
const run = (args: string[]) =>
  runTool(DENO, ["run", "--unstable-kv", "-A", MAIN, ...args], `remise ${args.join(" ")}`);
const cli = (node: Node, args: string[]) => run(["-c", node.config, ...args]);

async function startNode(node: Node): Promise<void> {
  node.starts++;
  if (CLOCK_SKEW) {
    node.clockOffsetMs = pick(CLOCK_OFFSETS_MS);
    event(`node ${node.i} starts with its clock ${node.clockOffsetMs / 1000} s off`);
  }
  await Deno.writeTextFile(node.log, `\n=== chaos: start ${node.starts} at ${iso()} ===\n`, {
    append: true,
  });
  // exec: the process killed is remise's own, not a shell in front of it.
  node.proc = new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$0" "$@" >>"$CHAOS_LOG" 2>&1',
      DENO,
      "run",
      "--unstable-kv",
      "-A",
      V8_FLAGS_OPTION,
      MAIN,
      "server",
      "-c",
      node.config,
    ],
    env: {
      CHAOS_LOG: node.log,
      REMISE_LOG: "info",
      NO_COLOR: "1",
      ...(TOMBSTONE_GC_MS > 0 ? { REMISE_TEST_TOMBSTONE_GC_MS: String(TOMBSTONE_GC_MS) } : {}),
      ...(node.clockOffsetMs !== 0
        ? { REMISE_TEST_CLOCK_OFFSET_MS: String(node.clockOffsetMs) }
        : {}),
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  pids.add(node.proc.pid);
  const proc = node.proc;
  let exited = false;
  proc.status.then(() => {
    exited = true;
    pids.delete(proc.pid);
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited) {
    try {
      const res = await fetch(`http://127.0.0.1:${node.adminPort}/health`);
      await res.body?.cancel();
      if (res.ok) {
        node.up = true;
        node.startedMs = Date.now();
        return;
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  // Not left as the node's process: a later restart starts a new one.
  if (!exited) proc.kill("SIGKILL");
  await proc.status;
  node.proc = undefined;
  throw new Error(`node ${node.i} did not start (exited: ${exited}); see ${node.log}`);
}

async function killNode(node: Node, why: string): Promise<void> {
  if (!node.proc) return;
  node.up = false;
  node.kills++;
  const inflight = [...inflightRequests.values()].filter((r) => r.node === node.i).map((r) => r.op);
  event(`SIGKILL node ${node.i} (${why}); in flight on it: ${inflight.join(",") || "none"}`);
  try {
    node.proc.kill("SIGKILL");
  } catch {
    // gone already
  }
  await node.proc.status;
  node.proc = undefined;
}

const pids = new Set<number>();
const t0 = Date.now();
const iso = () => new Date().toISOString();
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
const events: string[] = [];
function event(text: string) {
  const line = `[${elapsed()}s] ${text}`;
  events.push(line);
  console.log(line);
}

// --- Anomalies and the operations log ---

const anomalies: string[] = [];
function anomaly(text: string) {
  anomalies.push(`[${elapsed()}s] ${text}`);
  console.log(`[${elapsed()}s] ANOMALY: ${text}`);
}

let opsFile: Deno.FsFile;
const encoder = new TextEncoder();
function record(entry: Record<string, unknown>) {
  opsFile.writeSync(encoder.encode(JSON.stringify({ t: Date.now() - t0, ...entry }) + "\n"));
}

type Outcome = "ok" | "rejected" | "refused" | "ambiguous";
const counts: Record<string, Record<Outcome, number>> = {};
const failureCodes = new Map<string, number>();
/** Outcomes README documents that the run met (key: what), by reads. */
const documentedOutcomes = new Map<string, number>();
function noteDocumented(what: string) {
  documentedOutcomes.set(what, (documentedOutcomes.get(what) ?? 0) + 1);
}
function count(op: string, outcome: Outcome) {
  counts[op] ??= { ok: 0, rejected: 0, refused: 0, ambiguous: 0 };
  counts[op][outcome]++;
}

interface Failure {
  outcome: Exclude<Outcome, "ok">;
  status?: number;
  code: string;
}

/** What a failed request tells of its effect. */
function classify(e: unknown): Failure {
  const err = e as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: { code?: string; message?: string };
  };
  const status = err?.$metadata?.httpStatusCode;
  const text =
    `${err?.name} ${err?.code} ${err?.message} ${err?.cause?.code} ${err?.cause?.message}`;
  if (status !== undefined && status >= 400 && status < 500) {
    return { outcome: "rejected", status, code: err.name ?? "?" };
  }
  if (status !== undefined && status >= 500) {
    return { outcome: "ambiguous", status, code: err.name ?? "?" };
  }
  if (/ECONNREFUSED|Connection refused|os error 111/i.test(text)) {
    return { outcome: "refused", code: "ECONNREFUSED" };
  }
  return { outcome: "ambiguous", code: (err?.code ?? err?.name ?? String(e)).slice(0, 60) };
}

// --- Clients ---

const inflightRequests = new Map<number, { node: number; op: string; bytes: number }>();
let requestSeq = 0;
/** Set by the chaos loop: the next request `op` sent fires `fire` with its node. */
let armed: { op: string; fire: (node: number) => void } | undefined;

let clients: S3Client[] = [];
let nodes: Node[] = [];
/** Each node's id, at its index in `nodes` (a replacement takes its predecessor's index). */
const nodeIds: string[] = [];
/** Nodes lost for good and replaced (--replace): stopped, their directories kept. */
const formerNodes: Node[] = [];
let layoutVersion = 1;

async function send<T>(
  node: number,
  op: string,
  // deno-lint-ignore no-explicit-any
  command: any,
  bytes = 0,
): Promise<T> {
  const id = ++requestSeq;
  inflightRequests.set(id, { node, op, bytes });
  if (armed && armed.op === op) {
    const a = armed;
    armed = undefined;
    a.fire(node);
  }
  try {
    return await clients[node].send(command, {
      abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }) as T;
  } finally {
    inflightRequests.delete(id);
  }
}

/**
 * A node for a request: mostly one that is up (as a load balancer with
 * health checks would choose), sometimes any (a client that does not know).
 */
const randomNode = () => {
  const up = nodes.filter((n) => n.up).map((n) => n.i);
  return up.length && rand() < 0.7 ? pick(up) : randInt(0, NODES - 1);
};
const otherNode = (...not: number[]) => {
  const choices = [0, 1, 2].filter((n) => !not.includes(n));
  return pick(choices.length ? choices : [0, 1, 2]);
};

/** Sends and records one write; resolves with its result or its failure. */
async function attempt<T>(
  meta:
    & { worker: number; op: string; bucket: string; key: string; node: number }
    & Record<
      string,
      unknown
    >,
  // deno-lint-ignore no-explicit-any
  command: any,
  bytes = 0,
): Promise<{ ok: true; result: T } | { ok: false; failure: Failure }> {
  const start = Date.now() - t0;
  // A refused connection proves the request unsent only if the node was
  // down all along: the HTTP client sends a request again on a new
  // connection when its pooled one is reset (the node killed mid-request),
  // and then reports that connection's refusal.
  const startsOn = nodes[meta.node].starts;
  const downAtStart = !nodes[meta.node].proc;
  try {
    const result = await send<T>(meta.node, meta.op, command, bytes);
    const r = result as { ETag?: string; VersionId?: string; CopyObjectResult?: { ETag?: string } };
    record({
      ...meta,
      start,
      outcome: "ok",
      etag: unquote(r?.ETag ?? r?.CopyObjectResult?.ETag),
      versionId: r?.VersionId,
    });
    count(meta.op, "ok");
    return { ok: true, result };
  } catch (e) {
    const failure = classify(e);
    if (failure.outcome === "refused" && (!downAtStart || nodes[meta.node].starts !== startsOn)) {
      failure.outcome = "ambiguous";
    }
    record({
      ...meta,
      start,
      outcome: failure.outcome,
      status: failure.status,
      code: failure.code,
      // The S3 error's message tells why (a quorum not reached names each replica's cause).
      message: (e as Error)?.message?.slice(0, 400),
    });
    count(meta.op, failure.outcome);
    const code = `${failure.outcome} ${failure.status ?? ""} ${failure.code}`;
    failureCodes.set(code, (failureCodes.get(code) ?? 0) + 1);
    if (failure.status === 500) {
      anomaly(
        `500 on ${meta.op} ${meta.bucket}/${meta.key} via node ${meta.node}: ${failure.code}`,
      );
    }
    return { ok: false, failure };
  }
}

// --- The model of what the store holds ---

interface Present {
  kind: "present";
  desc: Desc;
  md5: string;
  size: number;
  /** The ETag the write's answer gave (undefined when the write was ambiguous). */
  etag?: string;
  /** Of the state: "put", "copy", "mpu". */
  how: string;
}
interface Absent {
  kind: "absent";
  /** An outcome README documents, counted apart when seen (not an anomaly). */
  documented?: string;
}
type State = Present | Absent;

interface PlainKey {
  key: string;
  /** The states the key may be in: the last acknowledged one, and those of ambiguous writes since. */
  candidates: State[];
}

interface VVersion {
  id: string;
  kind: "object" | "marker";
  desc?: Desc;
  md5?: string;
  size?: number;
  etag?: string;
}
interface VersionedKey {
  key: string;
  /** Acknowledged versions still there (not deleted by id). */
  versions: Map<string, VVersion>;
  /** Versions whose deletion by id was acknowledged. */
  deleted: Set<string>;
  /** Versions whose deletion by id was ambiguous. */
  maybeDeleted: Set<string>;
  /** Ambiguous versioned writes: their contents (an unknown version may have them). */
  ambiguousObjects: Present[];
  ambiguousMarkers: number;
  /** The version that must be current, when no ambiguous change followed it. */
  latest?: string | null;
}

interface Upload {
  bucket: string;
  key: string;
  uploadId: string;
  status: "open" | "completed" | "aborted" | "maybe-completed" | "maybe-aborted";
}

const plainKeys: PlainKey[][] = [];
const versionedKeys: VersionedKey[][] = [];
const uploads = new Map<string, Upload>();
let stopWorkers = false;

function presentOf(desc: Desc, how: string, etag?: string): Present {
  return { kind: "present", desc, md5: md5(descBytes(desc)), size: descSize(desc), etag, how };
}

/** Applies a write's outcome to the key's candidates. */
function settle(k: PlainKey, next: State, ok: boolean, failure?: Failure) {
  if (ok) k.candidates = [next];
  else if (failure?.outcome === "ambiguous") k.candidates.push(next);
}

function describe(s: State): string {
  return s.kind === "absent" ? "absent" : `${s.how} ${s.size}B md5=${s.md5} etag=${s.etag ?? "?"}`;
}

// --- Workload ---

async function plainPut(w: number, k: PlainKey, again?: { desc: Desc; not: number }) {
  const r = rand();
  const size = again
    ? descSize(again.desc)
    : r < 0.4
    ? randInt(0, 8192)
    : r < 0.85
    ? randInt(8193, 700_000)
    : randInt(1, 3) * 1024 * 1024 + randInt(0, 100_000);
  const desc = again?.desc ?? [newSegment(size)];
  const body = descBytes(desc);
  const node = again ? otherNode(again.not) : randomNode();
  const res = await attempt<{ ETag?: string }>(
    {
      worker: w,
      op: again ? "put-again" : "put",
      bucket: PLAIN,
      key: k.key,
      node,
      size,
      md5: md5(body),
    },
    new PutObjectCommand({ Bucket: PLAIN, Key: k.key, Body: body }),
    size,
  );
  const state = presentOf(desc, "put", res.ok ? unquote(res.result.ETag) : undefined);
  if (res.ok && state.etag !== state.md5) {
    anomaly(`put ${k.key}: ETag ${state.etag} is not the MD5 ${state.md5}`);
  }
  settle(k, state, res.ok, res.ok ? undefined : res.failure);
  // What a client does after a write that failed: often nothing, else it
  // sends it again, or deletes the key (cleaning up), through another node.
  if (!res.ok && res.failure.outcome === "ambiguous" && !again) {
    const next = rand();
    if (next < 0.6) await sleep(randInt(0, 1500));
    if (next < 0.3) await plainDelete(w, k, node);
    else if (next < 0.6) await plainPut(w, k, { desc, not: node });
  }
}

async function plainDelete(w: number, k: PlainKey, not?: number) {
  const node = not === undefined ? randomNode() : otherNode(not);
  const res = await attempt(
    {
      worker: w,
      op: not === undefined ? "delete" : "delete-after",
      bucket: PLAIN,
      key: k.key,
      node,
    },
    new DeleteObjectCommand({ Bucket: PLAIN, Key: k.key }),
  );
  settle(k, { kind: "absent" }, res.ok, res.ok ? undefined : res.failure);
}

async function plainCopy(w: number, keys: PlainKey[]) {
  const sources = keys.filter((k) =>
    k.candidates.length === 1 && k.candidates[0].kind === "present"
  );
  if (sources.length === 0) return;
  const src = pick(sources);
  const dst = pick(keys.filter((k) => k !== src));
  const s = src.candidates[0] as Present;
  const node = randomNode();
  const res = await attempt<{ CopyObjectResult?: { ETag?: string } }>(
    { worker: w, op: "copy", bucket: PLAIN, key: dst.key, node, source: src.key, md5: s.md5 },
    new CopyObjectCommand({
      Bucket: PLAIN,
      Key: dst.key,
      CopySource: `${PLAIN}/${encodeURIComponent(src.key)}`,
    }),
  );
  const etag = res.ok ? unquote(res.result.CopyObjectResult?.ETag) : undefined;
  settle(
    dst,
    { kind: "present", desc: s.desc, md5: s.md5, size: s.size, etag, how: "copy" },
    res.ok,
    res.ok ? undefined : res.failure,
  );
}

async function plainGet(w: number, k: PlainKey) {
  const node = randomNode();
  const start = Date.now() - t0;
  const seen = await readState(node, PLAIN, k.key).catch((e) => ({ error: classify(e) }));
  if ("error" in seen) {
    record({ worker: w, op: "get", bucket: PLAIN, key: k.key, node, start, ...seen.error });
    count("get", seen.error.outcome);
    return;
  }
  record({ worker: w, op: "get", bucket: PLAIN, key: k.key, node, start, outcome: "ok", seen });
  count("get", "ok");
  if (!matchesSome(seen, k.candidates)) {
    anomaly(
      `GET ${PLAIN}/${k.key} via node ${node} during chaos read ${
        seenText(seen)
      }; expected one of: ${k.candidates.map(describe).join(" | ")}`,
    );
  }
}

/**
 * A multipart upload: created through one node, its parts through others
 * (a part that fails is sent again through another node), completed through
 * a node other than the last part's. Returns the outcome of the completion.
 */
async function multipart(
  w: number,
  bucket: string,
  key: string,
): Promise<
  { ok: true; state: Present; versionId?: string } | {
    ok: false;
    state?: Present;
    ambiguous: boolean;
    /** An ambiguous completion followed by an acknowledged abort. */
    abortedAfter?: boolean;
  }
> {
  const createNode = randomNode();
  const created = await attempt<{ UploadId?: string }>(
    { worker: w, op: "mpu-create", bucket, key, node: createNode },
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
  );
  if (!created.ok) return { ok: false, ambiguous: false }; // an upload nobody completes changes no key
  const uploadId = created.result.UploadId!;
  const upload: Upload = { bucket, key, uploadId, status: "open" };
  uploads.set(uploadId, upload);
  const sizes = rand() < 0.15
    ? [5 * 1024 * 1024, 5 * 1024 * 1024 + randInt(0, 70_000), randInt(1, 300_000)]
    : [5 * 1024 * 1024 + randInt(0, 200_000), randInt(1, 700_000)];
  const segments: Segment[] = [];
  const etags: string[] = [];
  let lastNode = createNode;
  for (const [p, size] of sizes.entries()) {
    // Sometimes a part is sent twice (the second replaces the first).
    const times = rand() < 0.15 ? 2 : 1;
    for (let t = 0; t < times; t++) {
      const segment = newSegment(size);
      const body = segmentBytes(segment);
      let done = false;
      for (let tries = 0; tries < 6 && !done; tries++) {
        const node = otherNode(lastNode);
        const res = await attempt<{ ETag?: string }>(
          { worker: w, op: "mpu-part", bucket, key, node, uploadId, part: p + 1, size },
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: p + 1,
            Body: body,
          }),
          size,
        );
        lastNode = node;
        if (res.ok) {
          done = true;
          segments[p] = segment;
          etags[p] = unquote(res.result.ETag);
          if (etags[p] !== md5(body)) anomaly(`part ${p + 1} of ${key}: ETag is not its MD5`);
        } else if (res.failure.code === "NoSuchUpload") {
          anomaly(`UploadPart ${p + 1} of ${bucket}/${key} ${uploadId}: NoSuchUpload`);
          break;
        } else {
          await sleep(500 + 500 * tries);
        }
      }
      if (!done) {
        await abortUpload(w, upload);
        return { ok: false, ambiguous: false };
      }
    }
  }
  const state = presentOf(segments, "mpu");
  const completeBody = {
    Bucket: bucket,
    Key: key,
    UploadId: uploadId,
    MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
  };
  // A completion refused (its node down) goes to another node. One that
  // fails ambiguously is sent again (through another node) half of the
  // time, as a client with retries would: S3 answers a completion sent again
  // as the first, so a 4xx then is an anomaly too.
  let node = otherNode(lastNode);
  let ambiguous = false;
  for (let tries = 0; tries < 8; tries++) {
    const res = await attempt<{ ETag?: string; VersionId?: string }>(
      { worker: w, op: "mpu-complete", bucket, key, node, uploadId, md5: state.md5, retry: tries },
      new CompleteMultipartUploadCommand(completeBody),
    );
    if (res.ok) {
      upload.status = "completed";
      state.etag = unquote(res.result.ETag);
      return { ok: true, state, versionId: res.result.VersionId };
    }
    if (res.failure.outcome === "refused") {
      node = otherNode(node);
      await sleep(300);
      continue;
    }
    if (res.failure.outcome === "rejected") {
      anomaly(
        `CompleteMultipartUpload ${bucket}/${key} ${uploadId} via node ${node}${
          ambiguous ? " (sent again after an ambiguous try)" : ""
        }: ${res.failure.code} ${res.failure.status}`,
      );
      break;
    }
    ambiguous = true;
    upload.status = "maybe-completed";
    if (tries > 0 || rand() < 0.5) break;
    await sleep(1000);
    node = otherNode(node);
  }
  if (ambiguous) {
    // As lib-storage's Upload does when a completion fails: abort the upload.
    if (rand() < 0.5) {
      await abortUpload(w, upload);
      return { ok: false, state, ambiguous: true, abortedAfter: upload.status === "aborted" };
    }
    return { ok: false, state, ambiguous: true };
  }
  await abortUpload(w, upload);
  return { ok: false, ambiguous: false };
}

async function abortUpload(w: number, upload: Upload) {
  for (let tries = 0; tries < 4; tries++) {
    const res = await attempt(
      {
        worker: w,
        op: "mpu-abort",
        bucket: upload.bucket,
        key: upload.key,
        node: randomNode(),
        uploadId: upload.uploadId,
      },
      new AbortMultipartUploadCommand({
        Bucket: upload.bucket,
        Key: upload.key,
        UploadId: upload.uploadId,
      }),
    );
    if (res.ok) {
      upload.status = "aborted";
      return;
    }
    if (res.failure.outcome === "ambiguous") upload.status = "maybe-aborted";
    await sleep(500);
  }
}

async function plainMultipart(w: number, k: PlainKey) {
  const res = await multipart(w, PLAIN, k.key);
  if (res.ok) k.candidates = [res.state];
  else if (res.ambiguous && res.state) {
    k.candidates.push(res.state);
    // README (Design, Object versions): a completion that reached one replica,
    // then aborted, ends deleted, replacing the key's older object as the
    // completion did: the key may end absent.
    if (res.abortedAfter) {
      k.candidates.push({ kind: "absent", documented: "completion on a minority, then aborted" });
    }
  }
}

// Versioned bucket

function noteVersionedWrite(
  k: VersionedKey,
  ok: boolean,
  failure: Failure | undefined,
  v?: VVersion,
) {
  if (ok && v) {
    k.versions.set(v.id, v);
    k.latest = v.id;
  } else if (failure?.outcome === "ambiguous") {
    k.latest = undefined;
  }
}

async function versionedPut(w: number, k: VersionedKey, again = false) {
  // Empty objects (folder markers) are a part of 0 bytes without blocks in a versioned key.
  const r = rand();
  const size = r < 0.05 ? 0 : r < 0.5 ? randInt(1, 8192) : randInt(8193, 400_000);
  const desc = [newSegment(size)];
  const body = descBytes(desc);
  const node = randomNode();
  const res = await attempt<{ ETag?: string; VersionId?: string }>(
    {
      worker: w,
      op: again ? "vput-again" : "vput",
      bucket: VERSIONED,
      key: k.key,
      node,
      size,
      md5: md5(body),
    },
    new PutObjectCommand({ Bucket: VERSIONED, Key: k.key, Body: body }),
    size,
  );
  const state = presentOf(desc, "vput", res.ok ? unquote(res.result.ETag) : undefined);
  if (res.ok) {
    if (!res.result.VersionId || res.result.VersionId === "null") {
      anomaly(`versioned put ${k.key} via node ${node}: version id ${res.result.VersionId}`);
      return;
    }
    noteVersionedWrite(k, true, undefined, {
      id: res.result.VersionId,
      kind: "object",
      desc,
      md5: state.md5,
      size,
      etag: state.etag,
    });
  } else {
    if (res.failure.outcome === "ambiguous") k.ambiguousObjects.push(state);
    noteVersionedWrite(k, false, res.failure);
    if (res.failure.outcome === "ambiguous" && !again) {
      const next = rand();
      if (next < 0.3) await versionedDeleteMarker(w, k);
      else if (next < 0.6) await versionedPut(w, k, true);
    }
  }
}

async function versionedMultipart(w: number, k: VersionedKey) {
  const res = await multipart(w, VERSIONED, k.key);
  if (res.ok) {
    if (!res.versionId) {
      anomaly(`versioned multipart ${k.key}: no version id`);
      return;
    }
    noteVersionedWrite(k, true, undefined, {
      id: res.versionId,
      kind: "object",
      desc: res.state.desc,
      md5: res.state.md5,
      size: res.state.size,
      etag: res.state.etag,
    });
  } else if (res.ambiguous && res.state) {
    k.ambiguousObjects.push(res.state);
    k.latest = undefined;
  }
}

async function versionedCopy(w: number, keys: VersionedKey[]) {
  const sources = keys.flatMap((k) =>
    [...k.versions.values()].filter((v) => v.kind === "object").map((v) => ({ k, v }))
  );
  if (sources.length === 0) return;
  const { k: src, v } = pick(sources);
  const dst = pick(keys.filter((k) => k !== src));
  const node = randomNode();
  const res = await attempt<{ CopyObjectResult?: { ETag?: string }; VersionId?: string }>(
    {
      worker: w,
      op: "vcopy",
      bucket: VERSIONED,
      key: dst.key,
      node,
      source: `${src.key}?versionId=${v.id}`,
      md5: v.md5,
    },
    new CopyObjectCommand({
      Bucket: VERSIONED,
      Key: dst.key,
      CopySource: `${VERSIONED}/${encodeURIComponent(src.key)}?versionId=${v.id}`,
    }),
  );
  if (res.ok) {
    noteVersionedWrite(dst, true, undefined, {
      ...v,
      id: res.result.VersionId ?? "?",
      etag: unquote(res.result.CopyObjectResult?.ETag),
    });
  } else {
    if (res.failure.outcome === "ambiguous") {
      dst.ambiguousObjects.push({
        kind: "present",
        desc: v.desc!,
        md5: v.md5!,
        size: v.size!,
        how: "vcopy",
      });
    }
    noteVersionedWrite(dst, false, res.failure);
  }
}

async function versionedDeleteMarker(w: number, k: VersionedKey) {
  const node = randomNode();
  const res = await attempt<{ VersionId?: string; DeleteMarker?: boolean }>(
    { worker: w, op: "vdelete", bucket: VERSIONED, key: k.key, node },
    new DeleteObjectCommand({ Bucket: VERSIONED, Key: k.key }),
  );
  if (res.ok) {
    if (!res.result.VersionId || !res.result.DeleteMarker) {
      anomaly(`vdelete ${k.key}: answer without a delete marker ${JSON.stringify(res.result)}`);
      k.latest = undefined;
      return;
    }
    noteVersionedWrite(k, true, undefined, { id: res.result.VersionId, kind: "marker" });
  } else {
    if (res.failure.outcome === "ambiguous") k.ambiguousMarkers++;
    noteVersionedWrite(k, false, res.failure);
  }
}

async function versionedDeleteById(w: number, k: VersionedKey) {
  const ids = [...k.versions.keys()];
  if (ids.length === 0) return;
  const id = pick(ids);
  const node = randomNode();
  const res = await attempt(
    { worker: w, op: "vdelete-id", bucket: VERSIONED, key: k.key, node, versionId: id },
    new DeleteObjectCommand({ Bucket: VERSIONED, Key: k.key, VersionId: id }),
  );
  if (res.ok) {
    k.versions.delete(id);
    k.deleted.add(id);
    k.maybeDeleted.delete(id);
    if (k.latest === id) k.latest = undefined; // the one before becomes current: not tracked
  } else if (res.failure.outcome === "ambiguous") {
    k.maybeDeleted.add(id);
    if (k.latest === id) k.latest = undefined;
  }
}

async function versionedGet(w: number, k: VersionedKey) {
  const live = [...k.versions.values()].filter((v) => v.kind === "object");
  if (live.length === 0) return;
  const v = pick(live);
  const node = randomNode();
  const start = Date.now() - t0;
  try {
    const res = await send<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }>(
      node,
      "vget",
      new GetObjectCommand({ Bucket: VERSIONED, Key: k.key, VersionId: v.id }),
    );
    const got = md5(await res.Body!.transformToByteArray());
    record({ worker: w, op: "vget", key: k.key, node, start, versionId: v.id, outcome: "ok", got });
    count("vget", "ok");
    if (got !== v.md5) {
      anomaly(
        `GET ${VERSIONED}/${k.key}?versionId=${v.id} via node ${node}: md5 ${got}, not ${v.md5}`,
      );
    }
  } catch (e) {
    const f = classify(e);
    record({ worker: w, op: "vget", key: k.key, node, start, versionId: v.id, ...f });
    count("vget", f.outcome);
    if (f.status === 404 && !k.maybeDeleted.has(v.id)) {
      anomaly(
        `GET ${VERSIONED}/${k.key}?versionId=${v.id} via node ${node} during chaos: ${f.code}`,
      );
    }
  }
}

// Conditional writes of shared keys

const casWrites: ConditionalWrite[] = [];
const casReads: ConditionalRead[] = [];
/** The MD5 of the bytes each ETag a conditional write sent names. */
const casBodies = new Map<string, string>();
const decoder = new TextDecoder();

/** A body no other write sends: a counter, its writer, and sometimes blocks of padding. */
function casBody(n: number, w: number): Uint8Array {
  const head = encoder.encode(`${n} w${w} ${crypto.randomUUID()}\n`);
  const padding = rand() < 0.25
    ? segmentBytes(newSegment(randInt(70_000, 300_000)))
    : new Uint8Array(0);
  const body = new Uint8Array(head.length + padding.length);
  body.set(head);
  body.set(padding, head.length);
  return body;
}

/** The ETag S3 gives an object completed from one part of these bytes. */
function oneMultipartEtag(body: Uint8Array): string {
  return `${createHash("md5").update(createHash("md5").update(body).digest()).digest("hex")}-1`;
}

type CasWrite = Pick<ConditionalWrite, "key" | "kind" | "base" | "writes"> & { node: number };

/** Sends one conditional write, records it in the history, and tells its outcome. */
async function casSend(
  w: number,
  write: CasWrite,
  // deno-lint-ignore no-explicit-any
  command: any,
  bytes = 0,
): Promise<ConditionalWrite["outcome"]> {
  const start = Date.now() - t0;
  const { node, ...rest } = write;
  const res = await attempt<{ ETag?: string }>(
    { worker: w, op: `cas-${write.kind}`, bucket: CAS, ...rest, node },
    command,
    bytes,
  );
  const outcome = res.ok ? "ok" : res.failure.outcome === "ambiguous" ? "ambiguous" : "rejected";
  casWrites.push({ ...rest, outcome, start, end: Date.now() - t0, label: `w${w} via ${node}` });
  if (res.ok && write.writes !== undefined && unquote(res.result.ETag) !== write.writes) {
    anomaly(`${write.kind} ${CAS}/${write.key}: ETag ${res.result.ETag}, not ${write.writes}`);
  }
  // A condition not met is 412, or 404 for If-Match on a key deleted meanwhile.
  if (!res.ok && res.failure.outcome === "rejected" && res.failure.status !== undefined) {
    const { status, code } = res.failure;
    if (status !== 404 && status !== 412) {
      anomaly(`${write.kind} ${CAS}/${write.key} via node ${node}: ${status} ${code}`);
    }
  }
  return outcome;
}

/**
 * A conditional completion of a one-part upload. A completion that may have
 * reached a replica and is then aborted may end the key deleted (README,
 * Design, Object versions): noted as a deletion that may have landed.
 */
async function casMultipart(w: number, write: CasWrite, body: Uint8Array, condition: object) {
  const created = await attempt<{ UploadId?: string }>(
    { worker: w, op: "mpu-create", bucket: CAS, key: write.key, node: write.node },
    new CreateMultipartUploadCommand({ Bucket: CAS, Key: write.key }),
  );
  if (!created.ok) return;
  const upload: Upload = {
    bucket: CAS,
    key: write.key,
    uploadId: created.result.UploadId!,
    status: "open",
  };
  uploads.set(upload.uploadId, upload);
  const ids = { Bucket: CAS, Key: write.key, UploadId: upload.uploadId };
  const part = await attempt<{ ETag?: string }>(
    { worker: w, op: "mpu-part", bucket: CAS, key: write.key, node: randomNode(), part: 1 },
    new UploadPartCommand({ ...ids, PartNumber: 1, Body: body }),
    body.length,
  );
  if (part.ok) {
    const etag = oneMultipartEtag(body);
    casBodies.set(etag, md5(body));
    const outcome = await casSend(
      w,
      { ...write, writes: etag, node: randomNode() },
      new CompleteMultipartUploadCommand({
        ...ids,
        MultipartUpload: { Parts: [{ ETag: part.result.ETag, PartNumber: 1 }] },
        ...condition,
      }),
    );
    if (outcome === "ok") {
      upload.status = "completed";
      return;
    }
    if (outcome === "ambiguous") {
      upload.status = "maybe-completed";
      casWrites.push({
        key: write.key,
        kind: "delete",
        base: etag,
        outcome: "ambiguous",
        start: Date.now() - t0,
        end: Date.now() - t0,
        label: `w${w}: abort after an ambiguous completion`,
      });
    }
  }
  await abortUpload(w, upload);
}

/** Reads a shared key, then writes it on condition that it is still what was read. */
async function casRound(w: number) {
  const key = pick(CAS_KEYS);
  const node = randomNode();
  const start = Date.now() - t0;
  let current: { etag: string; n: number } | null;
  try {
    const res = await send<
      { Body?: { transformToByteArray(): Promise<Uint8Array> }; ETag?: string }
    >(
      node,
      "cas-get",
      new GetObjectCommand({ Bucket: CAS, Key: key }),
    );
    const body = await res.Body!.transformToByteArray();
    const head = decoder.decode(body.subarray(0, body.indexOf(10)));
    current = { etag: unquote(res.ETag), n: Number(head.split(" ")[0]) };
  } catch (e) {
    const f = classify(e);
    if (f.status !== 404) {
      record({ worker: w, op: "cas-get", bucket: CAS, key, node, start, ...f });
      count("cas-get", f.outcome);
      return;
    }
    current = null;
  }
  record({ worker: w, op: "cas-get", bucket: CAS, key, node, start, outcome: "ok", seen: current });
  count("cas-get", "ok");
  const end = Date.now() - t0;
  casReads.push({ key, seen: current?.etag ?? null, start, end, label: `w${w} via ${node}` });
  const writeNode = rand() < 0.5 ? node : randomNode();
  if (current !== null && rand() < 0.15) {
    await casSend(
      w,
      { key, kind: "delete", base: current.etag, node: writeNode },
      new DeleteObjectCommand({ Bucket: CAS, Key: key, IfMatch: `"${current.etag}"` }),
    );
    return;
  }
  const body = casBody((current?.n ?? 0) + 1, w);
  const write: CasWrite = {
    key,
    kind: current === null ? "create" : "put",
    base: current?.etag ?? null,
    node: writeNode,
  };
  const condition = current === null ? { IfNoneMatch: "*" } : { IfMatch: `"${current.etag}"` };
  if (rand() < 0.1) return await casMultipart(w, write, body, condition);
  const etag = md5(body);
  casBodies.set(etag, etag);
  await casSend(
    w,
    { ...write, writes: etag },
    new PutObjectCommand({ Bucket: CAS, Key: key, Body: body, ...condition }),
    body.length,
  );
}

async function casLoop(w: number) {
  while (!stopWorkers) {
    await casRound(w);
    await sleep(randInt(0, 60));
  }
}

async function workerLoop(w: number) {
  const keys = plainKeys[w];
  const vkeys = versionedKeys[w];
  while (!stopWorkers) {
    const r = rand() * 100;
    const k = pick(keys);
    const vk = pick(vkeys);
    if (r < 30) await plainPut(w, k);
    else if (r < 40) await plainDelete(w, k);
    else if (r < 47) await plainCopy(w, keys);
    else if (r < 52) await plainMultipart(w, k);
    else if (r < 64) await plainGet(w, k);
    else if (r < 77) await versionedPut(w, vk);
    else if (r < 82) await versionedDeleteMarker(w, vk);
    else if (r < 86) await versionedDeleteById(w, vk);
    else if (r < 93) await versionedGet(w, vk);
    else if (r < 95) await versionedMultipart(w, vk);
    else await versionedCopy(w, vkeys);
    // A node down refuses at once: a short pause keeps loops from spinning.
    await sleep(randInt(0, 60));
  }
}

// --- Chaos ---

const upNodes = () => nodes.filter((n) => n.up && n.proc);

async function restart(node: Node) {
  try {
    await startNode(node);
    event(`node ${node.i} back up`);
  } catch (e) {
    anomaly(`restart of node ${node.i} failed: ${(e as Error).message}`);
    // Try again once: a start refused is itself a finding, but the run goes on.
    await sleep(2000);
    await startNode(node);
  }
}

const chaosCounts: Record<string, number> = {};
const WRITES = new Set([
  "put",
  "put-again",
  "delete",
  "delete-after",
  "copy",
  "mpu-complete",
  "mpu-abort",
  "vput",
  "vput-again",
  "vdelete",
  "vdelete-id",
  "vcopy",
  "cas-create",
  "cas-put",
  "cas-delete",
]);
const CAS_WRITES = new Set(["cas-create", "cas-put", "cas-delete"]);

/** A node that is up with a request of `ops` in flight on it, waited for up to 10 s. */
async function nodeWriting(ops: Set<string>): Promise<number | undefined> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const writing = [...inflightRequests.values()].filter((q) => ops.has(q.op) && nodes[q.node].up);
    if (writing.length) return pick(writing).node;
    await sleep(5);
  }
  return undefined;
}

// --- Damaged blocks (--bit-rot) ---

/** Block files damaged during the run. */
let damagedBlockFiles = 0;

/**
 * Damages 1-4 block files of one node, as a failing disk would; half of the
 * time another node is then killed for 2-6 s, so that reads of those blocks
 * have one other replica to take a good copy from.
 */
async function bitRotFault() {
  const node = pick(nodes);
  const files = await blockFiles(`${node.dir}/data`);
  const done: string[] = [];
  for (let n = randInt(1, 4); n > 0 && files.length > 0; n--) {
    const [path] = files.splice(randInt(0, files.length - 1), 1);
    const how = pick<Damage>(["flip", "flip", "truncate", "delete"]);
    if (!(await damageBlock(path, how, rand))) continue;
    const hash = path.slice(path.lastIndexOf("/") + 1);
    done.push(`${how} ${hash.slice(0, 12)}`);
    damagedBlockFiles++;
  }
  chaosCounts.rot = (chaosCounts.rot ?? 0) + 1;
  event(`bit rot on node ${node.i}: ${done.join(", ") || "no block file to damage"}`);
  if (rand() < 0.5) {
    const other = pick(upNodes().filter((n) => n !== node));
    if (!other) return;
    await killNode(other, `after bit rot on node ${node.i}`);
    await sleep(randInt(2000, 6000));
    await restart(other);
  }
}

/**
 * Every node scrubs its blocks and fetches those it lacks (`remise repair
 * scrub`, `remise repair blocks`), as an operator would after a disk error;
 * resolves once each pass ended and each resync queue is empty, or after 10 min.
 */
async function repairBlocks() {
  type Worker = { name: string; queueLength?: number; progress?: string };
  const workers = (n: Node) => admin<Worker[]>(n, "GET", "/v1/workers");
  const scrubProgress = async (n: Node) =>
    (await workers(n)).find((w) => w.name === "block scrub")?.progress ?? "";
  const before = await Promise.all(nodes.map(scrubProgress));
  for (const n of nodes) {
    await admin(n, "POST", "/v1/repair", { what: "scrub" });
    await admin(n, "POST", "/v1/repair", { what: "blocks" });
  }
  // A scrub pass reads every block file, throttled: ~75 blocks/s under a run's data.
  const deadline = Date.now() + 600_000;
  for (const [i, n] of nodes.entries()) {
    for (;;) {
      const list = await workers(n);
      const scrub = list.find((w) => w.name === "block scrub")?.progress ?? "";
      const resync = list.find((w) => w.name === "block resync")?.queueLength ?? 0;
      if (scrub.startsWith("last pass") && scrub !== before[i] && resync === 0) {
        event(`node ${n.i} repaired: scrub ${scrub}`);
        break;
      }
      if (Date.now() > deadline) {
        anomaly(
          `node ${n.i}: repair not done after 10 min: scrub ${scrub}; resync queue ${resync}`,
        );
        break;
      }
      await sleep(1000);
    }
  }
}

/** Once the nodes are stopped: every block file matches its hash, and every live block is on every node. */
async function checkBlocksAfterRepair(reports: MetadataReport[]) {
  console.log(`${damagedBlockFiles} block files damaged during the run`);
  for (const [i, n] of nodes.entries()) {
    const files = await checkBlockFiles(`${n.dir}/data`, reports[i].liveBlocks);
    console.log(
      `blocks of node ${i}: ${files.checked} files checked, ${files.corrupt.length} corrupt, ` +
        `${files.missing.length} of ${reports[i].liveBlocks.length} live blocks missing`,
    );
    for (const path of files.corrupt) anomaly(`node ${i}: block file ${path} is corrupt`);
    for (const hash of files.missing) anomaly(`node ${i}: live block ${hash} has no file`);
  }
}

// --- Lost disks (--disk-loss) ---

/** Empties a directory, which may be a mount point. */
async function empty(dir: string) {
  for await (const entry of Deno.readDir(dir)) {
    await Deno.remove(`${dir}/${entry.name}`, { recursive: true });
  }
}

/**
 * A node's disks lost and replaced: killed, its metadata_dir and data_dir
 * emptied, started again with the same certificate, so that it fetches every
 * entry and block from the others while it serves requests. Half of the
 * time another node was frozen for seconds just before, while writes went
 * on: it missed some, and until it catches up, the node rebuilt and it are
 * two replicas that lack them.
 */
async function diskLossFault() {
  const node = pick(upNodes());
  if (!node) return;
  chaosCounts["disk-loss"] = (chaosCounts["disk-loss"] ?? 0) + 1;
  const lagging = rand() < 0.5 ? pick(upNodes().filter((n) => n !== node)) : undefined;
  if (lagging?.proc) {
    const ms = randInt(3000, 8000);
    event(
      `SIGSTOP node ${lagging.i} for ${ms} ms, to miss writes before node ${node.i}'s disks go`,
    );
    lagging.up = false;
    lagging.proc.kill("SIGSTOP");
    await sleep(ms);
    lagging.proc.kill("SIGCONT");
    lagging.up = true;
  }
  await killNode(node, "its disks lost");
  await empty(`${node.dir}/meta`);
  await empty(`${node.dir}/data`);
  event(`node ${node.i}: metadata_dir and data_dir emptied`);
  await sleep(randInt(500, 2000));
  await restart(node);
}

// --- A node replaced (--replace) ---

/** The layout versions a node applies (more than one while data moves to a new placement). */
async function activeLayoutVersions(node: Node): Promise<number[]> {
  return JSON.parse(await cli(node, ["layout", "show", "--json"])).activeVersions;
}

/**
 * Whether the cluster is whole again after the last loss of a node's data:
 * every node up for 10 s (its first anti-entropy pass done), one layout
 * version, and every node has synced it. Three replicas survive the loss of
 * one at a time; a second loss while a node is still fetching what the first
 * one lost can lose acknowledged writes, which no fault here should.
 */
async function clusterWhole(): Promise<boolean> {
  if (nodes.some((n) => !n.up || Date.now() - n.startedMs < 10_000)) return false;
  try {
    const status = JSON.parse(await cli(pick(nodes), ["status", "--json"]));
    return (status.olderLayoutVersions ?? []).length === 0 &&
      status.nodes.filter((n: { partitions: number }) => n.partitions > 0).every((
        n: { up: boolean; syncedLayoutVersion: number | null },
      ) => n.up && n.syncedLayoutVersion === status.layoutVersion);
  } catch {
    return false; // killed meanwhile: asked again at the next fault
  }
}

/**
 * Waits up to 3 min (not past the run's end), without faults, for the
 * cluster to be whole; whether it is. A node rebuilt fetches ~50 blocks/s (64 KiB ones here), ~3 min for a run's data.
 */
async function waitWhole(endAt: number): Promise<boolean> {
  const until = Math.min(Date.now() + 180_000, endAt);
  while (!(await clusterWhole())) {
    if (Date.now() > until) {
      event("the cluster is not whole yet: no loss this time");
      return false;
    }
    await sleep(1000);
  }
  return true;
}

/**
 * A node lost for good (its site gone) and replaced, as README tells: a new
 * node with a certificate of its own takes its addresses and zone, is
 * assigned, the old one removed, and both changes applied as one layout
 * version. Data moves to it while the faults go on.
 */
async function replaceFault() {
  const old = pick(upNodes());
  if (!old) return;
  chaosCounts.replace = (chaosCounts.replace ?? 0) + 1;
  await killNode(old, "its site lost for good");
  formerNodes.push(old);
  const fresh = await makeNode(old.i, `${DIR}/n${old.i}-${formerNodes.length}`, {
    api: old.apiPort,
    admin: old.adminPort,
    rpc: old.rpcPort,
    peers: nodes.filter((n) => n !== old).map((n) => n.rpcPort),
  });
  nodes[old.i] = fresh;
  await restart(fresh);
  const id = await nodeId(fresh);
  const operator = pick(upNodes().filter((n) => n !== fresh));
  try {
    for (let t = 0;; t++) {
      const status = JSON.parse(await cli(operator, ["status", "--json"]));
      if (status.nodes.some((n: { id: string; up: boolean }) => n.id === id && n.up)) break;
      if (t > 100) throw new Error(`node ${operator.i} does not see the new node ${id}`);
      await sleep(300);
    }
    await cli(operator, ["layout", "assign", id, "-z", `zone${old.i + 1}`, "-c", "10G"]);
    await cli(operator, ["layout", "remove", nodeIds[old.i]]);
    await cli(operator, ["layout", "apply", "--version", String(layoutVersion + 1)]);
    layoutVersion++;
    event(
      `node ${old.i} (${nodeIds[old.i].slice(0, 8)}) replaced by ${id.slice(0, 8)}: ` +
        `layout version ${layoutVersion} applied through node ${operator.i}`,
    );
    nodeIds[old.i] = id;
  } catch (e) {
    anomaly(`replacing node ${old.i}: ${(e as Error).message}`);
  }
}

/** Once converged: every node applies the last layout version only. */
async function checkLayoutRetired() {
  for (const n of nodes) {
    const active = await activeLayoutVersions(n);
    if (active.length !== 1 || active[0] !== layoutVersion) {
      anomaly(
        `node ${n.i} applies layout versions ${active.join(", ")}, not ${layoutVersion} only`,
      );
    } else event(`node ${n.i} applies layout version ${layoutVersion} only`);
  }
}

// --- Full disks (--disk-full) ---

const MIB = 2 ** 20;
const FILLER = "chaos-filler";

/** A tmpfs at `dir`: a small disk of the node's own. */
async function mountDisk(dir: string, mib: number) {
  await Deno.mkdir(dir, { recursive: true });
  await runTool("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir]);
}

/** The node's data and metadata on one disk, or (--split-disks) each on its own. */
async function mountDisks(node: Node) {
  if (!SPLIT_DISKS) return await mountDisk(node.dir, DISK_MIB);
  await mountDisk(`${node.dir}/meta`, META_DISK_MIB);
  await mountDisk(`${node.dir}/data`, DISK_MIB);
}

async function unmountDisks() {
  for (const n of [...nodes, ...formerNodes]) {
    for (const d of n.disks) await runTool("umount", [d]).catch(() => {});
  }
}

async function freeBytes(dir: string): Promise<number> {
  const out = await runTool("df", ["-B1", "--output=avail", dir]);
  return Number(out.trim().split("\n").pop());
}

/** Appends to the filler until the disk refuses: nothing is left free. */
async function fillToLastByte(path: string) {
  const file = await Deno.open(path, { append: true, create: true });
  const chunk = new Uint8Array(4096);
  try {
    for (;;) await file.write(chunk);
  } catch {
    // ENOSPC: full
  } finally {
    file.close();
  }
}

/**
 * A node's disk filled while writes go on: to the last byte (the node's own
 * writes meet ENOSPC and SQLITE_FULL), or to under its min_free_space (it
 * refuses uploads and blocks with 507). Mostly while a write is in flight on
 * it; sometimes it is killed and started again while full.
 */
async function diskFullFault() {
  const target = await nodeWriting(WRITES);
  const node = nodes[target ?? pick(upNodes()).i];
  if (!node.up) return;
  const disk = pick(node.disks);
  const name = SPLIT_DISKS
    ? `${disk.split("/").pop()} disk of node ${node.i}`
    : `disk of node ${node.i}`;
  const toLastByte = rand() < 0.5;
  const leave = toLastByte ? 0 : randInt(1, 100) * MIB;
  const ms = randInt(5000, 25_000);
  const restartWhileFull = rand() < 0.3;
  const path = `${disk}/${FILLER}`;
  const bulk = Math.max(0, (await freeBytes(disk)) - leave - MIB);
  if (bulk > 0) await runTool("fallocate", ["-l", String(bulk), path]).catch(() => {});
  if (toLastByte) await fillToLastByte(path);
  const kind = toLastByte ? "full-disk" : "reserve";
  chaosCounts[kind] = (chaosCounts[kind] ?? 0) + 1;
  const inflight = [...inflightRequests.values()].filter((q) => q.node === node.i);
  event(
    `${name} filled to ${toLastByte ? "the last byte" : `${leave / MIB} MiB free`} ` +
      `for ${ms} ms${restartWhileFull ? ", with a restart" : ""}; in flight on it: ${
        inflight.map((q) => q.op).join(",") || "none"
      }`,
  );
  const until = Date.now() + ms;
  if (restartWhileFull) {
    await sleep(randInt(1000, 4000));
    await killNode(node, "while its disk is full");
    await sleep(randInt(1000, 3000));
    try {
      await startNode(node);
      event(`node ${node.i} back up, its disk still full`);
    } catch (e) {
      // Documented: without its ballast (made 30 s after a start), a node does not start on a
      // metadata disk full to the last byte, and says so. A full data disk alone stops nothing.
      const log = await Deno.readTextFile(node.log);
      const said = log.slice(log.lastIndexOf("=== chaos: start")).match(
        /The disk of metadata_dir .* is full[^:]*/,
      );
      if (said) {
        event(`node ${node.i} did not start: "${said[0]}"`);
        noteDocumented("a node without its ballast does not start on a full disk");
      } else anomaly(`node ${node.i} did not start on a full disk: ${(e as Error).message}`);
    }
  }
  while (Date.now() < until) {
    await sleep(1000);
    // What the node deleted meanwhile is taken again.
    if (toLastByte) await fillToLastByte(path);
  }
  await Deno.remove(path);
  if (!node.proc) await restart(node);
  event(
    `${name} has room again (${((await freeBytes(disk)) / MIB).toFixed(0)} MiB)`,
  );
}

async function chaosLoop(endAt: number) {
  const replaceAt = [0.25, 0.6].map((f) => endAt - DURATION_MS * (1 - f));
  while (Date.now() < endAt) {
    await sleep(Math.min(randInt(5000, 15000), Math.max(0, endAt - Date.now())));
    if (Date.now() >= endAt || NO_KILL) continue;
    const replaceDue = REPLACE && formerNodes.length < replaceAt.length &&
      Date.now() > replaceAt[formerNodes.length];
    if (replaceDue) {
      if (await waitWhole(endAt)) await replaceFault();
      continue;
    }
    if (DISK_FULL && rand() < 0.4) {
      await diskFullFault();
      continue;
    }
    if (BIT_ROT && rand() < 0.35) {
      await bitRotFault();
      continue;
    }
    if (DISK_LOSS && rand() < 0.25) {
      if (await waitWhole(endAt)) await diskLossFault();
      continue;
    }
    const r = FREEZE_ONLY ? 0.85 : rand();
    if (r < 0.25) {
      const node = pick(upNodes());
      chaosCounts.random = (chaosCounts.random ?? 0) + 1;
      await killNode(node, "random");
      await sleep(randInt(2000, 6000));
      await restart(node);
    } else if (r < 0.37) {
      // The node serving the largest upload in flight; wait for one if none.
      let target: number | undefined;
      const until = Date.now() + 10_000;
      while (target === undefined && Date.now() < until) {
        const big = [...inflightRequests.values()].filter((q) =>
          q.bytes > 500_000 && nodes[q.node].up
        );
        if (big.length) target = pick(big).node;
        else await sleep(20);
      }
      await sleep(randInt(0, 150));
      const node = nodes[target ?? pick(upNodes()).i];
      if (!node.up) continue;
      chaosCounts["mid-upload"] = (chaosCounts["mid-upload"] ?? 0) + 1;
      await killNode(node, target === undefined ? "random, no upload in flight" : "mid-upload");
      await sleep(randInt(2000, 6000));
      await restart(node);
    } else if (r < 0.5) {
      // Right after a CompleteMultipartUpload reaches a node.
      const fired = await new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => {
          armed = undefined;
          resolve(undefined);
        }, 20_000);
        armed = {
          op: "mpu-complete",
          fire: (n) => {
            clearTimeout(timer);
            setTimeout(() => resolve(n), randInt(0, 40));
          },
        };
      });
      const node = fired === undefined ? pick(upNodes()) : nodes[fired];
      if (!node.up) continue;
      chaosCounts["mid-complete"] = (chaosCounts["mid-complete"] ?? 0) + 1;
      await killNode(node, fired === undefined ? "random, no completion came" : "mid-complete");
      await sleep(randInt(2000, 6000));
      await restart(node);
    } else if (r < 0.67) {
      // Two nodes at once; half of the time the two that a write in flight
      // on the third is being sent to (it may reach one of them only).
      let survivor: number | undefined;
      if (rand() < 0.5) {
        survivor = await nodeWriting(WRITES);
        await sleep(randInt(0, 30));
      }
      const [a, b] = survivor === undefined
        ? [...upNodes()].sort(() => rand() - 0.5)
        : upNodes().filter((n) => n.i !== survivor);
      if (!a || !b) continue;
      const why = survivor === undefined ? "double" : `double, write in flight on node ${survivor}`;
      chaosCounts[survivor === undefined ? "double" : "double-targeted"] =
        (chaosCounts[survivor === undefined ? "double" : "double-targeted"] ?? 0) + 1;
      await Promise.all([killNode(a, why), killNode(b, why)]);
      await sleep(randInt(1000, 4000));
      await Promise.all([restart(a), restart(b)]);
    } else if (r < 0.8) {
      // One node down, then another killed while a write is in flight on
      // it: the write may reach the third node alone (a minority).
      const first = pick(upNodes());
      chaosCounts.overlap = (chaosCounts.overlap ?? 0) + 1;
      await killNode(first, "overlap, first");
      await sleep(randInt(500, 2000));
      const writing = await nodeWriting(WRITES);
      const second = writing === undefined ? pick(upNodes()) : nodes[writing];
      await sleep(randInt(0, 40));
      await killNode(second, "overlap, second, mid-write");
      await sleep(randInt(1000, 4000));
      await Promise.all([restart(first), restart(second)]);
    } else if (r < 0.93) {
      // Frozen (SIGSTOP, as a long pause of the machine or the process
      // would), mostly while a write is in flight on it, half of the time a
      // conditional one: the others see it down and may end its key locks.
      const target = await nodeWriting(rand() < 0.5 ? CAS_WRITES : WRITES);
      const node = nodes[target ?? pick(upNodes()).i];
      if (!node.up || !node.proc) continue;
      await sleep(randInt(0, 30));
      chaosCounts.freeze = (chaosCounts.freeze ?? 0) + 1;
      const ms = randInt(1500, 12_000);
      const inflight = [...inflightRequests.values()].filter((q) => q.node === node.i);
      event(
        `SIGSTOP node ${node.i} for ${ms} ms; in flight on it: ${
          inflight.map((q) => q.op).join(",") || "none"
        }`,
      );
      node.up = false;
      node.proc.kill("SIGSTOP");
      await sleep(ms);
      node.proc.kill("SIGCONT");
      node.up = true;
      event(`SIGCONT node ${node.i}`);
      await sleep(randInt(1000, 3000));
    } else {
      // Killed again soon after it came back (recovery interrupted).
      const node = pick(upNodes());
      chaosCounts["during-recovery"] = (chaosCounts["during-recovery"] ?? 0) + 1;
      await killNode(node, "random");
      await sleep(randInt(1000, 3000));
      await restart(node);
      await sleep(randInt(200, 3000));
      await killNode(node, "again, just after its restart");
      await sleep(randInt(1000, 3000));
      await restart(node);
    }
  }
}

// --- Reading back ---

type Seen =
  | { kind: "absent" }
  | {
    kind: "present";
    md5: string;
    size: number;
    etag: string;
    headSize: number;
    headEtag: string;
  };

async function readState(node: number, bucket: string, key: string): Promise<Seen> {
  let head: { ContentLength?: number; ETag?: string };
  try {
    head = await send(node, "head", new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    if (classify(e).status === 404) {
      // The GET must agree.
      try {
        const res = await send<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }>(
          node,
          "get",
          new GetObjectCommand({ Bucket: bucket, Key: key }),
        );
        const data = await res.Body!.transformToByteArray();
        anomaly(`HEAD ${bucket}/${key} via node ${node}: 404, but GET: ${data.length} bytes`);
      } catch (e2) {
        if (classify(e2).status !== 404) throw e2;
      }
      return { kind: "absent" };
    }
    throw e;
  }
  const res = await send<
    { Body?: { transformToByteArray(): Promise<Uint8Array> }; ETag?: string }
  >(node, "get", new GetObjectCommand({ Bucket: bucket, Key: key }));
  const data = await res.Body!.transformToByteArray();
  return {
    kind: "present",
    md5: md5(data),
    size: data.length,
    etag: unquote(res.ETag),
    headSize: head.ContentLength ?? -1,
    headEtag: unquote(head.ETag),
  };
}

/** readState, an error of which is an anomaly (every node is up when this runs). */
async function safeRead(
  label: string,
  node: number,
  bucket: string,
  key: string,
): Promise<Seen | undefined> {
  try {
    return await readState(node, bucket, key);
  } catch (e) {
    const f = classify(e);
    anomaly(`${label}: node ${node}: reading ${bucket}/${key} failed: ${f.code} ${f.status ?? ""}`);
    return undefined;
  }
}

function matches(seen: Seen, s: State): boolean {
  if (seen.kind === "absent" || s.kind === "absent") return seen.kind === s.kind;
  return seen.md5 === s.md5 && seen.size === s.size && seen.headSize === s.size &&
    (s.etag === undefined || (seen.etag === s.etag && seen.headEtag === s.etag));
}
const matchesSome = (seen: Seen, candidates: State[]) => candidates.some((s) => matches(seen, s));
const seenText = (s: Seen) =>
  s.kind === "absent"
    ? "absent"
    : `${s.size}B md5=${s.md5} etag=${s.etag} (HEAD ${s.headSize}B etag=${s.headEtag})`;

async function rangedCheck(
  node: number,
  bucket: string,
  key: string,
  s: Present,
  versionId?: string,
) {
  if (s.size < 2) return;
  const data = descBytes(s.desc);
  for (let i = 0; i < 2; i++) {
    const a = randInt(0, s.size - 1);
    const b = Math.min(s.size - 1, a + randInt(0, 300_000));
    let got: Uint8Array;
    try {
      const res = await send<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }>(
        node,
        "get-range",
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: `bytes=${a}-${b}`,
          VersionId: versionId,
        }),
      );
      got = await res.Body!.transformToByteArray();
    } catch (e) {
      const f = classify(e);
      anomaly(
        `ranged GET ${bucket}/${key} bytes=${a}-${b} via node ${node}: ${f.code} ${f.status ?? ""}`,
      );
      continue;
    }
    const want = data.subarray(a, b + 1);
    if (got.length !== want.length || md5(got) !== md5(want)) {
      anomaly(
        `ranged GET ${bucket}/${key}${
          versionId ? `?versionId=${versionId}` : ""
        } bytes=${a}-${b} via node ${node}: ${got.length} bytes, wrong content`,
      );
    }
  }
}

async function listAll(
  node: number,
  bucket: string,
): Promise<Map<string, { size: number; etag: string }>> {
  const out = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const res = await send<{
      Contents?: { Key?: string; Size?: number; ETag?: string }[];
      NextContinuationToken?: string;
      IsTruncated?: boolean;
    }>(
      node,
      "list",
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 37 }),
    );
    for (const c of res.Contents ?? []) {
      if (out.has(c.Key!)) anomaly(`ListObjectsV2 via node ${node} lists ${c.Key} twice`);
      out.set(c.Key!, { size: c.Size ?? -1, etag: unquote(c.ETag) });
    }
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

interface ListedVersion {
  key: string;
  id: string;
  marker: boolean;
  latest: boolean;
  size?: number;
  etag?: string;
}

async function listVersions(node: number): Promise<ListedVersion[]> {
  const out: ListedVersion[] = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const res = await send<{
      Versions?: {
        Key?: string;
        VersionId?: string;
        IsLatest?: boolean;
        Size?: number;
        ETag?: string;
      }[];
      DeleteMarkers?: { Key?: string; VersionId?: string; IsLatest?: boolean }[];
      IsTruncated?: boolean;
      NextKeyMarker?: string;
      NextVersionIdMarker?: string;
    }>(
      node,
      "list-versions",
      new ListObjectVersionsCommand({
        Bucket: VERSIONED,
        KeyMarker: keyMarker,
        VersionIdMarker: idMarker,
        MaxKeys: 50,
      }),
    );
    for (const v of res.Versions ?? []) {
      out.push({
        key: v.Key!,
        id: v.VersionId!,
        marker: false,
        latest: !!v.IsLatest,
        size: v.Size,
        etag: unquote(v.ETag),
      });
    }
    for (const m of res.DeleteMarkers ?? []) {
      out.push({ key: m.Key!, id: m.VersionId!, marker: true, latest: !!m.IsLatest });
    }
    if (!res.IsTruncated) return out;
    keyMarker = res.NextKeyMarker;
    idMarker = res.NextVersionIdMarker;
  }
}

async function listUploads(node: number, bucket: string): Promise<{ key: string; id: string }[]> {
  const out: { key: string; id: string }[] = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const res = await send<{
      Uploads?: { Key?: string; UploadId?: string }[];
      IsTruncated?: boolean;
      NextKeyMarker?: string;
      NextUploadIdMarker?: string;
    }>(
      node,
      "list-uploads",
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        KeyMarker: keyMarker,
        UploadIdMarker: idMarker,
      }),
    );
    for (const u of res.Uploads ?? []) out.push({ key: u.Key!, id: u.UploadId! });
    if (!res.IsTruncated) return out;
    keyMarker = res.NextKeyMarker;
    idMarker = res.NextUploadIdMarker;
  }
}

/** Checks the uploads listed; aborts (through node 0) those that may be left. */
async function checkUploads(label: string, abortLeft: boolean) {
  for (const bucket of [PLAIN, VERSIONED, CAS]) {
    const listed = await listUploads(0, bucket);
    for (const u of listed) {
      const known = uploads.get(u.id);
      if (known && (known.status === "completed" || known.status === "aborted")) {
        anomaly(
          `${label}: upload ${bucket}/${u.key} ${u.id} (${known.status}, acknowledged) still listed`,
        );
      }
      if (abortLeft) {
        try {
          await send(
            0,
            "mpu-abort",
            new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.id }),
          );
          if (known) known.status = "aborted";
          else uploads.set(u.id, { bucket, key: u.key, uploadId: u.id, status: "aborted" });
        } catch (e) {
          anomaly(`${label}: abort of left upload ${bucket}/${u.key} ${u.id}: ${classify(e).code}`);
        }
      }
    }
    if (abortLeft) event(`${label}: ${listed.length} upload(s) left in ${bucket}, aborted`);
  }
}

/** What every node saw of each key, to compare once converged. */
type Observed = Map<string, string>;

async function verify(label: string, requireAgreement: boolean): Promise<void> {
  event(`verify (${label}): reading back through every node`);
  const observed: Observed[] = [];
  let checked = 0;
  for (let node = 0; node < NODES; node++) {
    const seenHere: Observed = new Map();
    observed.push(seenHere);
    // Plain bucket.
    const listed = await listAll(node, PLAIN);
    const tracked = new Set(plainKeys.flat().map((k) => k.key));
    for (const key of listed.keys()) {
      if (!tracked.has(key)) anomaly(`${label}: node ${node} lists ${PLAIN}/${key}, never written`);
    }
    for (const k of plainKeys.flat()) {
      const seen = await safeRead(label, node, PLAIN, k.key);
      if (!seen) continue;
      checked++;
      seenHere.set(`${PLAIN}/${k.key}`, seenText(seen));
      const documented = k.candidates.find((c) =>
        c.kind === "absent" && c.documented && matches(seen, c)
      ) as
        | Absent
        | undefined;
      if (documented && !k.candidates.some((c) => !("documented" in c) && matches(seen, c))) {
        noteDocumented(`${PLAIN}/${k.key}: ${documented.documented}`);
      }
      if (!matchesSome(seen, k.candidates)) {
        anomaly(
          `${label}: node ${node} reads ${PLAIN}/${k.key} as ${seenText(seen)}; expected one of: ${
            k.candidates.map(describe).join(" | ")
          }`,
        );
      }
      const entry = listed.get(k.key);
      if (seen.kind === "absent" && entry) {
        anomaly(`${label}: node ${node} lists ${PLAIN}/${k.key} (${entry.size}B) but GET is 404`);
      }
      if (seen.kind === "present") {
        if (!entry) anomaly(`${label}: node ${node} reads ${PLAIN}/${k.key} but does not list it`);
        else if (entry.size !== seen.size || entry.etag !== seen.etag) {
          anomaly(
            `${label}: node ${node} lists ${PLAIN}/${k.key} as ${entry.size}B ${entry.etag}, reads ${seen.size}B ${seen.etag}`,
          );
        }
        const state = k.candidates.find((s) => matches(seen, s)) as Present | undefined;
        if (state && state.size > 65536) await rangedCheck(node, PLAIN, k.key, state);
      }
    }
    // Versioned bucket.
    const versions = await listVersions(node);
    const byKey = new Map<string, ListedVersion[]>();
    for (const v of versions) byKey.set(v.key, [...(byKey.get(v.key) ?? []), v]);
    const vtracked = new Set(versionedKeys.flat().map((k) => k.key));
    for (const key of byKey.keys()) {
      if (!vtracked.has(key)) {
        anomaly(`${label}: node ${node} lists versions of ${key}, never written`);
      }
    }
    for (const k of versionedKeys.flat()) {
      const listedHere = byKey.get(k.key) ?? [];
      const ids = new Map(listedHere.map((v) => [v.id, v]));
      seenHere.set(
        `${VERSIONED}/${k.key}`,
        listedHere.map((v) => `${v.id}${v.marker ? "(marker)" : ""}${v.latest ? "*" : ""}`).sort()
          .join(","),
      );
      const latest = listedHere.filter((v) => v.latest);
      if (listedHere.length > 0 && latest.length !== 1) {
        anomaly(`${label}: node ${node}: ${k.key} has ${latest.length} latest versions`);
      }
      if (k.latest && latest[0]?.id !== k.latest) {
        anomaly(
          `${label}: node ${node}: latest version of ${k.key} is ${
            latest[0]?.id
          }, expected ${k.latest}`,
        );
      }
      for (const v of k.versions.values()) {
        const l = ids.get(v.id);
        if (!l) {
          if (!k.maybeDeleted.has(v.id)) {
            anomaly(
              `${label}: node ${node}: acknowledged version ${k.key}?versionId=${v.id} (${v.kind}) not listed`,
            );
          }
          continue;
        }
        if (l.marker !== (v.kind === "marker")) {
          anomaly(`${label}: node ${node}: version ${k.key} ${v.id} listed as marker=${l.marker}`);
        }
        if (v.kind === "object") {
          if (l.size !== v.size || l.etag !== v.etag) {
            anomaly(
              `${label}: node ${node}: version ${k.key} ${v.id} listed ${l.size}B ${l.etag}, expected ${v.size}B ${v.etag}`,
            );
          }
          try {
            const res = await send<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }>(
              node,
              "vget",
              new GetObjectCommand({ Bucket: VERSIONED, Key: k.key, VersionId: v.id }),
            );
            const got = md5(await res.Body!.transformToByteArray());
            checked++;
            if (got !== v.md5) {
              anomaly(
                `${label}: node ${node}: ${k.key}?versionId=${v.id} reads md5 ${got}, expected ${v.md5}`,
              );
            }
            if ((v.size ?? 0) > 65536) {
              await rangedCheck(node, VERSIONED, k.key, {
                kind: "present",
                desc: v.desc!,
                md5: v.md5!,
                size: v.size!,
                how: "v",
              }, v.id);
            }
          } catch (e) {
            anomaly(
              `${label}: node ${node}: GET ${k.key}?versionId=${v.id}: ${classify(e).code} ${
                classify(e).status ?? ""
              }`,
            );
          }
        }
      }
      for (const id of k.deleted) {
        if (ids.has(id)) {
          anomaly(
            `${label}: node ${node}: version ${k.key} ${id}, deleted (acknowledged), is listed`,
          );
        }
      }
      // Versions nobody acknowledged: each must be explained by an ambiguous write.
      const unknown = listedHere.filter((v) => !k.versions.has(v.id) && !k.maybeDeleted.has(v.id));
      const objects = unknown.filter((v) => !v.marker);
      const markers = unknown.filter((v) => v.marker);
      if (markers.length > k.ambiguousMarkers) {
        anomaly(
          `${label}: node ${node}: ${k.key} has ${markers.length} unknown delete markers, ${k.ambiguousMarkers} ambiguous deletes`,
        );
      }
      if (objects.length > k.ambiguousObjects.length) {
        anomaly(
          `${label}: node ${node}: ${k.key} has ${objects.length} unknown versions, ${k.ambiguousObjects.length} ambiguous writes`,
        );
      }
      for (const v of objects) {
        if (!k.ambiguousObjects.some((a) => a.size === v.size)) {
          anomaly(
            `${label}: node ${node}: ${k.key} lists unknown version ${v.id} (${v.size}B ${v.etag}) of no ambiguous write`,
          );
        }
      }
      // The current object (GET without a version id) is the latest listed version.
      const seen = await safeRead(label, node, VERSIONED, k.key);
      if (!seen) continue;
      checked++;
      const cur = latest[0];
      if (cur && !cur.marker) {
        if (seen.kind !== "present" || seen.size !== cur.size || seen.etag !== cur.etag) {
          anomaly(
            `${label}: node ${node}: GET ${VERSIONED}/${k.key} reads ${
              seenText(seen)
            }, latest listed is ${cur.id} ${cur.size}B ${cur.etag}`,
          );
        }
      } else if (seen.kind !== "absent") {
        anomaly(
          `${label}: node ${node}: GET ${VERSIONED}/${k.key} reads ${
            seenText(seen)
          }, latest listed is ${cur ? "a delete marker" : "nothing"}`,
        );
      }
    }
    // Shared keys of conditional writes.
    const casListed = await listAll(node, CAS);
    for (const key of casListed.keys()) {
      if (!CAS_KEYS.includes(key)) anomaly(`${label}: node ${node} lists ${CAS}/${key}`);
    }
    for (const key of CAS_KEYS) {
      const start = Date.now() - t0;
      const seen = await safeRead(label, node, CAS, key);
      if (!seen) continue;
      checked++;
      seenHere.set(`${CAS}/${key}`, seenText(seen));
      const etag = seen.kind === "absent" ? null : seen.etag;
      casReads.push({
        key,
        seen: etag,
        start,
        end: Date.now() - t0,
        label: `${label} via ${node}`,
      });
      const entry = casListed.get(key);
      if (etag !== null && casBodies.get(etag) !== (seen as { md5: string }).md5) {
        anomaly(`${label}: node ${node} reads ${CAS}/${key} (ETag ${etag}) with other bytes`);
      }
      if ((entry?.etag ?? null) !== etag) {
        anomaly(`${label}: node ${node} lists ${CAS}/${key} as ${entry?.etag}, reads ${etag}`);
      }
    }
  }
  if (requireAgreement) {
    for (const key of observed[0].keys()) {
      const views = observed.map((o) => o.get(key));
      if (views.some((v) => v !== views[0])) {
        anomaly(
          `${label}: nodes disagree on ${key}: ${
            views.map((v, i) => `node ${i}: ${v}`).join(" / ")
          }`,
        );
      }
    }
  }
  event(`verify (${label}): ${checked} reads`);
}

// --- Logs, blocks, disk ---

async function admin<T>(node: Node, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${node.adminPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

async function checkLogs() {
  for (const node of nodes) {
    const text = await Deno.readTextFile(node.log);
    const lines = text.split("\n");
    const errors = new Map<string, number>();
    const warnings = new Map<string, number>();
    const normalize = (l: string) =>
      l.replace(/^\S+\s+/, "").replace(/[0-9a-f]{16,}/g, "#").replace(/\d+/g, "N").slice(0, 200);
    for (const [i, line] of lines.entries()) {
      if (
        /Uncaught|panicked|error: |\bERROR\b|^\s+at /.test(line) || /"level":"error"/.test(line)
      ) {
        const key = normalize(line);
        if (!errors.has(key) && /Uncaught|panicked/.test(line)) {
          anomaly(`node ${node.i} log line ${i + 1}: ${line.slice(0, 300)}`);
        }
        errors.set(key, (errors.get(key) ?? 0) + 1);
      } else if (/\bWARN\b|warn/.test(line)) {
        const key = normalize(line);
        warnings.set(key, (warnings.get(key) ?? 0) + 1);
      }
    }
    console.log(
      `\n--- node ${node.i} log: ${lines.length} lines, ${node.kills} kills, ${node.starts} starts`,
    );
    for (const [k, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      console.log(`  error x${n}: ${k}`);
    }
    for (const [k, n] of [...warnings].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
      console.log(`  warn  x${n}: ${k}`);
    }
  }
}

async function duBytes(path: string): Promise<number> {
  // Not runTool: du exits 1 when files vanish under it (blocks deleted meanwhile), total and all.
  const out = await new Deno.Command("du", { args: ["-sb", path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]);
}

async function diskReport(label: string) {
  const live = new Map<number, number>(); // distinct contents by seed, bytes not inline
  for (const k of plainKeys.flat()) {
    const s = k.candidates[0];
    if (s.kind === "present" && s.size > 8192) { for (const g of s.desc) live.set(g.seed, g.size); }
  }
  for (const k of versionedKeys.flat()) {
    for (const v of k.versions.values()) for (const g of v.desc ?? []) live.set(g.seed, g.size);
  }
  const liveBytes = [...live.values()].reduce((a, b) => a + b, 0);
  const sizes = await Promise.all(nodes.map((n) => duBytes(`${n.dir}/data`)));
  const metas = await Promise.all(nodes.map((n) => duBytes(`${n.dir}/meta`)));
  event(
    `disk (${label}): data ${sizes.map((s) => (s / 2 ** 20).toFixed(1)).join(" / ")} MiB, meta ${
      metas.map((s) => (s / 2 ** 20).toFixed(1)).join(" / ")
    } MiB; live content ~${(liveBytes / 2 ** 20).toFixed(1)} MiB`,
  );
}

// --- Main ---

/** A node's directory, certificate and configuration (a tmpfs with --disk-full); not started. */
async function makeNode(
  i: number,
  dir: string,
  ports: { api: number; admin: number; rpc: number; peers: number[] },
): Promise<Node> {
  const node: Node = {
    i,
    dir,
    config: `${dir}/remise.toml`,
    // Beside the node's directory, which --disk-full fills.
    log: `${dir}.log`,
    apiPort: ports.api,
    adminPort: ports.admin,
    rpcPort: ports.rpc,
    up: false,
    startedMs: 0,
    kills: 0,
    starts: 0,
    clockOffsetMs: 0,
    disks: !DISK_FULL ? [] : SPLIT_DISKS ? [`${dir}/meta`, `${dir}/data`] : [dir],
  };
  if (DISK_FULL) await mountDisks(node);
  await run([
    "cert",
    "node",
    "--ca",
    `${DIR}/ca`,
    "--name",
    dir.slice(dir.lastIndexOf("/") + 1),
    "--host",
    "127.0.0.1",
    "--out",
    `${dir}/cert`,
  ]);
  await Deno.writeTextFile(
    node.config,
    [
      `metadata_dir = "${dir}/meta"`,
      `data_dir = "${dir}/data"`,
      `block_size = "${BLOCK_SIZE}"`,
      `replication_factor = 3`,
      `rpc_bind_addr = "127.0.0.1:${node.rpcPort}"`,
      `rpc_public_addr = "127.0.0.1:${node.rpcPort}"`,
      `bootstrap_peers = [${ports.peers.map((p) => `"127.0.0.1:${p}"`).join(", ")}]`,
      `ca_cert = "${DIR}/ca/ca.crt"`,
      `node_cert = "${dir}/cert/node.crt"`,
      `node_key = "${dir}/cert/node.key"`,
      `api_bind_addr = "127.0.0.1:${node.apiPort}"`,
      `admin_bind_addr = "127.0.0.1:${node.adminPort}"`,
      `admin_token = "${ADMIN_TOKEN}"`,
      `s3_region = "${REGION}"`,
      "",
    ].join("\n"),
  );
  await run(["server", "--check-config", "-c", node.config]);
  return node;
}

const nodeId = async (n: Node) => (await cli(n, ["node", "id"])).trim();

async function setup() {
  await Deno.mkdir(DIR, { recursive: true });
  opsFile = await Deno.open(`${DIR}/ops.jsonl`, { create: true, append: true });
  event(`seed ${SEED}, dir ${DIR}, ${WORKERS} workers, ${DURATION_MS / 1000}s of chaos`);
  await run(["cert", "ca", "--out", `${DIR}/ca`]);
  const rpcPorts = [0, 1, 2].map(() => freePort());
  nodes = [];
  for (let i = 0; i < NODES; i++) {
    nodes.push(
      await makeNode(i, `${DIR}/n${i}`, {
        api: freePort(),
        admin: freePort(),
        rpc: rpcPorts[i],
        peers: rpcPorts.filter((_, j) => j !== i),
      }),
    );
  }
  await Promise.all(nodes.map(startNode));
  await waitAllSeeEachOther(60_000);
  const ids = await Promise.all(nodes.map(nodeId));
  nodeIds.push(...ids);
  for (const [i, id] of ids.entries()) {
    await cli(nodes[0], ["layout", "assign", id, "-z", `zone${i + 1}`, "-c", "10G"]);
  }
  await cli(nodes[0], ["layout", "apply", "--version", "1"]);
  for (const n of nodes) {
    for (let t = 0;; t++) {
      const s = JSON.parse(await cli(n, ["status", "--json"]));
      if (s.layoutVersion === 1) break;
      if (t > 100) throw new Error(`node ${n.i} has no layout`);
      await sleep(300);
    }
  }
  const key = JSON.parse(await cli(nodes[0], ["key", "create", "chaos", "--json"]));
  const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  clients = nodes.map((n) =>
    new S3Client({
      endpoint: `http://127.0.0.1:${n.apiPort}`,
      region: REGION,
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
    })
  );
  await clients[0].send(new CreateBucketCommand({ Bucket: PLAIN }));
  await clients[1].send(new CreateBucketCommand({ Bucket: VERSIONED }));
  await clients[2].send(new CreateBucketCommand({ Bucket: CAS }));
  await clients[2].send(
    new PutBucketVersioningCommand({
      Bucket: VERSIONED,
      VersioningConfiguration: { Status: "Enabled" },
    }),
  );
  event(`cluster up: nodes ${ids.map((id) => id.slice(0, 8)).join(", ")}; buckets created`);
}

async function waitAllSeeEachOther(timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (const n of nodes) {
    for (;;) {
      try {
        const s = JSON.parse(await cli(n, ["status", "--json"]));
        if (s.nodes.filter((x: { up: boolean }) => x.up).length === NODES) break;
      } catch {
        // not ready
      }
      if (Date.now() > deadline) throw new Error(`node ${n.i} does not see every node`);
      await sleep(500);
    }
  }
}

async function cleanup() {
  for (const n of nodes) {
    if (n.proc) {
      try {
        n.proc.kill("SIGTERM");
      } catch {
        // gone
      }
    }
  }
  await Promise.all(nodes.map((n) => n.proc?.status));
  for (const c of clients) c.destroy();
}

/**
 * Every node's metadata, read once they are stopped: missing data, blocks of
 * complete versions without a live reference, and wrong Merkle leaves are
 * anomalies; data that nothing names, not even a node's
 * journal (which its next process settles), is told as leaked.
 */
async function checkStoppedNodes() {
  const reports = await Promise.all(nodes.map((n) => checkMetadata(`${n.dir}/meta`)));
  const noted = new Set(reports.flatMap((r) => r.journal));
  for (const [i, report] of reports.entries()) {
    console.log(`metadata of node ${i}: ${describeReport(report)}`);
    for (const part of report.missing) {
      anomaly(`node ${i}: a complete version's data is missing: ${JSON.stringify(part)}`);
    }
    for (const block of report.unreferenced) {
      anomaly(`node ${i}: a complete version's block is not referenced: ${JSON.stringify(block)}`);
    }
    for (const leaf of report.merkleLeaves.wrong) {
      anomaly(`node ${i}: Merkle leaf ${leaf} does not match the entries under it`);
    }
    const leaked = report.leaked.ids.filter((id) => !noted.has(id));
    const notedElsewhere = report.leaked.ids.length - leaked.length;
    if (notedElsewhere > 0) {
      console.log(`  ${notedElsewhere} of them noted in another node's journal`);
    }
    if (leaked.length > 0) console.log(`  leaked data ids: ${leaked.slice(0, 10).join(", ")}`);
  }
  if (BIT_ROT) await checkBlocksAfterRepair(reports);
}

async function main() {
  // A pooled connection of the SDK to a node killed while idle can end with
  // an error event nobody listens to: not a failure of the run.
  globalThis.addEventListener("error", (e) => {
    console.log(`(ignored: ${e.message})`);
    e.preventDefault();
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    console.log(`(ignored: ${e.reason})`);
    e.preventDefault();
  });
  Deno.addSignalListener("SIGINT", () => {
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    if (DISK_FULL) console.error(`node directories under ${DIR} are tmpfs mounts`);
    Deno.exit(130);
  });
  await setup();
  for (let w = 0; w < WORKERS; w++) {
    plainKeys.push(
      Array.from({ length: KEYS_PER_WORKER }, (_, i) => ({
        key: `w${w}/k${i}${i % 4 === 0 ? "/deep/key with spaces+é" : ""}`,
        candidates: [{ kind: "absent" } as State],
      })),
    );
    versionedKeys.push(
      Array.from({ length: VKEYS_PER_WORKER }, (_, i) => ({
        key: `w${w}/v${i}`,
        versions: new Map(),
        deleted: new Set(),
        maybeDeleted: new Set(),
        ambiguousObjects: [],
        ambiguousMarkers: 0,
        latest: null,
      })),
    );
  }
  const endAt = Date.now() + DURATION_MS;
  const loops = [
    ...Array.from({ length: WORKERS }, (_, w) => workerLoop(w)),
    ...Array.from({ length: CAS_WORKERS }, (_, i) => casLoop(WORKERS + i)),
  ];
  await chaosLoop(endAt);
  stopWorkers = true;
  event("chaos over: waiting for the client loops");
  await Promise.all(loops);
  for (const n of nodes) if (!n.proc) await restart(n);
  await waitAllSeeEachOther(120_000);
  event("every node up and seeing the others");
  const kills = [...nodes, ...formerNodes].reduce((s, n) => s + n.kills, 0);
  await checkUploads("after chaos", true);
  await verify("at once", false);
  await checkUploads("after abort", false);
  await diskReport("at once");
  event(`waiting ${CONVERGE_MS / 1000}s for anti-entropy`);
  await sleep(CONVERGE_MS);
  for (const n of nodes) {
    const workers = await admin<
      { name: string; queueLength?: number; errors: number; lastError?: string }[]
    >(
      n,
      "GET",
      "/v1/workers",
    );
    const busy = workers.filter((w) => (w.queueLength ?? 0) > 0 || w.lastError);
    if (busy.length) {
      event(
        `node ${n.i} workers: ${
          busy.map((w) =>
            `${w.name} queue=${w.queueLength} errors=${w.errors} ${w.lastError ?? ""}`
          ).join("; ")
        }`,
      );
    }
    const errors = await admin<unknown[]>(n, "GET", "/v1/blocks/errors");
    if (errors.length) {
      anomaly(`node ${n.i}: ${errors.length} block errors: ${JSON.stringify(errors.slice(0, 3))}`);
    }
  }
  await verify("converged", true);
  if (REPLACE) await checkLayoutRetired();
  if (BIT_ROT) await repairBlocks();
  for (const problem of checkConditionalHistory(casWrites, casReads)) anomaly(problem);
  await checkUploads("converged", false);
  await diskReport("converged");
  await checkLogs();

  const totalOps = Object.values(counts).reduce(
    (s, c) => s + c.ok + c.rejected + c.refused + c.ambiguous,
    0,
  );
  console.log(
    `\n=== seed ${SEED}: ${totalOps} requests, ${kills} kills (${JSON.stringify(chaosCounts)})`,
  );
  console.log("op            ok  rejected  refused  ambiguous");
  for (const [op, c] of Object.entries(counts).sort()) {
    console.log(
      `${op.padEnd(12)} ${String(c.ok).padStart(5)} ${String(c.rejected).padStart(9)} ${
        String(c.refused).padStart(8)
      } ${String(c.ambiguous).padStart(10)}`,
    );
  }
  console.log(
    `failures: ${
      [...failureCodes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} x${n}`).join(", ")
    }`,
  );
  const statuses = new Map<string, number>();
  for (const u of uploads.values()) statuses.set(u.status, (statuses.get(u.status) ?? 0) + 1);
  console.log(`uploads: ${JSON.stringify(Object.fromEntries(statuses))}`);
  for (const [what, n] of documentedOutcomes) {
    console.log(`documented outcome (README), read ${n} times: ${what}`);
  }
  await cleanup();
  await checkStoppedNodes();
  console.log(`\n${anomalies.length} anomalies`);
  for (const a of anomalies) console.log(`  ${a}`);
  opsFile.close();
  if (!KEEP) {
    if (DISK_FULL) await unmountDisks();
    await Deno.remove(DIR, { recursive: true });
  } else console.log(`kept ${DIR}${DISK_FULL ? " (node directories: tmpfs mounts)" : ""}`);
  Deno.exit(anomalies.length ? 1 : 0);
}

try {
  await main();
} catch (e) {
  console.error(e);
  await cleanup().catch(() => {});
  console.error(
    `scratch data left in ${DIR}${DISK_FULL ? " (node directories: tmpfs mounts)" : ""}`,
  );
  Deno.exit(2);
}

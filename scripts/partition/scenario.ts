/**
 * Cuts links of the cluster that cluster.sh made while clients write
 * through its nodes, heals them, and checks that every acknowledged write is
 * read back right through every node. Prints what clients saw meanwhile.
 *
 *   deno run -A scripts/partition/scenario.ts DIR isolate|blackhole|asymmetric|flap [SECONDS]
 *
 * - isolate: node 2 loses both its links (a site's connection goes down);
 *   clients of the other sites write on, node 2's own clients get 503s.
 * - blackhole: the same, but only node 2's ends go down: the others' packets
 *   to it vanish without an error.
 * - asymmetric: only the link 0-2 goes down; every node still reaches a
 *   quorum through node 1, so nothing may fail.
 * - flap: node 2's links go down and up every few seconds.
 *
 * Meanwhile one client per node reads two shared keys and writes them on
 * condition that they are still what it read (If-None-Match: *, If-Match):
 * their history must show that the writers took turns
 * (scripts/chaos/conditional_chains.ts).
 *
 * Exits 1 when an acknowledged write is lost, a write that had a quorum
 * failed, or the conditional writes did not take turns.
 */
import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import {
  checkConditionalHistory,
  type ConditionalRead,
  type ConditionalWrite,
} from "../chaos/conditional_chains.ts";

const [dir, mode = "isolate", secondsArg = "30"] = Deno.args;
if (!dir || !["isolate", "blackhole", "asymmetric", "flap"].includes(mode)) {
  console.error("usage: scenario.ts DIR isolate|blackhole|asymmetric|flap [SECONDS]");
  Deno.exit(2);
}
const cutMs = Number(secondsArg) * 1000;
const key = JSON.parse(await Deno.readTextFile(`${dir}/key.json`));
const clients = [0, 1, 2].map((i) =>
  new S3Client({
    endpoint: `http://10.1.${i}.2:3900`,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  })
);
const BUCKET = "bkt";
const run = `${mode}-${Date.now()}`;

interface Op {
  node: number;
  startMs: number;
  ms: number;
  ok: boolean;
  error?: string;
}

/** The MD5 of every acknowledged write, by key. */
const acked = new Map<string, string>();
const ops: Op[] = [];

function md5(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

function errorText(e: unknown): string {
  if (e instanceof S3ServiceException) return `${e.name} ${e.$metadata.httpStatusCode}`;
  return e instanceof Error ? e.message.slice(0, 100) : String(e);
}

async function put(node: number, objectKey: string, size: number): Promise<Op> {
  const body = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
  const data = new Uint8Array(size).map((_, i) => body[i % body.length]);
  const startMs = Date.now();
  const op: Op = { node, startMs, ms: 0, ok: false };
  try {
    await clients[node].send(
      new PutObjectCommand({ Bucket: BUCKET, Key: objectKey, Body: data }),
      { abortSignal: AbortSignal.timeout(60_000) },
    );
    acked.set(objectKey, md5(data));
    op.ok = true;
  } catch (e) {
    op.error = errorText(e);
  }
  op.ms = Date.now() - startMs;
  ops.push(op);
  return op;
}

async function read(node: number, objectKey: string): Promise<string> {
  try {
    const r = await clients[node].send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }), {
      abortSignal: AbortSignal.timeout(60_000),
    });
    return md5(await r.Body!.transformToByteArray());
  } catch (e) {
    return e instanceof NoSuchKey ? "absent" : `error: ${errorText(e)}`;
  }
}

async function link(action: "cut" | "heal", i: number, j: number, end?: number): Promise<void> {
  const args = [new URL("./cluster.sh", import.meta.url).pathname, action, `${i}`, `${j}`];
  if (end !== undefined) args.push(`${end}`);
  const out = await new Deno.Command("bash", { args }).output();
  if (!out.success) throw new Error(`cluster.sh ${args.slice(1).join(" ")} failed`);
}

const SIZES = [1024, 256 * 1024, 4 * 1024 * 1024];
let stopping = false;
let written = 0;
/** Writes through `nodes` in turn until the scenario ends. */
async function writer(nodes: number[]): Promise<void> {
  while (!stopping) {
    const n = written++;
    await put(nodes[n % nodes.length], `${run}/${n}`, SIZES[n % SIZES.length]);
  }
}

const casKeys = [`${run}/shared/0`, `${run}/shared/1`];
const casWrites: ConditionalWrite[] = [];
const casReads: ConditionalRead[] = [];
const casStart = Date.now();
const sinceStart = () => Date.now() - casStart;

/** The ETag a GET through `node` returns for `objectKey`, null for 404. */
async function readEtag(node: number, objectKey: string): Promise<string | null> {
  try {
    const r = await clients[node].send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }), {
      abortSignal: AbortSignal.timeout(60_000),
    });
    await r.Body!.transformToByteArray();
    return r.ETag!.replaceAll('"', "");
  } catch (e) {
    if (e instanceof NoSuchKey) return null;
    throw e;
  }
}

/** Reads a shared key through `node`, then writes it if it is still what was read. */
async function conditionalWriter(node: number): Promise<void> {
  const label = `client of node ${node}`;
  while (!stopping) {
    const objectKey = casKeys[Math.floor(Math.random() * casKeys.length)];
    const start = sinceStart();
    let base: string | null;
    try {
      base = await readEtag(node, objectKey);
    } catch {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    casReads.push({ key: objectKey, seen: base, start, end: sinceStart(), label });
    const body = new TextEncoder().encode(`${label} ${crypto.randomUUID()}`);
    const write: ConditionalWrite = {
      key: objectKey,
      kind: base === null ? "create" : "put",
      base,
      writes: md5(body),
      outcome: "ok",
      start: sinceStart(),
      end: 0,
      label,
    };
    try {
      await clients[node].send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: objectKey,
          Body: body,
          ...(base === null ? { IfNoneMatch: "*" } : { IfMatch: `"${base}"` }),
        }),
        { abortSignal: AbortSignal.timeout(60_000) },
      );
    } catch (e) {
      const status = e instanceof S3ServiceException ? e.$metadata.httpStatusCode ?? 0 : 0;
      write.outcome = status >= 400 && status < 500 ? "rejected" : "ambiguous";
      if (write.outcome === "ambiguous") await new Promise((r) => setTimeout(r, 200));
    }
    write.end = sinceStart();
    casWrites.push(write);
  }
}

const cuts: Record<string, [number, number, number?][]> = {
  isolate: [[0, 2], [1, 2]],
  blackhole: [[0, 2, 2], [1, 2, 2]],
  asymmetric: [[0, 2]],
  flap: [[0, 2], [1, 2]],
};
const isolating = mode !== "asymmetric";
const writers = [
  writer([0, 1]),
  writer([0, 1]),
  writer(isolating ? [2] : [2, 0, 1]),
  ...[0, 1, 2].map(conditionalWriter),
];
await new Promise((r) => setTimeout(r, 3000));
const cutAt = Date.now();
if (mode === "flap") {
  while (Date.now() - cutAt < cutMs) {
    for (const [i, j] of cuts.flap) await link("cut", i, j);
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 3000));
    for (const [i, j] of cuts.flap) await link("heal", i, j);
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 3000));
  }
} else {
  for (const [i, j, end] of cuts[mode]) await link("cut", i, j, end);
  await new Promise((r) => setTimeout(r, cutMs));
  for (const [i, j] of cuts[mode]) await link("heal", i, j);
}
const healedAt = Date.now();
await new Promise((r) => setTimeout(r, 10_000));
stopping = true;
await Promise.all(writers);

function summary(node: number, from: number, to: number): string {
  const xs = ops.filter((o) => o.node === node && o.startMs + o.ms >= from && o.startMs <= to);
  const ms = xs.map((o) => o.ms).sort((a, b) => a - b);
  const errors = [...new Set(xs.filter((o) => !o.ok).map((o) => o.error))].join(", ");
  return `${xs.length} PUTs, ${xs.filter((o) => !o.ok).length} failed, p50 ${
    ms[Math.floor(ms.length / 2)] ?? "-"
  } ms, max ${ms.at(-1) ?? "-"} ms${errors ? ` (${errors})` : ""}`;
}
let problems = 0;
console.log(`${mode}: links cut for ${((healedAt - cutAt) / 1000).toFixed(0)} s`);
for (const node of [0, 1, 2]) {
  console.log(`  node ${node} while cut: ${summary(node, cutAt, healedAt)}`);
  const quorum = !isolating || node !== 2;
  if (quorum && mode !== "flap" && ops.some((o) => o.node === node && !o.ok)) problems++;
}
const firstAfterHeal = ops.find((o) => o.node === 2 && o.ok && o.startMs >= healedAt);
console.log(
  `  node 2 after the heal: first PUT acknowledged ${
    firstAfterHeal ? `${firstAfterHeal.startMs + firstAfterHeal.ms - healedAt} ms` : "never"
  } after it`,
);

// Every acknowledged write, through every node, until they agree (anti-entropy may take a while).
const deadline = Date.now() + 180_000;
let wrong: string[] = [];
do {
  wrong = [];
  for (const [objectKey, digest] of acked) {
    for (const node of [0, 1, 2]) {
      const seen = await read(node, objectKey);
      if (seen !== digest) wrong.push(`node ${node} ${objectKey}: ${seen}`);
    }
  }
  if (wrong.length > 0) await new Promise((r) => setTimeout(r, 5000));
} while (wrong.length > 0 && Date.now() < deadline);
console.log(
  `  ${acked.size} acknowledged writes read back through every node: ${
    wrong.length === 0 ? "all right" : `${wrong.length} wrong, e.g. ${wrong.slice(0, 3).join("; ")}`
  }`,
);

// The shared keys, through every node once every write has ended.
for (const objectKey of casKeys) {
  for (const node of [0, 1, 2]) {
    const start = sinceStart();
    const seen = await readEtag(node, objectKey);
    casReads.push({ key: objectKey, seen, start, end: sinceStart(), label: "end" });
  }
}
const outcomes = (o: ConditionalWrite["outcome"]) =>
  casWrites.filter((w) => w.outcome === o).length;
const turns = checkConditionalHistory(casWrites, casReads);
console.log(
  `  conditional writes: ${outcomes("ok")} acknowledged, ${
    outcomes("rejected")
  } refused (412, 404), ${outcomes("ambiguous")} failed; ${
    turns.length === 0 ? "the writers took turns" : turns.slice(0, 5).join("; ")
  }`,
);
Deno.exit(problems > 0 || wrong.length > 0 || turns.length > 0 ? 1 : 0);

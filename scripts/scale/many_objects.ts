/**
 * How a store holding many objects behaves: fills a bucket with small
 * objects (a node alone, or a 3-node cluster), and reports at each step the
 * write rate, each node's resident memory, its metadata and data on disk;
 * then its CPU while idle, a full listing, a restart (time to healthy,
 * memory after), and with a cluster, how long a node stopped during writes
 * takes to catch up.
 *
 *   deno run -A --unstable-kv scripts/scale/many_objects.ts \
 *     [--objects 1000000] [--size 4096] [--nodes 1|3] [--step 100000] [--idle-s 60]
 *     [--dir DIR (kept; by default a temporary directory, removed at the end)]
 */
import { parseArgs } from "node:util";
import { LoadGenerator } from "../../bench/load_client.ts";
import {
  BENCH_REGION,
  type Credentials,
  RemiseNode,
  startCluster,
} from "../../bench/remise_node.ts";
import { cpuSeconds, readStatus } from "../../bench/proc_stats.ts";

/** What /v1/workers says of a worker: anti-entropy's progress counts entries exchanged. */
interface WorkerStatus {
  name: string;
  progress?: string;
  lastRunMs?: number;
}

/**
 * Waits until a pass of `node`'s anti-entropy exchanged no entry, and says
 * what each pass since its start exchanged.
 */
async function caughtUp(node: RemiseNode): Promise<string> {
  const passes: number[] = [];
  let seenRunMs: number | undefined;
  let exchanged = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const workers = await node.adminJson<WorkerStatus[]>("GET", "/v1/workers");
    const ae = workers.find((w) => w.name === "anti-entropy");
    if (!ae?.lastRunMs || ae.lastRunMs === seenRunMs) continue;
    seenRunMs = ae.lastRunMs;
    const total = Number(/(\d+) entries exchanged/.exec(ae.progress ?? "")?.[1] ?? NaN);
    const delta = total - exchanged;
    passes.push(delta);
    exchanged = total;
    if (delta === 0) {
      return `entries exchanged by each pass: ${passes.join(", ")}`;
    }
  }
}

function procStats(pid: number): { rssMiB: number; hwmMiB: number; cpuS: number } {
  const memory = readStatus(pid);
  return {
    rssMiB: (memory?.rssKiB ?? NaN) / 1024,
    hwmMiB: (memory?.hwmKiB ?? NaN) / 1024,
    cpuS: cpuSeconds(pid),
  };
}

const { values: args } = parseArgs({
  options: {
    objects: { type: "string", default: "1000000" },
    size: { type: "string", default: "4096" },
    nodes: { type: "string", default: "1" },
    step: { type: "string", default: "100000" },
    dir: { type: "string" },
    "idle-s": { type: "string", default: "60" },
  },
});
const OBJECTS = Number(args.objects);
const SIZE = Number(args.size);
const NODES = Number(args.nodes);
const STEP = Number(args.step);
const IDLE_MS = Number(args["idle-s"]) * 1000;
const BUCKET = "many";
const DIRS = 1000;
const dir = args.dir ?? await Deno.makeTempDir({ prefix: "remise-scale-" });
const removeDir = args.dir === undefined;

const t0 = Date.now();
const say = (line: string) =>
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(7)}s] ${line}`);

async function duMiB(path: string): Promise<number> {
  const out = await new Deno.Command("du", { args: ["-sk", path] }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]) / 1024;
}

async function describe(nodes: RemiseNode[]): Promise<string> {
  const parts: string[] = [];
  for (const [i, n] of nodes.entries()) {
    const s = await procStats(n.pid);
    parts.push(
      `node${i} RSS ${s.rssMiB.toFixed(0)} MiB (peak ${s.hwmMiB.toFixed(0)}), meta ${
        (await duMiB(`${n.dir}/meta`)).toFixed(0)
      } MiB, data ${(await duMiB(n.dataDir)).toFixed(0)} MiB`,
    );
  }
  return parts.join("; ");
}

/** CPU seconds each node used over `ms` of idling. */
async function idleCpu(nodes: RemiseNode[], ms: number): Promise<string> {
  const before = await Promise.all(nodes.map((n) => procStats(n.pid)));
  await new Promise((r) => setTimeout(r, ms));
  const after = await Promise.all(nodes.map((n) => procStats(n.pid)));
  return nodes.map((_, i) =>
    `node${i} ${((after[i].cpuS - before[i].cpuS) / (ms / 1000) * 100).toFixed(1)}% of a core`
  ).join(", ");
}

async function target(load: LoadGenerator, node: RemiseNode, creds: Credentials) {
  await load.call({ cmd: "target", endpoint: node.endpoint, ...creds, region: BENCH_REGION });
}

interface SmallResult {
  ops: number;
  opsPerSec: number;
  errors: number;
  firstError?: string;
}

async function fill(load: LoadGenerator, from: number, count: number): Promise<SmallResult> {
  return await load.call<SmallResult>({
    cmd: "small",
    method: "PUT",
    bucket: BUCKET,
    prefix: "",
    dirs: DIRS,
    start: from,
    count,
    size: SIZE,
    concurrency: 32,
  });
}

async function list(load: LoadGenerator): Promise<string> {
  const r = await load.call<{ keys: number; keysPerSec: number }>({
    cmd: "list",
    bucket: BUCKET,
    prefix: "",
  });
  return `listed ${r.keys} keys at ${r.keysPerSec.toFixed(0)} keys/s`;
}

say(`${OBJECTS} objects of ${SIZE} B on ${NODES} node(s), in ${dir}`);
const nodes = NODES === 1
  ? [await RemiseNode.start(`${dir}/node0`)]
  : await startCluster(dir, NODES);
const creds = await nodes[0].createKey();
const load = LoadGenerator.start();
try {
  await target(load, nodes[0], creds);
  const made = await load.call<{ status: number; text: string }>({
    cmd: "request",
    method: "PUT",
    bucket: BUCKET,
  });
  if (made.status !== 200) throw new Error(`CreateBucket: ${made.status} ${made.text}`);
  say(`started: ${await describe(nodes)}`);

  let written = 0;
  while (written < OBJECTS) {
    const count = Math.min(STEP, OBJECTS - written);
    const r = await fill(load, written, count);
    written += count;
    say(
      `${written} objects: ${r.opsPerSec.toFixed(0)} PUT/s, ${r.errors} errors${
        r.firstError ? ` (${r.firstError})` : ""
      }; ${await describe(nodes)}`,
    );
  }
  say(`idle ${IDLE_MS / 1000} s: ${await idleCpu(nodes, IDLE_MS)}; ${await describe(nodes)}`);
  say(await list(load));

  if (nodes.length > 1) {
    // A node stopped while writes go on, then started: how long until it holds what it missed.
    const last = nodes[nodes.length - 1];
    await last.stop();
    const missed = Math.min(STEP, Math.ceil(OBJECTS / 10));
    const r = await fill(load, written, missed);
    written += missed;
    say(`node${nodes.length - 1} stopped; ${missed} more objects: ${r.opsPerSec.toFixed(0)} PUT/s`);
    const started = Date.now();
    await last.restart();
    say(`node${nodes.length - 1} up again in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say(
      `caught up: ${await caughtUp(last)}, ${
        ((Date.now() - started) / 1000).toFixed(0)
      } s after its start`,
    );
    say(`idle ${IDLE_MS / 1000} s: ${await idleCpu(nodes, IDLE_MS)}; ${await describe(nodes)}`);
  }

  // A restart of every node: time until healthy, memory once up.
  for (const n of nodes) await n.stop();
  const restartStart = Date.now();
  await Promise.all(nodes.map((n) => n.restart()));
  say(
    `restarted in ${((Date.now() - restartStart) / 1000).toFixed(1)} s: ${await describe(nodes)}`,
  );
  await target(load, nodes[0], creds); // new connections: the old ones closed with the nodes
  say(await list(load));
  say(`idle ${IDLE_MS / 1000} s: ${await idleCpu(nodes, IDLE_MS)}; ${await describe(nodes)}`);
} finally {
  load.process.kill("SIGTERM");
  await Promise.all(nodes.map((n) => n.stop()));
  if (removeDir) await Deno.remove(dir, { recursive: true });
}

/**
 * How fast a node rebuilt from empty disks fetches its blocks, on an idle
 * 3-node cluster (replication factor 3, loopback): uploads objects of one
 * block each, stops node 2, empties its metadata_dir and data_dir, starts it
 * again with its certificate (as README's rebuild says), and reports how long
 * until it holds every block node 0 holds, with each node's CPU meanwhile.
 *
 *   deno run -A --unstable-kv scripts/scale/rebuild.ts \
 *     [--objects 5000] [--block-size 65536] [--cpu-prof]
 *     [--dir DIR (kept, with the CPU profiles; by default a temporary directory, removed at the end)]
 */
import { parseArgs } from "node:util";
import { LoadGenerator } from "../../bench/load_client.ts";
import { BENCH_REGION, startCluster } from "../../bench/remise_node.ts";
import { cpuSeconds } from "../../bench/proc_stats.ts";

const { values: args } = parseArgs({
  options: {
    objects: { type: "string", default: "5000" },
    "block-size": { type: "string", default: "65536" },
    dir: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
  },
});
const OBJECTS = Number(args.objects);
const BLOCK_SIZE = Number(args["block-size"]);
const BUCKET = "rebuild";
const dir = args.dir ?? await Deno.makeTempDir({ prefix: "remise-rebuild-" });
const removeDir = args.dir === undefined;

const t0 = Date.now();
const say = (line: string) =>
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(7)}s] ${line}`);

/** Block files under a data directory (every file but the node's marker and ballast). */
async function blockCount(dataDir: string): Promise<number> {
  const out = await new Deno.Command("find", {
    args: [dataDir, "-type", "f", "-name", "[0-9a-f]*", "-not", "-path", "*/corrupt/*"],
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => /\/[0-9a-f]{64}$/.test(l))
    .length;
}

const nodes = await startCluster(dir, 3, {
  blockSize: BLOCK_SIZE,
  denoFlags: args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${dir}/prof`] : [],
});
const creds = await nodes[0].createKey();
const load = LoadGenerator.start();
try {
  await load.call({ cmd: "target", endpoint: nodes[0].endpoint, ...creds, region: BENCH_REGION });
  const made = await load.call<{ status: number; text: string }>({
    cmd: "request",
    method: "PUT",
    bucket: BUCKET,
  });
  if (made.status !== 200) throw new Error(`CreateBucket: ${made.status} ${made.text}`);
  const filled = await load.call<{ opsPerSec: number; errors: number }>({
    cmd: "small",
    method: "PUT",
    bucket: BUCKET,
    prefix: "",
    count: OBJECTS,
    size: BLOCK_SIZE,
    concurrency: 16,
  });
  const expected = await blockCount(nodes[0].dataDir);
  say(
    `${OBJECTS} objects of ${BLOCK_SIZE} B: ${
      filled.opsPerSec.toFixed(0)
    } PUT/s, ${filled.errors} errors; node0 holds ${expected} blocks`,
  );
  // Let the cluster settle (every node has the blocks) before the loss.
  for (;;) {
    const counts = await Promise.all(nodes.map((n) => blockCount(n.dataDir)));
    if (counts.every((c) => c === expected)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }

  const lost = nodes[2];
  await lost.stop();
  await Deno.remove(`${lost.dir}/meta`, { recursive: true });
  await Deno.remove(lost.dataDir, { recursive: true });
  say("node2 stopped, its metadata_dir and data_dir removed");
  const cpu0 = nodes.map((n) => cpuSeconds(n.pid));
  const started = Date.now();
  await lost.restart();
  cpu0[2] = cpuSeconds(lost.pid);
  let held = 0;
  let lastReport = Date.now();
  while ((held = await blockCount(lost.dataDir)) < expected) {
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      say(`node2 holds ${held} of ${expected} blocks`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const seconds = (Date.now() - started) / 1000;
  const cpu = nodes.map((n, i) => ((cpuSeconds(n.pid) - cpu0[i]) / seconds * 100).toFixed(0));
  say(
    `node2 fetched ${expected} blocks in ${seconds.toFixed(1)} s: ${
      (expected / seconds).toFixed(0)
    } blocks/s, ${(expected * BLOCK_SIZE / 2 ** 20 / seconds).toFixed(1)} MiB/s; CPU node0 ${
      cpu[0]
    }%, node1 ${cpu[1]}%, node2 ${cpu[2]}% of a core`,
  );
} finally {
  load.process.kill("SIGTERM");
  await Promise.all(nodes.map((n) => n.stop()));
  if (removeDir) await Deno.remove(dir, { recursive: true });
}

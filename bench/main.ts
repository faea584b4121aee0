/**
 * `deno task bench`: how close remise comes to what this machine allows.
 *
 * Measures the ceilings (hashing, disk, a do-nothing HTTP server driven by the
 * same load generator), then a single remise node and a 3-node cluster with
 * replication factor 3, all started here on loopback in temporary
 * directories; prints one table and, with --out, writes every figure as JSON.
 * With --endpoint it measures an already running S3 server instead.
 *
 * See bench/README.md for what every figure means.
 */
import { Command } from "commander";
import { diskRates, hashRate } from "./ceilings.ts";
import { LoadGenerator } from "./load_client.ts";
import {
  FULL_PLAN,
  largePhases,
  listPhases,
  type Measures,
  mediumPhases,
  multipartPhase,
  type Plan,
  putLatencyPhase,
  QUICK_PLAN,
  smallPhases,
  type SuiteContext,
  ttfbPhases,
} from "./phases.ts";
import { ProcSampler } from "./proc_stats.ts";
import { BENCH_REGION, type RemiseNode, RemiseNode as Node, startCluster } from "./remise_node.ts";
import { buildRows, type Ceilings, missedTargets, renderTable } from "./report.ts";

const ALL_PHASES = ["large", "ttfb", "multipart", "small", "medium", "list", "cluster"] as const;
const NULL_SERVER = new URL("./null_server.ts", import.meta.url).pathname;

interface Options {
  quick?: boolean;
  out?: string;
  endpoint?: string;
  accessKey?: string;
  secretKey?: string;
  region: string;
  dir?: string;
  phases?: string;
  serverFlags?: string;
  keep?: boolean;
}

const program = new Command()
  .name("deno task bench --")
  .description(
    "Measures remise against the limits of this machine (see bench/README.md).",
  )
  .option("--quick", "small sizes and short phases (about 30 s)")
  .option("--out <file>", "also write every figure as JSON to FILE")
  .option("--endpoint <url>", "measure this running S3 server instead of starting remise")
  .option("--access-key <id>", "access key id for --endpoint")
  .option("--secret-key <secret>", "secret key for --endpoint")
  .option("--region <region>", "region for --endpoint", "us-east-1")
  .option(
    "--dir <dir>",
    "parent of the temporary directories (data, ceilings); default: system temp",
  )
  .option(
    "--phases <list>",
    `comma-separated subset of: ${ALL_PHASES.join(",")} (default: all)`,
  )
  .option(
    "--server-flags <flags>",
    'extra `deno run` flags for the remise servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"',
  )
  .option("--keep", "keep the temporary directories")
  .parse(Deno.args, { from: "user" });

const opts = program.opts<Options>();
if (opts.endpoint && (!opts.accessKey || !opts.secretKey)) {
  program.error("--endpoint needs --access-key and --secret-key");
}
const phases = new Set(opts.phases ? opts.phases.split(",").map((p) => p.trim()) : ALL_PHASES);
for (const p of phases) {
  if (!(ALL_PHASES as readonly string[]).includes(p)) {
    program.error(`unknown phase "${p}" (expected: ${ALL_PHASES.join(", ")})`);
  }
}
const plan: Plan = opts.quick ? QUICK_PLAN : FULL_PLAN;
const serverFlags = opts.serverFlags ? opts.serverFlags.split(/\s+/).filter(Boolean) : [];
const log = (line: string) => console.error(line);
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

const root = await Deno.makeTempDir({ dir: opts.dir, prefix: "remise-bench-" });
const load = LoadGenerator.start();
const running = new Set<{ stop(): Promise<void> }>();
const failures: string[] = [];

async function cleanup() {
  await Promise.all([...running].map((p) => p.stop().catch(() => {})));
  running.clear();
  await load.close().catch(() => {});
  if (!opts.keep) await Deno.remove(root, { recursive: true }).catch(() => {});
}
const onSignal = () => {
  log("interrupted: stopping servers");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

/** Runs a group of phases; a failure is recorded and the benchmark goes on. */
async function group(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = `${name}: ${(e as Error).message}`;
    failures.push(msg);
    log(`FAILED ${msg}`);
  }
}

function suiteContext(bucket: string, sampler?: ProcSampler): SuiteContext {
  return {
    load,
    bucket,
    plan,
    sampler,
    created: [],
    log,
    createBucket: async (name: string) => {
      const r = await load.call<{ status: number; text: string }>({
        cmd: "request",
        method: "PUT",
        bucket: name,
      });
      if (r.status !== 200 && !/BucketAlreadyOwnedByYou/.test(r.text)) {
        throw new Error(`CreateBucket ${name}: HTTP ${r.status} ${r.text}`);
      }
    },
  };
}

async function runSuite(ctx: SuiteContext, out: Measures, withList: boolean) {
  if (phases.has("large")) await largePhases(ctx, out);
  if (phases.has("ttfb")) await ttfbPhases(ctx, out);
  if (phases.has("multipart")) await multipartPhase(ctx, out);
  if (phases.has("small")) await smallPhases(ctx, out);
  if (phases.has("medium")) await mediumPhases(ctx, out);
  if (withList && phases.has("list")) await listPhases(ctx, out);
}

// --- ceilings ---
const ceilings: Ceilings = { md5MiBps: NaN, sha256MiBps: NaN, diskBytes: plan.diskBytes };
const client: Measures = {};
const single: Measures = {};
const cluster: Measures = {};

try {
  log(`remise bench (${plan.quick ? "quick" : "full"}), data in ${root}`);
  log(`[${elapsed()}] ceilings: hashing and disk`);
  ceilings.md5MiBps = hashRate("md5", plan.hashBytes);
  ceilings.sha256MiBps = hashRate("sha256", plan.hashBytes);
  log(
    `  MD5 ${ceilings.md5MiBps.toFixed(0)} MiB/s, SHA-256 ${ceilings.sha256MiBps.toFixed(0)} MiB/s`,
  );
  await group("disk ceiling", async () => {
    const d = await diskRates(`${root}/ceiling`, plan.diskBytes);
    ceilings.diskWriteMiBps = d.writeMiBps;
    ceilings.diskReadMiBps = d.readMiBps;
    log(`  disk write ${d.writeMiBps.toFixed(0)} MiB/s, read ${d.readMiBps.toFixed(0)} MiB/s`);
  });

  // --- client + loopback ceiling: the do-nothing server ---
  await group("do-nothing server", async () => {
    log(`[${elapsed()}] client ceiling: do-nothing server`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", NULL_SERVER],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const stopper = {
      async stop() {
        try {
          child.kill("SIGTERM");
        } catch {
          // gone
        }
        await child.status;
      },
    };
    running.add(stopper);
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { done, value } = await reader.read();
        if (done) throw new Error("the do-nothing server exited");
        text += value;
      }
      reader.releaseLock();
      child.stdout.cancel().catch(() => {});
      const { port } = JSON.parse(text.split("\n")[0]);
      await load.call({
        cmd: "target",
        endpoint: `http://127.0.0.1:${port}`,
        accessKey: "bench",
        secretKey: "bench",
        region: BENCH_REGION,
      });
      const ctx = { ...suiteContext("bench", new ProcSampler({ null: child.pid })), bestOf: 3 };
      await runSuite(ctx, client, false);
    } finally {
      await stopper.stop();
      running.delete(stopper);
    }
  });

  // --- a single remise node, or the endpoint ---
  if (opts.endpoint) {
    await group("endpoint", async () => {
      log(`[${elapsed()}] endpoint ${opts.endpoint}`);
      await load.call({
        cmd: "target",
        endpoint: opts.endpoint!,
        accessKey: opts.accessKey!,
        secretKey: opts.secretKey!,
        region: opts.region,
      });
      const bucket = `remise-bench-${crypto.randomUUID().slice(0, 8)}`;
      const ctx = suiteContext(bucket);
      await ctx.createBucket!(bucket);
      try {
        await runSuite(ctx, single, true);
      } finally {
        log(`[${elapsed()}] removing what the benchmark wrote`);
        const byBucket = new Map<string, typeof ctx.created>();
        for (const c of ctx.created) byBucket.set(c.bucket, [...(byBucket.get(c.bucket) ?? []), c]);
        for (const [b, entries] of byBucket) {
          for (const name of entries.flatMap((e) => e.names ?? [])) {
            await load.call({ cmd: "request", method: "DELETE", bucket: b, key: name });
          }
          const numbered = entries.flatMap((e) => e.keys ?? []);
          if (numbered.length) {
            await load.call({
              cmd: "small",
              method: "DELETE",
              bucket: b,
              keys: numbered,
              concurrency: 32,
              ignoreMissing: true,
            });
          }
          await load.call({ cmd: "request", method: "DELETE", bucket: b });
        }
      }
    });
  } else if (["large", "ttfb", "multipart", "small", "medium", "list"].some((p) => phases.has(p))) {
    await group("single node", async () => {
      log(`[${elapsed()}] single node`);
      const node = await Node.start(`${root}/single`, { denoFlags: serverFlags });
      running.add(node);
      try {
        const key = await node.createKey();
        await load.call({
          cmd: "target",
          endpoint: node.endpoint,
          accessKey: key.accessKey,
          secretKey: key.secretKey,
          region: BENCH_REGION,
        });
        const sampler = new ProcSampler({ node0: node.pid });
        const ctx = suiteContext("bench", sampler);
        await ctx.createBucket!("bench");
        await runSuite(ctx, single, true);
      } finally {
        await node.stop();
        running.delete(node);
        if (!opts.keep) await Deno.remove(`${root}/single`, { recursive: true }).catch(() => {});
      }
    });
  }
  if (!opts.endpoint && phases.has("cluster")) {
    await group("cluster", async () => {
      log(`[${elapsed()}] 3-node cluster, replication factor 3`);
      const nodes: RemiseNode[] = await startCluster(`${root}/cluster`, 3, {
        denoFlags: serverFlags,
      });
      for (const n of nodes) running.add(n);
      try {
        const key = await nodes[0].createKey();
        await load.call({
          cmd: "target",
          endpoint: nodes[0].endpoint,
          accessKey: key.accessKey,
          secretKey: key.secretKey,
          region: BENCH_REGION,
        });
        const sampler = new ProcSampler(
          Object.fromEntries(nodes.map((n, i) => [`node${i}`, n.pid])),
        );
        const ctx: SuiteContext = {
          ...suiteContext("bench", sampler),
          plan: {
            ...plan,
            largeBytes: plan.clusterLargeBytes,
            largeCount: plan.clusterLargeCount,
            smallMs: plan.clusterSmallMs,
          },
          want: (name) =>
            [
              "large.put.seq",
              "small.PUT.c32",
              "small.GET.c32",
              "medium.PUT.c32",
              "medium.GET.c32",
              "put64k.c1",
            ].includes(name),
        };
        await ctx.createBucket!("bench");
        await largePhases(ctx, cluster);
        // The memory target holds on every node: the single node's parallel uploads, through node 0.
        await largePhases({
          ...ctx,
          plan: { ...ctx.plan, largeBytes: plan.largeBytes, largeCount: plan.largeCount },
          want: (name) => name === "large.put.par",
        }, cluster);
        await smallPhases(ctx, cluster);
        await mediumPhases(ctx, cluster);
        await putLatencyPhase(ctx, cluster, "put64k.c1", 64 * 1024);
      } finally {
        await Promise.all(nodes.map(async (n) => {
          await n.stop();
          running.delete(n);
        }));
      }
    });
  }
} finally {
  await cleanup();
}

// --- report ---
const rows = buildRows({
  plan,
  ceilings,
  client,
  single,
  cluster,
  singleLabel: opts.endpoint ? "endpoint" : "single",
});
const missed = missedTargets(rows);
console.log(renderTable(rows));
console.log();
if (missed.length) {
  console.log(`Targets missed (${missed.length}):`);
  for (const m of missed) console.log(`  - ${m}`);
} else {
  console.log("All targets met.");
}
const notes = rows.filter((r) => r.note).map((r) => `${r.phase} ${r.metric}: ${r.note}`);
for (const f of failures) notes.push(`FAILED ${f}`);
if (notes.length) {
  console.log("Notes:");
  for (const n of notes) console.log(`  - ${n}`);
}
console.log(
  `gen cpu: load generator CPU (% of one core); srv cpu: remise processes; ` +
    `ceiling bound: client = do-nothing server, disk-w/disk-r = disk, md5 = hashing. ` +
    `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, ` +
    `Deno ${Deno.version.deno}; ${elapsed()}.`,
);

if (opts.out) {
  await Deno.writeTextFile(
    opts.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        mode: plan.quick ? "quick" : "full",
        endpoint: opts.endpoint ?? null,
        machine: {
          os: Deno.build.os,
          arch: Deno.build.arch,
          cores: navigator.hardwareConcurrency,
          deno: Deno.version.deno,
        },
        plan,
        ceilings,
        client,
        single,
        cluster,
        rows,
        missed,
        failures,
        seconds: (performance.now() - started) / 1000,
      },
      null,
      2,
    ) + "\n",
  );
  log(`wrote ${opts.out}`);
}
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
Deno.exit(failures.length ? 1 : 0);

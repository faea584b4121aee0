/**
 * The benchmark's phases, run against one S3 target (the do-nothing server,
 * a remise node, a cluster's node 0 or an external endpoint) through the load
 * generator. Every phase yields a `Measure`; the process sampler, when there
 * is one, adds the servers' peak memory and CPU of that phase.
 */
import type { LoadGenerator } from "./load_client.ts";
import type { KeyRange } from "./load.ts";
import type { ProcPhaseStats, ProcSampler } from "./proc_stats.ts";

export const MiB = 1024 * 1024;

export interface Plan {
  quick: boolean;
  /** Size of each of the 4 large objects. */
  largeBytes: number;
  largeCount: number;
  smallBytes: number;
  smallMs: number;
  /** Objects of one block or less that are not inline: most files of a photo or document store. */
  mediumBytes: number;
  listCounts: number[];
  listDirs: number;
  ttfbBytes: number;
  ttfbTries: number;
  rangeBytes: number;
  multipartBytes: number;
  partBytes: number;
  multipartConcurrency: number;
  /** Multipart uploads of `largeBytes` run at once, in parts of `partBytes`... */
  parallelUploads: number;
  /** ...with this many parts in flight each (aws-cli's default is 10). */
  parallelUploadParts: number;
  diskBytes: number;
  hashBytes: number;
  clusterLargeBytes: number;
  clusterLargeCount: number;
  clusterSmallMs: number;
}

export const FULL_PLAN: Plan = {
  quick: false,
  largeBytes: 256 * MiB,
  largeCount: 4,
  smallBytes: 4096,
  smallMs: 5000,
  mediumBytes: 64 * 1024,
  listCounts: [10_000, 100_000],
  listDirs: 100,
  ttfbBytes: 64 * MiB,
  ttfbTries: 20,
  rangeBytes: 1 * MiB,
  multipartBytes: 512 * MiB,
  partBytes: 8 * MiB,
  multipartConcurrency: 4,
  parallelUploads: 4,
  parallelUploadParts: 10,
  diskBytes: 1024 * MiB,
  hashBytes: 256 * MiB,
  clusterLargeBytes: 128 * MiB,
  clusterLargeCount: 2,
  clusterSmallMs: 5000,
};

export const QUICK_PLAN: Plan = {
  ...FULL_PLAN,
  quick: true,
  largeBytes: 32 * MiB,
  smallMs: 1000,
  listCounts: [10_000],
  ttfbTries: 10,
  multipartBytes: 64 * MiB,
  diskBytes: 256 * MiB,
  clusterLargeBytes: 32 * MiB,
  clusterLargeCount: 1,
  clusterSmallMs: 1000,
};

export interface Measure {
  value: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
  genCpuPct?: number;
  procs?: Record<string, ProcPhaseStats>;
  errors?: number;
  note?: string;
  raw: Record<string, unknown>;
}

export type Measures = Record<string, Measure>;

/** What one suite run needs. */
export interface SuiteContext {
  load: LoadGenerator;
  bucket: string;
  plan: Plan;
  sampler?: ProcSampler;
  /** Names of the measures wanted (undefined: all the suite knows). */
  want?: (name: string) => boolean;
  /** Makes a bucket (remise / external endpoint); undefined for the null server. */
  createBucket?: (name: string) => Promise<void>;
  /**
   * Runs of each large/ttfb/multipart phase, the best one kept: the ceilings
   * (do-nothing server) are short and noisy, and a ceiling is the best the
   * client and loopback can do.
   */
  bestOf?: number;
  /** Keys this run created, for cleanup of an external endpoint. */
  created: { bucket: string; keys?: KeyRange[]; names?: string[] }[];
  log: (line: string) => void;
}

async function phase(
  ctx: SuiteContext,
  out: Measures,
  name: string,
  fn: () => Promise<Omit<Measure, "procs">>,
  runs = 1,
): Promise<void> {
  if (ctx.want && !ctx.want(name)) return;
  const t0 = performance.now();
  let measure: Measure | undefined;
  for (let i = 0; i < runs; i++) {
    let m: Measure;
    if (ctx.sampler) {
      const { value, procs } = await ctx.sampler.measure(fn);
      m = { ...value, procs };
    } else {
      m = await fn();
    }
    const better = m.unit === "ms"
      ? m.value < (measure?.value ?? Infinity)
      : m.value > (measure?.value ?? -Infinity);
    if (better) measure = m;
  }
  if (!measure) return;
  out[name] = measure;
  const extra = measure.p50Ms !== undefined
    ? ` p50 ${measure.p50Ms.toFixed(2)} ms p99 ${measure.p99Ms?.toFixed(2)} ms`
    : "";
  ctx.log(
    `  ${name}: ${fmt(measure.value)} ${measure.unit}${extra} (${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s)${measure.errors ? ` — ${measure.errors} errors` : ""}`,
  );
}

export function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "-";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

interface SmallResult {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
  consumed: number;
  genCpuPct: number;
}

/**
 * One client writing `size`-byte objects one at a time: the latency of a
 * write (p50, p99), which a throughput phase hides (a 40 ms stall per
 * replicated block went unseen at c=32).
 */
export async function putLatencyPhase(
  ctx: SuiteContext,
  out: Measures,
  name: string,
  size: number,
) {
  await phase(ctx, out, name, async () =>
    smallMeasure(
      await ctx.load.call<SmallResult>({
        cmd: "small",
        method: "PUT",
        bucket: ctx.bucket,
        prefix: `latency-${size}/`,
        size,
        concurrency: 1,
        durationMs: ctx.plan.smallMs,
      }),
    ));
}

function smallMeasure(r: SmallResult): Omit<Measure, "procs"> {
  return {
    // failed requests do not count
    value: (r.ops - r.errors) / r.seconds,
    unit: "ops/s",
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    genCpuPct: r.genCpuPct,
    errors: r.errors,
    note: r.errors ? `${r.errors} of ${r.ops} requests failed, first: ${r.firstError}` : undefined,
    raw: { ...r },
  };
}

interface RateResult {
  mibPerSec: number;
  genCpuPct: number;
}

/** Large objects: PUT and GET of `largeCount` objects, one stream then all in parallel. */
export async function largePhases(ctx: SuiteContext, out: Measures): Promise<void> {
  const { plan, load, bucket } = ctx;
  const keys = (kind: string) =>
    Array.from({ length: plan.largeCount }, (_, i) => `large/${kind}${i}`);
  ctx.created.push({
    bucket,
    keys: [["large/seq", 0, plan.largeCount], ["large/par", 0, plan.largeCount]],
  });
  const run = async (method: "PUT" | "GET", kind: string, parallel: number) => {
    const r = await load.call<RateResult>({
      cmd: "large",
      method,
      bucket,
      keys: keys(kind),
      size: plan.largeBytes,
      parallel,
    });
    return { value: r.mibPerSec, unit: "MiB/s", genCpuPct: r.genCpuPct, raw: { ...r } };
  };
  const runs = ctx.bestOf ?? 1;
  await phase(ctx, out, "large.put.seq", () => run("PUT", "seq", 1), runs);
  await phase(ctx, out, "large.put.par", () => run("PUT", "par", plan.largeCount), runs);
  await phase(ctx, out, "large.get.seq", () => run("GET", "seq", 1), runs);
  await phase(ctx, out, "large.get.par", () => run("GET", "par", plan.largeCount), runs);
}

/** Time to first byte of a whole-object GET and of a range GET. */
export async function ttfbPhases(ctx: SuiteContext, out: Measures): Promise<void> {
  const { plan, load, bucket } = ctx;
  if (ctx.want && !ctx.want("ttfb.full") && !ctx.want("ttfb.range")) return;
  const key = "ttfb/object";
  ctx.created.push({ bucket, names: [key] });
  await load.call({
    cmd: "large",
    method: "PUT",
    bucket,
    keys: [key],
    size: plan.ttfbBytes,
    parallel: 1,
  });
  interface TtfbResult {
    p50Ms: number;
    p90Ms: number;
    totalP50Ms: number;
    genCpuPct: number;
  }
  const run = async (range: boolean) => {
    const r = await load.call<TtfbResult>({
      cmd: "ttfb",
      bucket,
      key,
      tries: plan.ttfbTries,
      ...(range ? { rangeBytes: plan.rangeBytes, objectSize: plan.ttfbBytes } : {}),
    });
    return { value: r.p50Ms, unit: "ms", genCpuPct: r.genCpuPct, raw: { ...r } };
  };
  await phase(ctx, out, "ttfb.full", () => run(false), ctx.bestOf);
  await phase(ctx, out, "ttfb.range", () => run(true), ctx.bestOf);
}

export async function multipartPhase(ctx: SuiteContext, out: Measures): Promise<void> {
  const { plan, load, bucket } = ctx;
  ctx.created.push({ bucket, names: ["multipart/object"] });
  await phase(ctx, out, "multipart", async () => {
    const r = await load.call<RateResult>({
      cmd: "multipart",
      bucket,
      key: "multipart/object",
      size: plan.multipartBytes,
      partSize: plan.partBytes,
      concurrency: plan.multipartConcurrency,
    });
    return { value: r.mibPerSec, unit: "MiB/s", genCpuPct: r.genCpuPct, raw: { ...r } };
  }, ctx.bestOf);
  // As aws-cli uploads several files: the memory of many parts in flight at once.
  const key = "multipart/parallel";
  ctx.created.push({
    bucket,
    names: Array.from({ length: plan.parallelUploads }, (_, i) => `${key}.${i + 1}`),
  });
  await phase(ctx, out, "multipart.parallel", async () => {
    const r = await load.call<RateResult>({
      cmd: "multipart",
      bucket,
      key,
      size: plan.largeBytes,
      partSize: plan.partBytes,
      concurrency: plan.parallelUploadParts,
      uploads: plan.parallelUploads,
    });
    return { value: r.mibPerSec, unit: "MiB/s", genCpuPct: r.genCpuPct, raw: { ...r } };
  }, ctx.bestOf);
}

/**
 * Medium objects (`mediumBytes`, stored in a block of their own, not inline):
 * PUT then GET at concurrency 32, each for a fixed time.
 */
export async function mediumPhases(ctx: SuiteContext, out: Measures) {
  const { plan, load, bucket } = ctx;
  let made: KeyRange | undefined;
  await phase({ ...ctx, want: undefined }, out, "medium.PUT.c32", async () => {
    const r = await load.call<SmallResult>({
      cmd: "small",
      method: "PUT",
      bucket,
      prefix: "medium/",
      size: plan.mediumBytes,
      concurrency: 32,
      durationMs: plan.smallMs,
    });
    made = ["medium/", 0, r.consumed];
    return smallMeasure(r);
  });
  if (!made) return;
  ctx.created.push({ bucket, keys: [made] });
  await phase(ctx, out, "medium.GET.c32", async () =>
    smallMeasure(
      await load.call<SmallResult>({
        cmd: "small",
        method: "GET",
        bucket,
        keys: [made!],
        concurrency: 32,
        durationMs: plan.smallMs,
      }),
    ));
}

/**
 * Small objects: PUT, GET, HEAD, DELETE at concurrency 1 and 32, each for a
 * fixed time. GET and HEAD read the keys the PUTs made; DELETE removes them
 * (a DELETE phase that runs out of keys stops early: its rate stays valid).
 */
export async function smallPhases(ctx: SuiteContext, out: Measures, prefix = "small/") {
  const { plan, load, bucket } = ctx;
  const made: Record<number, KeyRange> = {};
  for (const c of [1, 32]) {
    const name = `small.PUT.c${c}`;
    // GET/HEAD/DELETE need the PUT keys: run the PUT when any of them is wanted
    const needed = !ctx.want ||
      ["PUT", "GET", "HEAD", "DELETE"].some((m) => ctx.want!(`small.${m}.c${c}`));
    if (!needed) continue;
    const p = `${prefix}c${c}/`;
    await phase({ ...ctx, want: undefined }, out, name, async () => {
      const r = await load.call<SmallResult>({
        cmd: "small",
        method: "PUT",
        bucket,
        prefix: p,
        size: plan.smallBytes,
        concurrency: c,
        durationMs: plan.smallMs,
      });
      made[c] = [p, 0, r.consumed];
      return smallMeasure(r);
    });
    ctx.created.push({ bucket, keys: [made[c]] });
  }
  const readKeys = made[32] ?? made[1];
  for (const method of ["GET", "HEAD"] as const) {
    for (const c of [1, 32]) {
      await phase(ctx, out, `small.${method}.c${c}`, async () =>
        smallMeasure(
          await load.call<SmallResult>({
            cmd: "small",
            method,
            bucket,
            keys: [readKeys],
            concurrency: c,
            durationMs: plan.smallMs,
          }),
        ));
    }
  }
  // DELETE c=N removes the keys PUT c=N made, each once (a DELETE faster than
  // the PUT runs out of keys before the phase's time: its rate stays valid)
  for (const c of [1, 32]) {
    if (!made[c]) continue;
    await phase(ctx, out, `small.DELETE.c${c}`, async () => {
      const r = await load.call<SmallResult>({
        cmd: "small",
        method: "DELETE",
        bucket,
        keys: [made[c]],
        concurrency: c,
        durationMs: plan.smallMs,
      });
      const m = smallMeasure(r);
      if (r.seconds < plan.smallMs / 1000 * 0.9) {
        m.note = (m.note ? m.note + "; " : "") +
          `ran out of keys (${r.ops}) after ${r.seconds.toFixed(2)} s`;
      }
      return m;
    });
  }
}

/** Listing: fills a bucket per size with tiny objects (concurrency 32), then lists it. */
export async function listPhases(ctx: SuiteContext, out: Measures): Promise<void> {
  const { plan, load } = ctx;
  for (const count of plan.listCounts) {
    const tag = count >= 1000 ? `${count / 1000}k` : String(count);
    const names = [`list.${tag}.fill`, `list.${tag}.flat`, `list.${tag}.delim`];
    if (ctx.want && !names.some(ctx.want)) continue;
    const bucket = `${ctx.bucket}-list${tag}`;
    await ctx.createBucket?.(bucket);
    ctx.created.push({ bucket, keys: [["", 0, count, plan.listDirs]] });
    await phase({ ...ctx, want: undefined }, out, names[0], async () =>
      smallMeasure(
        await load.call<SmallResult>({
          cmd: "small",
          method: "PUT",
          bucket,
          prefix: "",
          dirs: plan.listDirs,
          count,
          size: 16,
          concurrency: 32,
        }),
      ));
    interface ListResult {
      keys: number;
      prefixes: number;
      requests: number;
      keysPerSec: number;
      genCpuPct: number;
    }
    for (const delim of [false, true]) {
      await phase(ctx, out, delim ? names[2] : names[1], async () => {
        const r = await load.call<ListResult>({
          cmd: "list",
          bucket,
          prefix: "",
          ...(delim ? { delimiter: "/" } : {}),
        });
        return {
          value: r.keysPerSec,
          unit: "keys/s",
          genCpuPct: r.genCpuPct,
          note: r.keys !== count ? `listed ${r.keys} keys of ${count}` : undefined,
          raw: { ...r },
        };
      });
    }
  }
}

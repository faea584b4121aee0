/**
 * The benchmark's table: every figure with its ceiling (measured in the same
 * run), the ratio to it, and the targets of issue 6 with pass / MISS.
 */
import { fmt, type Measure, type Measures, MiB, type Plan } from "./phases.ts";

export interface Ceilings {
  md5MiBps: number;
  sha256MiBps: number;
  diskWriteMiBps?: number;
  diskReadMiBps?: number;
  diskBytes: number;
}

export interface Target {
  text: string;
  /** Undefined when the figure it needs is missing (a phase not run). */
  pass?: boolean;
}

export interface Row {
  phase: string;
  metric: string;
  value: number;
  unit: string;
  ceiling?: number;
  /** What the ceiling is: client (do-nothing server), disk-w, disk-r, md5, single (node). */
  ceilingBy?: string;
  /** Fraction of the ceiling reached; for times, ceiling time / measured time. */
  ratio?: number;
  targets: Target[];
  p50Ms?: number;
  p99Ms?: number;
  /** Load generator CPU, % of one core. */
  genCpuPct?: number;
  /** Server CPU (all remise processes), % of one core. */
  srvCpuPct?: number;
  /** Peak resident memory of the (largest) remise process in this phase, MiB. */
  rssMiB?: number;
  note?: string;
}

interface Inputs {
  plan: Plan;
  ceilings: Ceilings;
  client: Measures;
  single: Measures;
  cluster: Measures;
  /** "single" for a remise node started here, "endpoint" for --endpoint. */
  singleLabel: string;
}

const size = (bytes: number) =>
  bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`;

function bound(candidates: [number | undefined, string][]): { value?: number; by?: string } {
  let best: { value?: number; by?: string } = {};
  for (const [v, by] of candidates) {
    if (v === undefined || !Number.isFinite(v)) continue;
    if (best.value === undefined || v < best.value) best = { value: v, by };
  }
  return best;
}

function fromMeasure(
  phase: string,
  metric: string,
  m: Measure,
  ceiling: { value?: number; by?: string },
  lowerIsBetter = false,
): Row {
  const procs = Object.values(m.procs ?? {});
  const ratio = ceiling.value === undefined
    ? undefined
    : lowerIsBetter
    ? ceiling.value / m.value
    : m.value / ceiling.value;
  return {
    phase,
    metric,
    value: m.value,
    unit: m.unit,
    ceiling: ceiling.value,
    ceilingBy: ceiling.by,
    ratio,
    targets: [],
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    genCpuPct: m.genCpuPct,
    srvCpuPct: procs.length ? procs.reduce((n, p) => n + p.cpuPct, 0) : undefined,
    rssMiB: procs.length ? Math.max(...procs.map((p) => p.peakRssMiB)) : undefined,
    note: m.note,
  };
}

const atLeast = (row: Row, min: number): Target => ({
  text: `ratio ≥ ${min}`,
  pass: row.ratio === undefined || !Number.isFinite(row.ratio) ? undefined : row.ratio >= min,
});

const tailTarget = (row: Row): Target => ({
  text: "p99 < 5×p50",
  pass: row.p99Ms !== undefined && row.p50Ms !== undefined && row.p99Ms < 5 * row.p50Ms,
});

/** Adds the memory target (uploads held in bounded blocks) to a row of uploads. */
function withRssTarget(r: Row): Row {
  if (r.rssMiB !== undefined) {
    r.targets.push({ text: "peak RSS < 250 MiB", pass: r.rssMiB < 250 });
  }
  return r;
}

export function buildRows({ plan, ceilings, client, single, cluster, singleLabel }: Inputs): Row[] {
  const rows: Row[] = [];
  const c = ceilings;
  rows.push(
    {
      phase: "ceiling",
      metric: "MD5 (node:crypto)",
      value: c.md5MiBps,
      unit: "MiB/s",
      targets: [],
    },
    {
      phase: "ceiling",
      metric: "SHA-256 (node:crypto)",
      value: c.sha256MiBps,
      unit: "MiB/s",
      targets: [],
    },
  );
  if (c.diskWriteMiBps !== undefined) {
    rows.push({
      phase: "ceiling",
      metric: `disk write ${size(c.diskBytes)} + fsync`,
      value: c.diskWriteMiBps,
      unit: "MiB/s",
      targets: [],
    }, {
      phase: "ceiling",
      metric: `disk read ${size(c.diskBytes)} (page cache)`,
      value: c.diskReadMiBps!,
      unit: "MiB/s",
      targets: [],
    });
  }
  const s = single;
  const P = singleLabel;
  const n = plan.largeCount;
  const large = `${n}×${size(plan.largeBytes)}`;
  const putBound = (clientKey: string) =>
    bound([[client[clientKey]?.value, "client"], [c.diskWriteMiBps, "disk-w"], [
      c.md5MiBps,
      "md5",
    ]]);
  const getBound = (clientKey: string) =>
    bound([[client[clientKey]?.value, "client"], [c.diskReadMiBps, "disk-r"]]);

  if (s["large.put.seq"]) {
    const r = fromMeasure(
      P,
      `large PUT 1 stream ${large}`,
      s["large.put.seq"],
      putBound("large.put.seq"),
    );
    r.targets.push(atLeast(r, 0.7));
    rows.push(r);
  }
  if (s["large.put.par"]) {
    const r = fromMeasure(
      P,
      `large PUT ${n} parallel`,
      s["large.put.par"],
      putBound("large.put.par"),
    );
    rows.push(withRssTarget(r));
  }
  if (s["large.get.seq"]) {
    const r = fromMeasure(
      P,
      `large GET 1 stream ${large}`,
      s["large.get.seq"],
      getBound("large.get.seq"),
    );
    r.targets.push(atLeast(r, 0.8));
    rows.push(r);
  }
  if (s["large.get.par"]) {
    rows.push(
      fromMeasure(P, `large GET ${n} parallel`, s["large.get.par"], getBound("large.get.par")),
    );
  }
  if (s["ttfb.full"]) {
    const r = fromMeasure(
      P,
      `first byte, GET ${size(plan.ttfbBytes)} (p50)`,
      s["ttfb.full"],
      { value: client["ttfb.full"]?.value, by: "client" },
      true,
    );
    r.targets.push({ text: "< 10 ms", pass: r.value < 10 });
    rows.push(r);
  }
  if (s["ttfb.range"]) {
    rows.push(fromMeasure(
      P,
      `first byte, range GET ${size(plan.rangeBytes)} (p50)`,
      s["ttfb.range"],
      { value: client["ttfb.range"]?.value, by: "client" },
      true,
    ));
  }
  if (s["multipart"]) {
    rows.push(fromMeasure(
      P,
      `multipart ${size(plan.multipartBytes)}, ${
        size(plan.partBytes)
      } parts ×${plan.multipartConcurrency}`,
      s["multipart"],
      putBound("multipart"),
    ));
  }
  if (s["multipart.parallel"]) {
    const r = fromMeasure(
      P,
      `multipart ${plan.parallelUploads}×${size(plan.largeBytes)}, ${
        size(plan.partBytes)
      } parts ×${plan.parallelUploadParts} each`,
      s["multipart.parallel"],
      putBound("multipart.parallel"),
    );
    rows.push(withRssTarget(r));
  }
  const smallSize = plan.smallBytes >= 1024
    ? `${plan.smallBytes / 1024} KiB`
    : `${plan.smallBytes} B`;
  for (const method of ["PUT", "GET", "HEAD", "DELETE"]) {
    for (const conc of [1, 32]) {
      const key = `small.${method}.c${conc}`;
      if (!s[key]) continue;
      const r = fromMeasure(P, `${method} ${smallSize} c=${conc}`, s[key], {
        value: client[key]?.value,
        by: "client",
      });
      if (conc === 32) {
        if (method === "PUT") r.targets.push(atLeast(r, 0.15));
        if (method === "GET") r.targets.push(atLeast(r, 0.3));
        if ((method === "HEAD" || method === "DELETE") && s["small.PUT.c32"]) {
          const put = s["small.PUT.c32"].value;
          r.targets.push({ text: `≥ PUT c=32 (${fmt(put)})`, pass: r.value >= put });
        }
        r.targets.push(tailTarget(r));
      }
      rows.push(r);
    }
  }
  const mediumSize = `${plan.mediumBytes / 1024} KiB`;
  for (const method of ["PUT", "GET"]) {
    const key = `medium.${method}.c32`;
    if (!s[key]) continue;
    rows.push(
      fromMeasure(P, `${method} ${mediumSize} c=32`, s[key], {
        value: client[key]?.value,
        by: "client",
      }),
    );
  }
  const biggest = Math.max(...plan.listCounts);
  for (const count of plan.listCounts) {
    const tag = count >= 1000 ? `${count / 1000}k` : String(count);
    const label = count.toLocaleString("en-US");
    if (s[`list.${tag}.fill`]) {
      rows.push(fromMeasure(P, `PUT 16 B c=32 (fill ${label} keys)`, s[`list.${tag}.fill`], {}));
    }
    for (const [kind, text] of [["flat", "no delimiter"], ["delim", "delimiter / (tree walk)"]]) {
      const m = s[`list.${tag}.${kind}`];
      if (!m) continue;
      const r = fromMeasure(P, `ListObjectsV2 ${label} keys, ${text}`, m, {});
      if (count === biggest) {
        r.targets.push({
          text: count >= 100_000 ? "≥ 50,000 keys/s" : "≥ 50,000 keys/s (100k in full run)",
          pass: r.value >= 50_000,
        });
      }
      rows.push(r);
    }
  }
  if (cluster["large.put.seq"]) {
    const r = fromMeasure(
      "cluster×3",
      `large PUT 1 stream ${plan.clusterLargeCount}×${size(plan.clusterLargeBytes)}`,
      cluster["large.put.seq"],
      { value: s["large.put.seq"]?.value, by: "single" },
    );
    r.targets.push(atLeast(r, 0.5));
    rows.push(r);
  }
  if (cluster["large.put.par"]) {
    const r = fromMeasure(
      "cluster×3",
      `large PUT ${n} parallel ${large}`,
      cluster["large.put.par"],
      { value: s["large.put.par"]?.value, by: "single" },
    );
    rows.push(withRssTarget(r));
  }
  if (cluster["small.PUT.c32"]) {
    const r = fromMeasure("cluster×3", `PUT ${smallSize} c=32`, cluster["small.PUT.c32"], {
      value: s["small.PUT.c32"]?.value,
      by: "single",
    });
    r.targets.push(atLeast(r, 0.4));
    rows.push(r);
  }
  if (cluster["small.GET.c32"]) {
    rows.push(
      fromMeasure("cluster×3", `GET ${smallSize} c=32`, cluster["small.GET.c32"], {
        value: s["small.GET.c32"]?.value,
        by: "single",
      }),
    );
  }
  for (const method of ["PUT", "GET"]) {
    const key = `medium.${method}.c32`;
    if (!cluster[key]) continue;
    rows.push(
      fromMeasure("cluster×3", `${method} ${mediumSize} c=32`, cluster[key], {
        value: s[key]?.value,
        by: "single",
      }),
    );
  }
  if (cluster["put64k.c1"]) {
    // A latency: read its p50 and p99 columns.
    rows.push(fromMeasure("cluster×3", "PUT 64 KiB c=1 (latency)", cluster["put64k.c1"], {}));
  }
  return rows;
}

function verdict(targets: Target[]): string {
  if (targets.length === 0) return "";
  if (targets.some((t) => t.pass === false)) return "MISS";
  return targets.some((t) => t.pass === undefined) ? "n/a" : "pass";
}

const pct = (n?: number) => (n === undefined || !Number.isFinite(n) ? "" : `${Math.round(n)}%`);

export function renderTable(rows: Row[]): string {
  const header = [
    "phase",
    "metric",
    "value",
    "unit",
    "ceiling",
    "ratio",
    "p50 ms",
    "p99 ms",
    "gen cpu",
    "srv cpu",
    "RSS MiB",
    "target",
    "result",
  ];
  const right = new Set([2, 4, 5, 6, 7, 8, 9, 10]);
  const lines = rows.map((r) => [
    r.phase,
    r.metric,
    fmt(r.value),
    r.unit,
    r.ceiling === undefined ? "" : `${fmt(r.ceiling)} ${r.ceilingBy ?? ""}`.trim(),
    r.ratio === undefined || !Number.isFinite(r.ratio) ? "" : r.ratio.toFixed(2),
    r.p50Ms === undefined ? "" : fmt(r.p50Ms),
    r.p99Ms === undefined ? "" : fmt(r.p99Ms),
    pct(r.genCpuPct),
    pct(r.srvCpuPct),
    r.rssMiB === undefined ? "" : Math.round(r.rssMiB).toString(),
    r.targets.map((t) => t.text).join("; "),
    verdict(r.targets),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const render = (cells: string[]) =>
    cells.map((cell, i) => (right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join("  ").trimEnd();
  return [
    render(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...lines.map(render),
  ].join("\n");
}

/** One line per missed target. */
export function missedTargets(rows: Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    for (const t of r.targets) {
      if (t.pass !== false) continue;
      const detail = t.text.startsWith("ratio")
        ? `ratio ${r.ratio?.toFixed(3)} (${fmt(r.value)} of ${
          fmt(r.ceiling)
        } ${r.unit}, bound: ${r.ceilingBy})`
        : t.text.startsWith("p99")
        ? `p50 ${fmt(r.p50Ms)} ms, p99 ${fmt(r.p99Ms)} ms`
        : t.text.startsWith("peak RSS")
        ? `${Math.round(r.rssMiB ?? 0)} MiB`
        : `${fmt(r.value)} ${r.unit}`;
      out.push(`${r.phase} ${r.metric}: ${t.text} — got ${detail}`);
    }
  }
  return out;
}

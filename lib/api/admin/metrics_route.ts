/**
 * GET /metrics: the node's metrics for Prometheus (text format). Each node
 * reports itself (process, disks, S3 requests, background workers) and what
 * it sees of the cluster (which nodes are up, the layout version): scrape
 * every node.
 */
import process from "node:process";
import type { DiskSpace, System } from "../../rpc/system.ts";
import { currentVersion } from "../../rpc/layout.ts";
import type { ConsistencyMode } from "../../util/config.ts";
import { readiness } from "./readiness.ts";
import type { Maintenance } from "./maintenance_routes.ts";
import { shortNodeId } from "../../net/node_id.ts";
import { type MetricFamily, PROMETHEUS_TEXT_TYPE, prometheusText } from "../../util/metrics.ts";

/** What the node's metrics come from, besides the cluster and the workers. */
export interface MetricsSources {
  /** The version this node runs, as `remise status` shows it. */
  version: string;
  /** Families the node's services keep (the S3 API's requests). */
  families: () => MetricFamily[];
  /** The free and total space of this node's data and metadata disks. */
  diskSpace: () => Promise<{ data?: DiskSpace; metadata?: DiskSpace }>;
}

const gauge = (name: string, help: string, samples: MetricFamily["samples"]): MetricFamily => ({
  name,
  help,
  type: "gauge",
  samples,
});

function processFamilies(version: string | undefined): MetricFamily[] {
  const cpu = process.cpuUsage();
  const memory = Deno.memoryUsage();
  return [
    gauge("remise_build_info", "The version of remise this node runs (the value is 1).", [
      { labels: { version: version ?? "unknown" }, value: 1 },
    ]),
    gauge("remise_uptime_seconds", "Seconds since the node's process started.", [
      { value: Math.round(process.uptime()) },
    ]),
    gauge("remise_resident_memory_bytes", "Resident memory of the node's process.", [
      { value: memory.rss },
    ]),
    gauge(
      "remise_heap_bytes",
      "Memory of the JavaScript engine: its heap (total reserved, used by objects) and ArrayBuffers (external: block data).",
      [
        { labels: { kind: "total" }, value: memory.heapTotal },
        { labels: { kind: "used" }, value: memory.heapUsed },
        { labels: { kind: "external" }, value: memory.external },
      ],
    ),
    {
      name: "remise_cpu_seconds_total",
      help: "CPU time of the node's process, user and system.",
      type: "counter",
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
  ];
}

async function diskFamilies(sources: MetricsSources): Promise<MetricFamily[]> {
  const disks = await sources.diskSpace().catch(() => ({} as Record<string, DiskSpace>));
  const present = Object.entries(disks).filter((e): e is [string, DiskSpace] => e[1] !== undefined);
  return [
    gauge(
      "remise_disk_free_bytes",
      "Free space of the node's disks (data: blocks; metadata: the metadata store).",
      present.map(([disk, space]) => ({ labels: { disk }, value: space.free })),
    ),
    gauge(
      "remise_disk_total_bytes",
      "Size of the node's disks.",
      present.map(([disk, space]) => ({ labels: { disk }, value: space.total })),
    ),
    gauge(
      "remise_disk_min_free_bytes",
      "The node's min_free_space: below it, it stores no new blocks or metadata entries.",
      present.flatMap(([disk, space]) =>
        space.reserve === undefined ? [] : [{ labels: { disk }, value: space.reserve }]
      ),
    ),
    gauge(
      "remise_disk_write_error",
      "1 while the disk's last write failed (read-only, failing) and none has succeeded since.",
      present.map(([disk, space]) => ({ labels: { disk }, value: space.writeError ? 1 : 0 })),
    ),
  ];
}

function clusterFamilies(system: System, mode: ConsistencyMode): MetricFamily[] {
  const peers = system.peers();
  return [
    gauge(
      "remise_cluster_partitions_without_quorum",
      "Partitions with fewer replicas up than a write quorum, as this node sees them (GET /ready is 503 above 0).",
      [{ value: readiness(system, mode).partitionsWithoutQuorum }],
    ),
    gauge("remise_cluster_layout_version", "The layout version this node applies.", [
      { value: currentVersion(system.layout)?.version ?? 0 },
    ]),
    gauge(
      "remise_cluster_node_up",
      "Whether this node sees each node of the cluster up (1) or down (0).",
      peers.map((p) => ({
        labels: { node: shortNodeId(p.id), hostname: p.status?.hostname ?? "" },
        value: p.up ? 1 : 0,
      })),
    ),
    gauge(
      "remise_cluster_node_rtt_seconds",
      "Round-trip time of this node's last ping of each node it sees up.",
      peers.filter((p) => p.up && p.rttMs !== undefined).map((p) => ({
        labels: { node: shortNodeId(p.id) },
        value: p.rttMs! / 1000,
      })),
    ),
    gauge(
      "remise_cluster_node_clock_offset_seconds",
      "How far each node's clock is ahead of this node's (negative: behind), from the last ping.",
      peers.filter((p) => p.up && p.clockOffsetMs !== undefined).map((p) => ({
        labels: { node: shortNodeId(p.id) },
        value: p.clockOffsetMs! / 1000,
      })),
    ),
  ];
}

async function workerFamilies(maintenance: Maintenance): Promise<MetricFamily[]> {
  const workers = maintenance.workers();
  const blockErrors = await maintenance.blockErrors().then((e) => e.length, () => NaN);
  return [
    gauge(
      "remise_worker_queue_length",
      "Items waiting for each background worker (resync, ...), where it has a queue.",
      workers.filter((w) => w.queueLength !== undefined).map((w) => ({
        labels: { worker: w.name },
        value: w.queueLength!,
      })),
    ),
    {
      name: "remise_worker_errors_total",
      help: "Failed steps of each background worker since the node started.",
      type: "counter",
      samples: workers.map((w) => ({ labels: { worker: w.name }, value: w.errors })),
    },
    gauge(
      "remise_worker_state",
      "The state of each background worker (the value is 1).",
      workers.map((w) => ({ labels: { worker: w.name, state: w.state }, value: 1 })),
    ),
    gauge(
      "remise_block_errors",
      "Blocks this node failed to fetch or repair, retried later (`remise block list-errors`).",
      [{ value: blockErrors }],
    ),
  ];
}

/** The /metrics answer. */
export async function metricsResponse(
  sources: MetricsSources | undefined,
  system: System | undefined,
  maintenance: Maintenance | undefined,
  mode: ConsistencyMode,
): Promise<Response> {
  const families = [
    ...processFamilies(sources?.version),
    ...(sources ? await diskFamilies(sources) : []),
    ...(sources ? sources.families() : []),
    ...(system ? clusterFamilies(system, mode) : []),
    ...(maintenance ? await workerFamilies(maintenance) : []),
  ];
  return new Response(prometheusText(families), {
    headers: { "content-type": PROMETHEUS_TEXT_TYPE },
  });
}

/** `remise status` and `remise layout ...`: the cluster as the admin API reports it. */
import type { Command } from "commander";
import type { AdminClient } from "./admin_client.ts";
import { formatTable } from "./format.ts";
import { shortNodeId } from "../net/node_id.ts";
import { formatByteSize, formatMeasuredByteSize, parseByteSize } from "../util/byte_size.ts";

interface Tools {
  client: (cmd: Command) => Promise<AdminClient>;
  withConfig: (cmd: Command) => Command;
  print: (text: string) => void;
  printJson: (value: unknown) => void;
}

interface NodeJson {
  id: string;
  addr: string;
  up: boolean;
  lastSeen: string | null;
  rttMs: number | null;
  hostname: string | null;
  version: string | null;
  zone: string | null;
  capacity: number | null;
  gateway: boolean;
  partitions: number;
  /** The newest layout version whose data the node holds (absent from older nodes). */
  syncedLayoutVersion?: number | null;
  dataDisk: { free: number; total: number } | null;
  metadataDisk: { free: number; total: number } | null;
}

interface StatusJson {
  nodeId: string;
  layoutVersion: number;
  /** Older layout versions still in use while data moves (absent from older nodes). */
  olderLayoutVersions?: number[];
  nodes: NodeJson[];
  unknownAddresses?: string[];
  /** The same with why each failed last (absent from older nodes). */
  unreached?: { addr: string; lastError: string | null }[];
  /** What is worth knowing but needs nothing done (a node that runs alone). */
  notes?: string[];
  warnings: string[];
}

type RoleJson = { zone: string; capacity?: number; gateway?: true; tags: string[] };

interface LayoutJson {
  current: {
    version: number;
    replicationFactor: number;
    roles: Record<string, RoleJson>;
    partitionsPerNode: Record<string, number>;
  } | null;
  staged: Record<string, RoleJson> | null;
  preview: {
    version?: number;
    replicationFactor?: number;
    movedPartitionReplicas?: number;
    partitionsPerNode?: Record<string, number>;
    warnings?: string[];
    error?: string;
    changes?: { nodeId: string; before?: RoleJson; after?: RoleJson }[];
  } | null;
}

const disk = (d: { free: number; total: number } | null) =>
  d ? `${formatMeasuredByteSize(d.free)} free of ${formatMeasuredByteSize(d.total)}` : "-";
const roleText = (r: RoleJson | undefined) =>
  !r
    ? "-"
    : r.gateway
    ? `zone ${r.zone}, gateway`
    : `zone ${r.zone}, ${formatByteSize(r.capacity ?? 0)}`;

/**
 * While data moves to a new layout's placement: from which versions, and which nodes lack it.
 * Else the nodes still fetching what they lack (new, or rebuilt from empty disks).
 */
function layoutMoveText(s: StatusJson): string {
  const older = s.olderLayoutVersions ?? [];
  const lacking = (n: StatusJson["nodes"][number]) =>
    n.partitions > 0 && (n.syncedLayoutVersion ?? 0) < s.layoutVersion;
  if (older.length === 0) {
    const fetching = s.nodes.filter((n) => n.up && lacking(n)).map((n) => shortNodeId(n.id));
    return fetching.length === 0 ? "" : `, ${fetching.join(", ")} still fetching the data ` +
      "it lacks (new, or rebuilt from empty disks): reads leave it out while the others are up";
  }
  const waiting = s.nodes.filter(lacking).map((n) => shortNodeId(n.id));
  return `, data still moving from version ${older.join(", ")}` +
    (waiting.length > 0 ? ` (not all there yet on ${waiting.join(", ")})` : "") +
    "; reads and writes use both placements until it is done";
}

function statusText(s: StatusJson): string {
  const rows = s.nodes.map((n) => [
    shortNodeId(n.id),
    n.hostname ?? "-",
    n.addr || "-",
    n.zone ?? "-",
    n.gateway ? "gateway" : n.capacity === null ? "-" : formatByteSize(n.capacity),
    n.up ? "up" : `DOWN${n.lastSeen ? ` (last seen ${n.lastSeen})` : ""}`,
    n.rttMs === null || !n.up ? "-" : `${n.rttMs} ms`,
    String(n.partitions),
    disk(n.dataDisk),
    n.version ?? "-",
  ]);
  let text = `Layout version: ${s.layoutVersion === 0 ? "none" : s.layoutVersion}` +
    `${layoutMoveText(s)}\n\n` +
    formatTable([
      "ID",
      "HOST",
      "ADDRESS",
      "ZONE",
      "CAPACITY",
      "STATE",
      "RTT",
      "PARTITIONS",
      "DATA DISK",
      "VERSION",
    ], rows);
  if (s.unreached && s.unreached.length > 0) {
    text += "\n";
    for (const u of s.unreached) {
      text += `Not reached yet: ${u.addr}${u.lastError ? ` (${u.lastError})` : ""}\n`;
    }
  } else if (s.unknownAddresses && s.unknownAddresses.length > 0) {
    text += `\nNot reached yet: ${s.unknownAddresses.join(", ")}\n`;
  }
  for (const n of s.notes ?? []) text += `\nNote: ${n}`;
  for (const w of s.warnings) text += `\nWARNING: ${w}`;
  return text;
}

function layoutText(l: LayoutJson): string {
  let text = "";
  if (!l.current) text += "No layout applied yet.\n";
  else {
    text +=
      `Current layout: version ${l.current.version}, replication factor ${l.current.replicationFactor}\n\n`;
    text += formatTable(
      ["ID", "ROLE", "PARTITIONS"],
      Object.entries(l.current.roles).map((
        [id, r],
      ) => [shortNodeId(id), roleText(r), String(l.current!.partitionsPerNode[id] ?? 0)]),
    );
  }
  if (!l.preview) return text + "\nNo staged changes.\n";
  text += "\nStaged changes:\n";
  text += formatTable(
    ["ID", "BEFORE", "AFTER"],
    (l.preview.changes ?? []).map((
      c,
    ) => [shortNodeId(c.nodeId), roleText(c.before), c.after ? roleText(c.after) : "removed"]),
  );
  if (l.preview.error) {
    return text + `\nThe staged layout cannot be applied yet: ${l.preview.error}\n`;
  }
  text +=
    `\nNew layout version ${l.preview.version} (replication factor ${l.preview.replicationFactor}):\n`;
  text += formatTable(
    ["ID", "PARTITIONS"],
    Object.entries(l.preview.partitionsPerNode ?? {}).map((
      [id, n],
    ) => [shortNodeId(id), String(n)]),
  );
  text += `\n${l.preview.movedPartitionReplicas} partition replicas move.\n`;
  for (const w of l.preview.warnings ?? []) text += `WARNING: ${w}\n`;
  text += `Apply with: remise layout apply --version ${l.preview.version}\n`;
  return text;
}

export function addClusterCommands(program: Command, tools: Tools): void {
  const { client, withConfig, print, printJson } = tools;
  withConfig(program.command("status").description("show the nodes of the cluster and their state"))
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const status = await (await client(cmd)).request<StatusJson>("GET", "/v1/cluster/status");
      if (opts.json) return printJson(status);
      print(statusText(status));
    });

  const layout = program.command("layout").description("show and change the cluster layout");
  const show = async (cmd: Command, json?: boolean) => {
    const doc = await (await client(cmd)).request<LayoutJson>("GET", "/v1/layout");
    if (json) printJson(doc);
    else print(layoutText(doc));
  };
  withConfig(layout.command("show").description("current layout, staged changes and their effect"))
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => await show(cmd, opts.json));
  // No sub-command -c here: -c is the capacity, as in `layout assign NODE -z ZONE -c 1T`.
  layout.command("assign").description("stage a role for a node: zone and capacity, or gateway")
    .argument("<node>", "node id or unambiguous prefix")
    .requiredOption("-z, --zone <zone>", "zone (site) of the node")
    .option("-c, --capacity <size>", "storage capacity, e.g. 500G or 2T")
    .option("-g, --gateway", "gateway: serves requests, stores nothing")
    .option("-t, --tag <tag...>", "free-form tags")
    .action(
      async (
        node: string,
        opts: { zone: string; capacity?: string; gateway?: boolean; tag?: string[] },
        cmd: Command,
      ) => {
        if (!opts.gateway && opts.capacity === undefined) {
          throw new Error("give a capacity (-c 500G) or --gateway");
        }
        if (opts.gateway && opts.capacity !== undefined) {
          throw new Error("a gateway has no capacity: give -c or -g, not both");
        }
        const capacity = opts.capacity === undefined ? undefined : parseByteSize(opts.capacity);
        if (opts.capacity !== undefined && (capacity === undefined || capacity <= 0)) {
          // `-c` after the sub-command is the capacity; the configuration file goes before it.
          const hint = /[/\\]|\.toml$/.test(opts.capacity)
            ? `; for a configuration file, put -c before the sub-command: ` +
              `remise -c ${opts.capacity} layout assign ...`
            : "";
          throw new Error(`invalid capacity "${opts.capacity}" (use a size like 500G)${hint}`);
        }
        await (await client(cmd)).request("POST", "/v1/layout/assign", {
          node,
          zone: opts.zone,
          capacity,
          gateway: opts.gateway ?? false,
          tags: opts.tag ?? [],
        });
        await show(cmd);
      },
    );
  withConfig(layout.command("remove").description("stage the removal of a node's role"))
    .argument("<node>", "node id or unambiguous prefix")
    .action(async (node: string, _opts: unknown, cmd: Command) => {
      await (await client(cmd)).request("POST", "/v1/layout/remove", { node });
      await show(cmd);
    });
  withConfig(
    layout.command("apply").description("apply the staged changes as the next layout version"),
  )
    .requiredOption("--version <n>", "the next layout version (as `layout show` says)")
    .action(async (opts: { version: string }, cmd: Command) => {
      const version = Number(opts.version);
      if (!Number.isInteger(version)) {
        throw new Error(`--version must be a number (got "${opts.version}")`);
      }
      await (await client(cmd)).request("POST", "/v1/layout/apply", { version });
      print(`Layout version ${version} applied.`);
    });
  withConfig(layout.command("revert").description("drop the staged changes"))
    .action(async (_opts: unknown, cmd: Command) => {
      await (await client(cmd)).request("POST", "/v1/layout/revert", {});
      print("Staged layout changes dropped.");
    });
}

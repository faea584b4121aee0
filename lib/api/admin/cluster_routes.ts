/**
 * Admin API routes of the cluster: status of every node, and the layout
 * (show, assign, remove, apply, revert). Served under /v1/cluster and /v1/layout.
 */
import { jsonResponse } from "./_json.ts";
import type { System } from "../../rpc/system.ts";
import {
  applyStaged,
  currentVersion,
  hasStagedChanges,
  type NodeRoleSpec,
  previewStaged,
  revertStaged,
  stagedChanges,
  stagedRoles,
  stageRole,
} from "../../rpc/layout.ts";
import { errorMessage } from "../../util/errors.ts";
import { type ConsistencyMode, DEFAULT_CONSISTENCY_MODE } from "../../util/config.ts";
import { readiness } from "./readiness.ts";
import { shortNodeId } from "../../net/node_id.ts";
import { diskWarnings } from "../../util/free_space.ts";
import { CLOCK_SKEW_WARN_MS } from "../../util/limits.ts";

export class ClusterRouteError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const json = jsonResponse;

async function readBody(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (text.trim() === "") return {};
  try {
    const body = JSON.parse(text);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new Error("not an object");
    }
    return body;
  } catch (e) {
    throw new ClusterRouteError(
      400,
      "BadRequest",
      `The request body is not a JSON object: ${errorMessage(e)}`,
    );
  }
}

function partitionsHeld(system: System): Map<string, number> {
  const counts = new Map<string, number>();
  for (const nodes of currentVersion(system.layout)?.partitions ?? []) {
    for (const id of nodes) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** A peer's clock away from this node's: what it changes, and the fix. */
function clockSkewWarning(id: string, offsetMs: number): string {
  const seconds = Math.round(Math.abs(offsetMs) / 1000);
  return `The clock of node ${shortNodeId(id)} is ${seconds} s ${
    offsetMs > 0 ? "ahead of" : "behind"
  } this node's: keep every node's clock synchronized (NTP, such as systemd-timesyncd). Objects ` +
    "are dated by the clock of the node that writes them (Last-Modified, lifecycle, retention).";
}

export function clusterStatus(
  system: System,
  mode: ConsistencyMode = DEFAULT_CONSISTENCY_MODE,
): Record<string, unknown> {
  const current = currentVersion(system.layout);
  const held = partitionsHeld(system);
  const roles = current?.roles ?? {};
  const warnings: string[] = [];
  if (!current) {
    warnings.push(
      "The cluster has no layout yet: assign roles with `remise layout assign`, then apply.",
    );
  }
  // The configuration's replication factor only seeds the first layout.
  const configured = system.options.replicationFactor;
  if (current && current.replicationFactor !== configured) {
    warnings.push(
      `This node's configuration says replication_factor = ${configured}, ` +
        `but the cluster keeps ${current.replicationFactor} copies, as its layout said when first ` +
        `applied; the layout's holds. Set replication_factor = ${current.replicationFactor} in ` +
        "every node's configuration.",
    );
  }
  const peers = system.peers();
  const nodes = peers.map((p) => {
    const role = roles[p.id];
    return {
      id: p.id,
      addr: p.addr,
      up: p.up,
      lastSeen: p.lastSeenMs === undefined ? null : new Date(p.lastSeenMs).toISOString(),
      rttMs: p.rttMs === undefined ? null : Math.round(p.rttMs * 10) / 10,
      hostname: p.status?.hostname ?? null,
      version: p.status?.version ?? null,
      zone: role?.zone ?? null,
      capacity: role && "capacity" in role ? role.capacity : null,
      gateway: role !== undefined && "gateway" in role,
      partitions: held.get(p.id) ?? 0,
      layoutVersion: p.status?.layoutVersion ?? null,
      syncedLayoutVersion: p.status?.syncedLayoutVersion ?? null,
      dataDisk: p.status?.dataDisk ?? null,
      metadataDisk: p.status?.metadataDisk ?? null,
      lastError: p.lastError ?? null,
      clockOffsetMs: p.id === system.nodeId
        ? 0
        : p.clockOffsetMs === undefined
        ? null
        : Math.round(p.clockOffsetMs),
    };
  });
  for (const id of Object.keys(roles)) {
    if (!peers.some((p) => p.id === id)) {
      warnings.push(
        `Node ${shortNodeId(id)} is in the layout but has never been seen by this node.`,
      );
      nodes.push({
        id,
        addr: "",
        up: false,
        lastSeen: null,
        rttMs: null,
        hostname: null,
        version: null,
        zone: roles[id].zone,
        capacity: "capacity" in roles[id] ? (roles[id] as { capacity: number }).capacity : null,
        gateway: "gateway" in roles[id],
        partitions: held.get(id) ?? 0,
        layoutVersion: null,
        syncedLayoutVersion: null,
        dataDisk: null,
        metadataDisk: null,
        lastError: null,
        clockOffsetMs: null,
      });
    }
  }
  for (const n of nodes) {
    if (!n.up && n.id in roles) warnings.push(`Node ${shortNodeId(n.id)} is down.`);
    warnings.push(...diskWarnings(`Node ${shortNodeId(n.id)}`, n.dataDisk, n.metadataDisk, true));
    if (n.up && n.clockOffsetMs !== null && Math.abs(n.clockOffsetMs) >= CLOCK_SKEW_WARN_MS) {
      warnings.push(clockSkewWarning(n.id, n.clockOffsetMs));
    }
  }
  const ready = readiness(system, mode);
  if (current && ready.partitionsWithoutQuorum > 0) {
    warnings.push(
      `${ready.partitionsWithoutQuorum} partitions have fewer replicas up than a write quorum: ` +
        `writes to them fail until nodes come back (GET /ready answers 503).`,
    );
  }
  warnings.push(...system.identityWarnings());
  const versions = new Set(nodes.filter((n) => n.version).map((n) => n.version));
  if (versions.size > 1) {
    warnings.push(`Nodes run different versions of remise: ${[...versions].join(", ")}.`);
  }
  return {
    nodeId: system.nodeId,
    layoutVersion: current?.version ?? 0,
    // Versions still in use while data moves to the current one's placement.
    olderLayoutVersions: system.layout.versions.slice(0, -1).map((v) => v.version),
    nodes,
    unknownAddresses: system.unknownAddresses(),
    unreached: system.unreached(),
    warnings,
  };
}

export function layoutDocument(system: System): Record<string, unknown> {
  const current = currentVersion(system.layout);
  let preview: Record<string, unknown> | null = null;
  const staged = hasStagedChanges(system.layout);
  if (staged) {
    try {
      const p = previewStaged(system.layout);
      preview = {
        version: p.version.version,
        replicationFactor: p.version.replicationFactor,
        roles: p.version.roles,
        changes: p.changes,
        movedPartitionReplicas: p.report.movedPartitionReplicas,
        partitionsPerNode: p.report.perNode,
        warnings: p.report.warnings,
      };
    } catch (e) {
      // The staged roles are still shown, so that the operator sees what to change.
      preview = { error: errorMessage(e), changes: stagedChanges(system.layout) };
    }
  }
  const held = partitionsHeld(system);
  return {
    current: current
      ? {
        version: current.version,
        replicationFactor: current.replicationFactor,
        roles: current.roles,
        partitionsPerNode: Object.fromEntries(held),
      }
      : null,
    /** Versions still in use: more than one while data moves to a new layout. */
    activeVersions: system.layout.versions.map((v) => v.version),
    staged: staged ? stagedRoles(system.layout) : null,
    preview,
  };
}

function parseRole(body: Record<string, unknown>): NodeRoleSpec {
  const zone = body.zone;
  if (typeof zone !== "string" || zone.trim() === "") {
    throw new ClusterRouteError(
      400,
      "BadRequest",
      'The field "zone" is required (a non-empty string)',
    );
  }
  const tags = Array.isArray(body.tags) ? body.tags.map(String) : [];
  if (body.gateway === true) return { zone, gateway: true, tags };
  const capacity = body.capacity;
  if (typeof capacity !== "number" || !Number.isSafeInteger(capacity) || capacity <= 0) {
    throw new ClusterRouteError(
      400,
      "BadRequest",
      'The field "capacity" must be a positive number of bytes, or set "gateway": true',
    );
  }
  return { zone, capacity, tags };
}

function nodeOf(system: System, body: Record<string, unknown>): string {
  if (typeof body.node !== "string" || body.node === "") {
    throw new ClusterRouteError(
      400,
      "BadRequest",
      'The field "node" is required (a node id or a prefix of one)',
    );
  }
  try {
    return system.resolveNodeId(body.node);
  } catch (e) {
    throw new ClusterRouteError(404, "NoSuchNode", errorMessage(e));
  }
}

/** Answers a /v1/cluster or /v1/layout request; `system` is undefined on a node without cluster. */
export async function handleClusterRoute(
  system: System | undefined,
  method: string,
  segments: string[],
  req: Request,
  singleNodeStatus: () => Record<string, unknown> | Promise<Record<string, unknown>>,
  mode: ConsistencyMode = DEFAULT_CONSISTENCY_MODE,
): Promise<Response> {
  const path = segments.join("/");
  try {
    if (path === "v1/cluster/status" && method === "GET") {
      return json(200, system ? clusterStatus(system, mode) : await singleNodeStatus());
    }
    if (!system) {
      throw new ClusterRouteError(
        409,
        "NoCluster",
        "This node runs alone without certificates: a cluster layout needs ca_cert, node_cert and node_key in the configuration (see `remise cert`).",
      );
    }
    if (path === "v1/layout" && method === "GET") return json(200, layoutDocument(system));
    if (method !== "POST") {
      throw new ClusterRouteError(405, "MethodNotAllowed", `${method} is not allowed on /${path}`);
    }
    const body = await readBody(req);
    const now = Date.now();
    const change = async (fn: Parameters<System["updateLayout"]>[0]) => {
      try {
        await system.updateLayout(fn);
      } catch (e) {
        throw new ClusterRouteError(400, "InvalidLayoutChange", errorMessage(e));
      }
      return json(200, layoutDocument(system));
    };
    switch (path) {
      case "v1/layout/assign": {
        const node = nodeOf(system, body);
        const role = parseRole(body);
        return await change((l) => stageRole(l, node, role, now));
      }
      case "v1/layout/remove": {
        const node = nodeOf(system, body);
        return await change((l) => stageRole(l, node, null, now));
      }
      case "v1/layout/apply": {
        const version = body.version;
        if (typeof version !== "number" || !Number.isInteger(version)) {
          throw new ClusterRouteError(
            400,
            "BadRequest",
            'The field "version" is required: the next layout version number',
          );
        }
        return await change((l) => applyStaged(l, version, now));
      }
      case "v1/layout/revert":
        return await change((l) => revertStaged(l, now));
    }
    throw new ClusterRouteError(404, "NoSuchRoute", `No admin API route /${path}`);
  } catch (e) {
    if (e instanceof ClusterRouteError) return json(e.status, { error: e.message, code: e.code });
    throw e;
  }
}

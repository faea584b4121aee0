/**
 * GET /ready: whether this node can serve S3 reads and writes now, for a
 * load balancer or a DNS failover in front of the nodes (no token). A
 * partition is served while a write quorum of its replicas is up (as this
 * node sees them): 200 while every partition is ("ok" with every node up,
 * "degraded" without some), 503 while some partition is not, or before the
 * cluster has a layout. GET /health, by contrast, says only that the process
 * answers.
 */
import type { System } from "../../rpc/system.ts";
import { currentVersion } from "../../rpc/layout.ts";
import { quorums } from "../../rpc/replication.ts";
import type { ConsistencyMode } from "../../util/config.ts";
import { jsonResponse } from "./_json.ts";

export interface Readiness {
  status: "ok" | "degraded" | "unavailable";
  /** Storage nodes of the layout this node sees up, and all of them. */
  nodesUp: number;
  nodes: number;
  /** Partitions with fewer replicas up than a write quorum. */
  partitionsWithoutQuorum: number;
  reason?: string;
}

/** The readiness of a node of `system`; a node without a cluster is always ready. */
export function readiness(system: System | undefined, mode: ConsistencyMode): Readiness {
  if (!system) return { status: "ok", nodesUp: 1, nodes: 1, partitionsWithoutQuorum: 0 };
  const current = currentVersion(system.layout);
  const up = new Set(system.peers().filter((p) => p.up).map((p) => p.id));
  if (!current) {
    return {
      status: "unavailable",
      nodesUp: up.size,
      nodes: up.size,
      partitionsWithoutQuorum: 0,
      reason: "the cluster has no layout yet",
    };
  }
  const storageNodes = new Set(current.partitions.flat());
  const withoutQuorum =
    current.partitions.filter((replicas) =>
      replicas.filter((id) => up.has(id)).length < quorums(mode, replicas.length).write
    ).length;
  const nodesUp = [...storageNodes].filter((id) => up.has(id)).length;
  const result: Readiness = {
    status: withoutQuorum > 0 ? "unavailable" : nodesUp < storageNodes.size ? "degraded" : "ok",
    nodesUp,
    nodes: storageNodes.size,
    partitionsWithoutQuorum: withoutQuorum,
  };
  if (withoutQuorum > 0) {
    result.reason = `${withoutQuorum} partitions have fewer replicas up than a write quorum`;
  }
  return result;
}

export function readinessResponse(system: System | undefined, mode: ConsistencyMode): Response {
  const ready = readiness(system, mode);
  return jsonResponse(ready.status === "unavailable" ? 503 : 200, ready);
}

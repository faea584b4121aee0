/**
 * Where entries and blocks live: the replicas of each partition according
 * to the layout, the quorums of the consistency mode, and calls to replicas
 * (a call to this node runs its handler directly).
 */
import { type CallOptions, RpcError, type RpcMessage } from "../net/transport.ts";
import type { ConsistencyMode } from "../util/config.ts";
import { currentVersion } from "./layout.ts";
import { READ_HEDGE_BASE_MS } from "../util/limits.ts";
import type { System, SystemHandler } from "./system.ts";

/** Waits before each retry of a request a busy peer refused (~375 ms in all). */
const OVERLOADED_RETRY_DELAYS_MS = [5, 20, 50, 100, 200];

export interface Replication {
  readonly nodeId: string;
  /** This process of the node: its next one has another (see ObjectVersion's coordinator). */
  readonly run: string;
  /** The process a node up last said it runs (undefined while down, or from an older remise). */
  runOf(node: string): string | undefined;
  /** Whether a node has a role in some active layout version (a node removed has none). */
  hasRole(node: string): boolean;
  /** Node sets that must each reach the write quorum (old and new version during a layout change). */
  writeSets(partition: number): string[][];
  /** Nodes to read from: the oldest layout version still active has all the data. */
  readSet(partition: number): string[];
  /** Whether this node is a replica of the partition in some active layout version. */
  storesPartition(partition: number): boolean;
  writeQuorum(setSize: number): number;
  readQuorum(setSize: number): number;
  /** Whether a node is up, as this node sees it (itself always). */
  isUp(node: string): boolean;
  /**
   * Whether a node holds every write acknowledged before now, as far as this
   * node knows: it synced the oldest active layout version. A node rebuilt
   * from empty disks has not yet, nor has a node new to the cluster.
   */
  holdsAllWrites(node: string): boolean;
  /** The other nodes of the cluster this node sees up, with or without a role in the layout. */
  peersUp(): string[];
  /**
   * How far the clocks of the peers up are ahead of this node's (negative:
   * behind), where measured; undefined for a node without peers (alone, or
   * the only node of its cluster).
   */
  peerClockOffsetsMs(): number[] | undefined;
  /** The nodes, nearest first: this node, then the same zone, then by round-trip time; down nodes last. */
  byProximity(nodes: string[]): string[];
  /** How long a read waits for the replicas it asked before asking the others too (see quorumRead). */
  readHedgeMs(asked: string[]): number;
  call(node: string, path: string, message: RpcMessage, options?: CallOptions): Promise<RpcMessage>;
  register(path: string, handler: SystemHandler): void;
}

/** Every node that may hold a partition's data: its read set and each of its write sets. */
export function replicasOf(replication: Replication, partition: number): string[] {
  return [
    ...new Set([...replication.readSet(partition), ...replication.writeSets(partition).flat()]),
  ];
}

/** Quorums of a consistency mode for a set of `n` replicas. */
export function quorums(mode: ConsistencyMode, n: number): { write: number; read: number } {
  const majority = Math.floor(n / 2) + 1;
  const write = mode === "dangerous" ? 1 : majority;
  const read = mode === "degraded" || mode === "dangerous" ? 1 : n - majority + 1;
  return { write: Math.min(write, n), read: Math.min(read, n) };
}

/** The single node of a store that runs alone: every partition is here. */
export class LocalReplication implements Replication {
  readonly nodeId: string = "local";
  readonly run: string = crypto.randomUUID();
  readonly #handlers = new Map<string, SystemHandler>();

  runOf(node: string): string | undefined {
    return node === this.nodeId ? this.run : undefined;
  }
  hasRole(node: string): boolean {
    return node === this.nodeId;
  }

  writeSets(): string[][] {
    return [[this.nodeId]];
  }
  readSet(): string[] {
    return [this.nodeId];
  }
  storesPartition(): boolean {
    return true;
  }
  writeQuorum(): number {
    return 1;
  }
  readQuorum(): number {
    return 1;
  }
  isUp(_node: string): boolean {
    return true;
  }
  holdsAllWrites(_node: string): boolean {
    return true;
  }
  peersUp(): string[] {
    return [];
  }
  peerClockOffsetsMs(): number[] | undefined {
    return undefined;
  }
  byProximity(nodes: string[]): string[] {
    return nodes;
  }
  readHedgeMs(): number {
    return READ_HEDGE_BASE_MS;
  }
  call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    const handler = this.#handlers.get(path);
    if (node !== this.nodeId || !handler) {
      return Promise.reject(new Error(`No handler for ${path} on ${node}`));
    }
    return handler(this.nodeId, message);
  }
  register(path: string, handler: SystemHandler): void {
    this.#handlers.set(path, handler);
  }
}

/** Replicas from the cluster layout, calls over the cluster transport. */
export class ClusterReplication implements Replication {
  readonly #handlers = new Map<string, SystemHandler>();

  constructor(private readonly system: System, private readonly mode: ConsistencyMode) {}

  get nodeId(): string {
    return this.system.nodeId;
  }

  get run(): string {
    return this.system.run;
  }

  runOf(node: string): string | undefined {
    if (node === this.nodeId) return this.run;
    const peer = this.system.peer(node);
    return peer?.up ? peer.status?.run : undefined;
  }

  hasRole(node: string): boolean {
    return this.system.layout.versions.some((v) => v.roles[node] !== undefined);
  }

  writeSets(partition: number): string[][] {
    const sets: string[][] = [];
    const seen = new Set<string>();
    for (const v of this.system.layout.versions) {
      const set = v.partitions[partition] ?? [];
      const key = [...set].sort().join(",");
      if (!seen.has(key)) {
        seen.add(key);
        sets.push(set);
      }
    }
    return sets;
  }

  readSet(partition: number): string[] {
    return this.system.layout.versions[0]?.partitions[partition] ?? [];
  }

  storesPartition(partition: number): boolean {
    return this.system.layout.versions.some((v) => v.partitions[partition]?.includes(this.nodeId));
  }

  writeQuorum(n: number): number {
    return quorums(this.mode, n).write;
  }

  readQuorum(n: number): number {
    return quorums(this.mode, n).read;
  }

  isUp(node: string): boolean {
    return node === this.nodeId || this.system.peer(node)?.up === true;
  }

  holdsAllWrites(node: string): boolean {
    const synced = node === this.nodeId
      ? this.system.syncedLayoutVersion
      : this.system.peer(node)?.status?.syncedLayoutVersion;
    return (synced ?? 0) >= (this.system.layout.versions[0]?.version ?? 0);
  }

  peersUp(): string[] {
    return this.system.peers().filter((p) => p.up && p.id !== this.nodeId).map((p) => p.id);
  }

  peerClockOffsetsMs(): number[] | undefined {
    const peers = this.system.peers().filter((p) => p.id !== this.nodeId);
    // A cluster of one node has no clock to compare with, as a node alone.
    if (peers.length === 0) return undefined;
    return peers.flatMap((p) => p.up && p.clockOffsetMs !== undefined ? [p.clockOffsetMs] : []);
  }

  byProximity(nodes: string[]): string[] {
    const roles = currentVersion(this.system.layout)?.roles ?? {};
    const myZone = roles[this.nodeId]?.zone;
    // Per request: peer() rather than peers(), which builds this node's status
    // (with a digest of the layout: ~30% of a coordinator's CPU in a cluster).
    const rank = (id: string) => {
      if (id === this.nodeId) return -1;
      const p = this.system.peer(id);
      const down = p?.up ? 0 : 1e9;
      const zone = roles[id]?.zone === myZone && myZone !== undefined ? 0 : 1e6;
      return down + zone + (p?.rttMs ?? 1e5);
    };
    return [...nodes].sort((a, b) => rank(a) - rank(b));
  }

  readHedgeMs(asked: string[]): number {
    let rttMs = 0;
    for (const id of asked) {
      if (id !== this.nodeId) rttMs = Math.max(rttMs, this.system.peer(id)?.rttMs ?? 0);
    }
    return READ_HEDGE_BASE_MS + 2 * rttMs;
  }

  call(
    node: string,
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage> {
    if (node === this.nodeId) {
      const handler = this.#handlers.get(path);
      if (!handler) return Promise.reject(new Error(`No handler for ${path}`));
      return handler(node, message);
    }
    return this.#callPeer(node, path, message, options);
  }

  /**
   * A peer at max_concurrent_rpc_requests refuses a request before running
   * it ("overloaded"): such a refusal is retried a few times, shortly, so
   * that a burst of writes does not reach clients as 503. A streamed body
   * may be partly sent already: not retried.
   */
  async #callPeer(
    node: string,
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage> {
    for (let attempt = 0;; attempt++) {
      try {
        return await this.system.options.transport.callNode(node, path, message, options);
      } catch (e) {
        const delayMs = OVERLOADED_RETRY_DELAYS_MS[attempt];
        const retry = e instanceof RpcError && e.kind === "overloaded" && !message.stream &&
          delayMs !== undefined && !options?.signal?.aborted;
        if (!retry) throw e;
        // Jittered, so that the refused callers do not all come back at once.
        await new Promise((r) => setTimeout(r, delayMs * (0.5 + Math.random())));
      }
    }
  }

  register(path: string, handler: SystemHandler): void {
    this.#handlers.set(path, handler);
    this.system.register(path, handler);
  }
}

/**
 * Cluster membership: who the peers are, whether they are up, their status
 * and round-trip time, and the cluster layout, all spread by gossip.
 *
 * Every `PING_INTERVAL_MS` a node pings each known peer with its status and
 * the peers it knows (so one bootstrap peer is enough to learn everyone);
 * when two layouts differ (by digest), the nodes exchange and merge them.
 */
import type { DiskReading, DiskWriteError } from "../util/free_space.ts";
import type { DbStore } from "../db/db.ts";
import { type RpcMessage, type Transport, unknownPathMessage } from "../net/transport.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { consulPeers } from "./consul.ts";
import { shortNodeId } from "../net/node_id.ts";
import {
  type ClusterLayout,
  currentVersion,
  emptyLayout,
  layoutDigest,
  mergeLayouts,
  trimVersions,
} from "./layout.ts";

/** How often peers are pinged: a dead node is seen down within about two intervals. */
export const PING_INTERVAL_MS = 1_000;
/** A ping not answered in this time marks the peer down. */
export const PING_TIMEOUT_MS = 2_500;
/**
 * A peer with no role in the layout (active versions or staged) that has not
 * answered for this long is forgotten: a node replaced for good, or one that
 * joined and left without a role. A node forgotten that comes back is met
 * again as it pings.
 */
export const FORGET_AFTER_MS = 10 * 60_000;
/** Forgotten nodes remembered, so that gossip from a peer that still knows one does not bring it back. */
const FORGOTTEN_MAX = 1_024;
/** How often Consul's catalog is read. */
export const CONSUL_INTERVAL_MS = 30_000;

const LAYOUT_KEY = ["system", "layout"];
const PEERS_KEY = ["system", "peers"];
const SYNCED_KEY = ["system", "synced_layout_version"];

/** A disk's free and total bytes, and the node's min_free_space (absent from older nodes). */
export interface DiskSpace extends DiskReading {
  reserve?: number;
  /** The last write the disk refused, when it has accepted none since (older nodes: absent). */
  writeError?: DiskWriteError;
}

export interface NodeStatus {
  id: string;
  addr: string;
  hostname: string;
  version: string;
  uptimeSeconds: number;
  layoutVersion: number;
  layoutDigest: string;
  /** The newest layout version whose data this node has fully received. */
  syncedLayoutVersion: number;
  dataDisk?: DiskSpace;
  metadataDisk?: DiskSpace;
  /** The node's clock when it sent this status (absent from older nodes). */
  clockMs?: number;
  /** This process of the node, new at each start (absent from nodes before 2026-11-28). */
  run?: string;
}

export interface PeerState {
  id: string;
  addr: string;
  up: boolean;
  lastSeenMs?: number;
  rttMs?: number;
  status?: NodeStatus;
  lastError?: string;
  /** How far the peer's clock is ahead of this node's (negative: behind), from the last ping. */
  clockOffsetMs?: number;
}

export interface SystemOptions {
  transport: Transport;
  db: DbStore;
  /** The address other nodes reach this one at. */
  publicAddr: string;
  bootstrapPeers: string[];
  consul?: { host: string; service: string };
  replicationFactor: number;
  version: string;
  hostname: string;
  diskSpace: () => Promise<{ data?: DiskSpace; metadata?: DiskSpace }>;
  nowMs?: () => number;
}

interface PeerAddress {
  id: string;
  addr: string;
}

interface PingBody {
  status: NodeStatus;
  peers: PeerAddress[];
}

export type SystemHandler = (from: string, message: RpcMessage) => Promise<RpcMessage>;

export class System {
  #layout!: ClusterLayout;
  /** `layoutDigest(#layout)`, computed at each change: every ping and pong compares it. */
  #layoutDigest = "";
  /** This process of the node (NodeStatus.run). */
  readonly run: string = crypto.randomUUID();
  readonly #peers = new Map<string, PeerState>();
  /** Addresses whose node id is not known yet (bootstrap, Consul). */
  readonly #unknownAddrs = new Set<string>();
  readonly #handlers = new Map<string, SystemHandler>();
  readonly #startedMs: number;
  readonly #nowMs: () => number;
  #timers: ReturnType<typeof setInterval>[] = [];
  #disk: { data?: DiskSpace; metadata?: DiskSpace } = {};
  #savedPeers = "";
  #syncedLayoutVersion = 0;
  readonly #dialFailures = new Map<string, number>();
  /** Why each address not reached yet failed last (for `remise status`). */
  readonly #dialErrors = new Map<string, string>();
  /** When each peer became known (for one never heard from, see `#forgetGone`). */
  readonly #knownSinceMs = new Map<string, number>();
  /** Peers forgotten: gossip does not add them again, only their own ping does. */
  readonly #forgotten = new Set<string>();

  private constructor(readonly options: SystemOptions, layout: ClusterLayout) {
    this.#setLayout(layout);
    this.#nowMs = options.nowMs ?? Date.now;
    this.#startedMs = this.#nowMs();
    this.register("system/ping", (from, m) => this.#onPing(from, m.body as PingBody));
    this.register("system/layout/get", () => Promise.resolve({ body: { layout: this.layout } }));
    this.register("system/layout/push", async (_from, m) => {
      await this.#mergeLayout((m.body as { layout: ClusterLayout }).layout);
      return { body: { digest: this.#layoutDigest } };
    });
  }

  static async open(options: SystemOptions): Promise<System> {
    const stored = await options.db.get<ClusterLayout>(LAYOUT_KEY);
    const system = new System(options, stored ?? emptyLayout(options.replicationFactor));
    system.#syncedLayoutVersion = await options.db.get<number>(SYNCED_KEY) ?? 0;
    const peers = await options.db.get<PeerAddress[]>(PEERS_KEY) ?? [];
    for (const p of peers) system.#addPeer(p.id, p.addr);
    for (const addr of options.bootstrapPeers) system.#addAddress(addr);
    return system;
  }

  get layout(): ClusterLayout {
    return this.#layout;
  }

  #setLayout(layout: ClusterLayout, digest = layoutDigest(layout)): void {
    this.#layout = layout;
    this.#layoutDigest = digest;
  }

  get nodeId(): string {
    return this.options.transport.nodeId;
  }

  /** Registers the handler of an RPC path (other layers add theirs). */
  register(path: string, handler: SystemHandler): void {
    this.#handlers.set(path, handler);
  }

  async start(): Promise<void> {
    await this.options.transport.serve((from, path, message) => {
      const handler = this.#handlers.get(path);
      if (!handler) return Promise.reject(new Error(unknownPathMessage(path)));
      return handler(from, message);
    });
    this.options.transport.onPeerDisconnected((id) => {
      const peer = this.#peers.get(id);
      if (peer) peer.up = false;
    });
    const tick = () =>
      this.#tick().catch((e) => log("remise::rpc", "warn", `gossip failed: ${errorMessage(e)}`));
    this.#timers.push(setInterval(tick, PING_INTERVAL_MS));
    tick();
    if (this.options.consul) {
      const { host, service } = this.options.consul;
      const discover = async () => {
        for (const addr of await consulPeers(host, service)) this.#addAddress(addr);
      };
      this.#timers.push(setInterval(discover, CONSUL_INTERVAL_MS));
      await discover();
    }
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    await this.options.transport.close();
  }

  /** This node and every peer known, with their state. */
  peers(): PeerState[] {
    const self: PeerState = {
      id: this.nodeId,
      addr: this.options.publicAddr,
      up: true,
      lastSeenMs: this.#nowMs(),
      rttMs: 0,
      status: this.status(),
    };
    return [self, ...[...this.#peers.values()].filter((p) => p.id !== this.nodeId)];
  }

  /** What this node knows of another node (not of itself: see `peers`). */
  peer(id: string): PeerState | undefined {
    return id === this.nodeId ? undefined : this.#peers.get(id);
  }

  /**
   * Whether this node sees a majority of the layout's nodes up (itself
   * included), waiting up to `maxMs` for it; true without a layout. Peers
   * answer within a ping or two of a start: a restarted node that serves
   * before then answers its first requests 503.
   */
  async majorityUp(maxMs: number): Promise<boolean> {
    const nodes = Object.keys(currentVersion(this.layout)?.roles ?? {});
    const needed = Math.floor(nodes.length / 2) + 1;
    const deadline = Date.now() + maxMs;
    while (nodes.length > 0) {
      const up = nodes.filter((id) => id === this.nodeId || this.peer(id)?.up === true).length;
      if (up >= needed) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  }

  /** Addresses known but not yet reached, whose node id is still unknown. */
  unknownAddresses(): string[] {
    return [...this.#unknownAddrs];
  }

  /** The addresses not reached yet, each with why its last dial failed (if one did). */
  unreached(): { addr: string; lastError: string | null }[] {
    return [...this.#unknownAddrs].map((addr) => {
      const error = this.#dialErrors.get(addr);
      // Shown beside the address: not twice.
      return { addr, lastError: error?.replace(`${addr}: `, "") ?? null };
    });
  }

  /** Nodes sharing a certificate, as this node met them (see Transport.identityWarnings). */
  identityWarnings(): string[] {
    return this.options.transport.identityWarnings();
  }

  status(): NodeStatus {
    return {
      id: this.nodeId,
      addr: this.options.publicAddr,
      hostname: this.options.hostname,
      version: this.options.version,
      uptimeSeconds: Math.round((this.#nowMs() - this.#startedMs) / 1000),
      layoutVersion: currentVersion(this.layout)?.version ?? 0,
      layoutDigest: this.#layoutDigest,
      syncedLayoutVersion: this.#syncedLayoutVersion,
      dataDisk: this.#disk.data,
      metadataDisk: this.#disk.metadata,
      clockMs: this.#nowMs(),
      run: this.run,
    };
  }

  /** Records that this node holds all the data of layout version `version`. */
  async setSyncedLayoutVersion(version: number): Promise<void> {
    if (version <= this.#syncedLayoutVersion) return;
    this.#syncedLayoutVersion = version;
    await this.options.db.commit([{ type: "set", key: SYNCED_KEY, value: version }]);
  }

  get syncedLayoutVersion(): number {
    return this.#syncedLayoutVersion;
  }

  /**
   * Retires the layout versions older than the current one once every node
   * of the current version has synced it: from then on reads and writes use
   * the new replicas only.
   */
  async #retireOldVersions(): Promise<void> {
    const current = currentVersion(this.layout);
    if (!current || this.layout.versions.length < 2) return;
    const peers = new Map(this.peers().map((p) => [p.id, p]));
    const synced = Object.keys(current.roles).every((id) =>
      (peers.get(id)?.status?.syncedLayoutVersion ?? 0) >= current.version
    );
    if (!synced) return;
    log(
      "remise::rpc",
      "info",
      `every node has the data of layout version ${current.version}: retiring older versions`,
    );
    await this.updateLayout((l) => trimVersions(l, current.version));
  }

  /** Changes the layout locally, stores it and spreads it to every peer that is up. */
  async updateLayout(change: (layout: ClusterLayout) => ClusterLayout): Promise<ClusterLayout> {
    this.#setLayout(change(this.layout));
    await this.options.db.commit([{ type: "set", key: LAYOUT_KEY, value: this.layout }]);
    await Promise.all(
      this.peers().filter((p) => p.up && p.id !== this.nodeId).map((p) =>
        this.options.transport.callNode(p.id, "system/layout/push", {
          body: { layout: this.layout },
        }, {
          priority: "high",
          timeoutMs: PING_TIMEOUT_MS,
        }).catch(() => {})
      ),
    );
    return this.layout;
  }

  /** A node id from an unambiguous prefix of a known id. */
  resolveNodeId(prefix: string): string {
    const known = new Set([this.nodeId, ...this.#peers.keys(), ...this.#inLayout()]);
    const matches = [...known].filter((id) => id.startsWith(prefix.toLowerCase()));
    if (matches.length === 1) return matches[0];
    if (matches.length === 0) throw new Error(`No known node id starts with "${prefix}"`);
    throw new Error(`"${prefix}" matches ${matches.length} nodes: use a longer prefix`);
  }

  #addAddress(addr: string): void {
    if (addr === this.options.publicAddr) return; // this node itself
    const at = addr.indexOf("@");
    if (at > 0) this.#addPeer(addr.slice(0, at), addr.slice(at + 1));
    else if (![...this.#peers.values()].some((p) => p.addr === addr)) this.#unknownAddrs.add(addr);
  }

  /** A peer known first hand (stored, dialled, or pinging this node), forgotten or not. */
  #addPeer(id: string, addr: string): void {
    if (id === this.nodeId) return;
    this.#forgotten.delete(id);
    const existing = this.#peers.get(id);
    if (existing) {
      existing.addr = addr;
    } else {
      this.#peers.set(id, { id, addr, up: false });
      this.#knownSinceMs.set(id, this.#nowMs());
    }
    this.#unknownAddrs.delete(addr);
  }

  /** A peer another node told of: not one this node forgot, unless the layout names it again. */
  #addGossipedPeer(id: string, addr: string): void {
    if (this.#forgotten.has(id) && !this.#inLayout().has(id)) return;
    this.#addPeer(id, addr);
  }

  /** The nodes with a role in an active layout version, or a staged change. */
  #inLayout(): Set<string> {
    return new Set([
      ...this.layout.versions.flatMap((v) => Object.keys(v.roles)),
      ...Object.keys(this.layout.staging.roles),
    ]);
  }

  /** Forgets the peers down for `FORGET_AFTER_MS` that the layout no longer names. */
  #forgetGone(): void {
    const now = this.#nowMs();
    const inLayout = this.#inLayout();
    for (const peer of [...this.#peers.values()]) {
      if (peer.up || inLayout.has(peer.id)) continue;
      const since = peer.lastSeenMs ?? this.#knownSinceMs.get(peer.id) ?? now;
      if (now - since < FORGET_AFTER_MS) continue;
      this.#peers.delete(peer.id);
      this.#knownSinceMs.delete(peer.id);
      if (this.#forgotten.size >= FORGOTTEN_MAX) {
        this.#forgotten.delete(this.#forgotten.values().next().value!);
      }
      this.#forgotten.add(peer.id);
      log(
        "remise::rpc",
        "info",
        `forgot node ${shortNodeId(peer.id)} at ${peer.addr}: it has no role in the layout and ` +
          `has not answered for ${Math.round((now - since) / 60_000)} minutes`,
      );
    }
  }

  #pingBody(): PingBody {
    const peers = [...this.#peers.values()].map((p) => ({ id: p.id, addr: p.addr }));
    return {
      status: this.status(),
      peers: [{ id: this.nodeId, addr: this.options.publicAddr }, ...peers],
    };
  }

  async #tick(): Promise<void> {
    this.#disk = await this.options.diskSpace().catch(() => this.#disk);
    const body = this.#pingBody();
    const dials = [...this.#unknownAddrs].map(async (addr) => {
      try {
        const answer = await this.options.transport.call({ addr }, "system/ping", { body }, {
          priority: "high",
          timeoutMs: PING_TIMEOUT_MS,
        });
        this.#unknownAddrs.delete(addr);
        this.#dialErrors.delete(addr);
        if (answer.from === this.nodeId) return;
        this.#addPeer(answer.from, addr);
        await this.#onPong(answer.from, answer.body as PingBody, 0);
      } catch (e) {
        // Warn on the first failure and then about every half minute, not every second.
        const failures = (this.#dialFailures.get(addr) ?? 0) + 1;
        this.#dialFailures.set(addr, failures);
        this.#dialErrors.set(addr, errorMessage(e));
        const level = failures % 30 === 1 ? "warn" : "debug";
        log(
          "remise::rpc",
          level,
          `cannot reach peer ${addr} (${failures} attempts): ${errorMessage(e)}`,
        );
      }
    });
    const pings = [...this.#peers.values()].map(async (peer) => {
      const started = performance.now();
      const sentMs = this.#nowMs();
      try {
        const answer = await this.options.transport.call(
          { id: peer.id, addr: peer.addr },
          "system/ping",
          { body },
          {
            priority: "high",
            timeoutMs: PING_TIMEOUT_MS,
          },
        );
        await this.#onPong(peer.id, answer.body as PingBody, performance.now() - started, sentMs);
      } catch (e) {
        if (peer.up) {
          log(
            "remise::rpc",
            "warn",
            `node ${shortNodeId(peer.id)} at ${peer.addr} is down: ${errorMessage(e)}`,
          );
        }
        peer.up = false;
        peer.lastError = errorMessage(e);
      }
    });
    await Promise.all([...dials, ...pings]);
    this.#forgetGone();
    await this.#savePeers();
    await this.#retireOldVersions();
  }

  async #onPong(id: string, body: PingBody, rttMs: number, sentMs?: number): Promise<void> {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#markUp(peer);
    if (rttMs > 0) peer.rttMs = peer.rttMs === undefined ? rttMs : peer.rttMs * 0.7 + rttMs * 0.3;
    // The peer read its clock about halfway through the round trip; an older
    // remise (one restarted on an earlier release) tells no clock.
    if (typeof body.status.clockMs !== "number") peer.clockOffsetMs = undefined;
    else if (sentMs !== undefined) {
      peer.clockOffsetMs = body.status.clockMs - (sentMs + this.#nowMs()) / 2;
    }
    peer.status = body.status;
    peer.lastError = undefined;
    for (const p of body.peers) this.#addGossipedPeer(p.id, p.addr);
    if (body.status.layoutDigest !== this.#layoutDigest) await this.#syncLayout(id);
  }

  #onPing(from: string, body: PingBody): Promise<RpcMessage> {
    const sender = body.peers.find((p) => p.id === from);
    // Heard from itself: a node forgotten is back.
    if (sender) this.#addPeer(from, sender.addr);
    const peer = this.#peers.get(from);
    if (peer) {
      this.#markUp(peer);
      peer.status = body.status;
      // A peer restarted on an older release no longer tells its clock.
      if (typeof body.status.clockMs !== "number") peer.clockOffsetMs = undefined;
    }
    for (const p of body.peers) this.#addGossipedPeer(p.id, p.addr);
    return Promise.resolve({ body: this.#pingBody() });
  }

  /** A peer answered, or pinged us: it is up (logged when it was not). */
  #markUp(peer: PeerState): void {
    if (!peer.up) log("remise::rpc", "info", `node ${shortNodeId(peer.id)} at ${peer.addr} is up`);
    peer.up = true;
    peer.lastSeenMs = this.#nowMs();
  }

  /** Fetches a peer's layout, merges it, and pushes the result back if the peer lacks something. */
  async #syncLayout(id: string): Promise<void> {
    const answer = await this.options.transport.callNode(id, "system/layout/get", { body: {} }, {
      priority: "high",
      timeoutMs: PING_TIMEOUT_MS,
    });
    const theirs = (answer.body as { layout: ClusterLayout }).layout;
    await this.#mergeLayout(theirs);
    if (layoutDigest(theirs) !== this.#layoutDigest) {
      await this.options.transport.callNode(id, "system/layout/push", {
        body: { layout: this.layout },
      }, {
        priority: "high",
        timeoutMs: PING_TIMEOUT_MS,
      });
    }
  }

  async #mergeLayout(other: ClusterLayout): Promise<void> {
    const merged = mergeLayouts(this.layout, other);
    const digest = layoutDigest(merged);
    if (digest === this.#layoutDigest) return;
    const before = currentVersion(this.layout)?.version ?? 0;
    this.#setLayout(merged, digest);
    await this.options.db.commit([{ type: "set", key: LAYOUT_KEY, value: merged }]);
    const after = currentVersion(merged)?.version ?? 0;
    log("remise::rpc", after === before ? "debug" : "info", `layout updated (version ${after})`);
  }

  async #savePeers(): Promise<void> {
    const peers = [...this.#peers.values()].map((p) => ({ id: p.id, addr: p.addr }));
    const serialized = JSON.stringify(peers);
    if (serialized === this.#savedPeers) return;
    this.#savedPeers = serialized;
    await this.options.db.commit([{ type: "set", key: PEERS_KEY, value: peers }]);
  }
}

/**
 * An in-process Transport over a seeded fake network, for whole-cluster tests
 * in memory: links can be delayed, partitioned and made lossy, and every
 * random choice comes from the seed, so a failing run can be replayed.
 *
 * Bodies go through msgpack as on the wire; streams are relayed chunk by
 * chunk on demand (backpressure) and fail when their link goes down.
 */
import { decode, encode } from "@msgpack/msgpack";
import { errorMessage } from "../util/errors.ts";
import { RPC_TIMEOUT_MS } from "../util/limits.ts";
import { shortNodeId } from "./node_id.ts";
import { Relay } from "./_relay.ts";
import {
  abortError,
  type CallOptions,
  RpcError,
  type RpcHandler,
  type RpcMessage,
  servedBeyondLimit,
  type Transport,
} from "./transport.ts";

export interface MemoryTransportOptions {
  /** Requests served at once before answering RpcError("overloaded"); default unbounded. */
  maxConcurrentRequests?: number;
  requestTimeoutMs?: number;
}

/** One request in flight, from the caller's `call` to its response body's end. */
interface InFlight {
  from: string;
  to: string;
  fail(error: unknown): void;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class MemoryNetwork {
  readonly random: () => number;
  readonly #byId = new Map<string, MemoryTransport>();
  readonly #byAddr = new Map<string, MemoryTransport>();
  readonly #delays = new Map<string, number>();
  readonly #partitions = new Set<string>();
  readonly #links = new Set<string>();
  readonly #inFlight = new Set<InFlight>();
  #dropRate = 0;

  constructor(seed = 1) {
    this.random = prng(seed);
  }

  /** A transport for node `nodeId` reachable at `addr` ("host:port"). */
  transport(nodeId: string, addr: string, opts: MemoryTransportOptions = {}): MemoryTransport {
    if (this.#byId.has(nodeId)) {
      throw new Error(`node ${shortNodeId(nodeId)} is already on the network`);
    }
    if (this.#byAddr.has(addr)) throw new Error(`address ${addr} is already taken`);
    const t = new MemoryTransport(this, nodeId, addr, opts);
    this.#byId.set(nodeId, t);
    this.#byAddr.set(addr, t);
    return t;
  }

  /** One-way latency of the link between two nodes, both directions. */
  setDelay(a: string, b: string, ms: number): void {
    this.#delays.set(pairKey(a, b), ms);
  }

  /** Cuts the link: calls in flight fail with "closed", new ones with "unreachable". */
  partition(a: string, b: string): void {
    this.#partitions.add(pairKey(a, b));
    this.unlink(a, b, `network partition between ${shortNodeId(a)} and ${shortNodeId(b)}`);
  }

  heal(a: string, b: string): void {
    this.#partitions.delete(pairKey(a, b));
  }

  /** Probability that a request or a response is lost (the call then times out). */
  dropRate(p: number): void {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`drop rate ${p} is not in [0, 1]`);
    this.#dropRate = p;
  }

  // ---- used by MemoryTransport ----

  byId(id: string): MemoryTransport | undefined {
    return this.#byId.get(id);
  }

  byAddr(addr: string): MemoryTransport | undefined {
    return this.#byAddr.get(addr);
  }

  delay(a: string, b: string): number {
    return this.#delays.get(pairKey(a, b)) ?? 0;
  }

  partitioned(a: string, b: string): boolean {
    return this.#partitions.has(pairKey(a, b));
  }

  drops(): boolean {
    return this.#dropRate > 0 && this.random() < this.#dropRate;
  }

  linked(a: string, b: string): boolean {
    return this.#links.has(pairKey(a, b));
  }

  link(a: MemoryTransport, b: MemoryTransport): void {
    const key = pairKey(a.nodeId, b.nodeId);
    if (this.#links.has(key)) return;
    this.#links.add(key);
    a.peerUp(b);
    b.peerUp(a);
  }

  unlink(a: string, b: string, why: string): void {
    const error = new RpcError("closed", why);
    for (const f of [...this.#inFlight]) {
      if (pairKey(f.from, f.to) === pairKey(a, b)) f.fail(error);
    }
    if (!this.#links.delete(pairKey(a, b))) return;
    this.#byId.get(a)?.peerDown(b);
    this.#byId.get(b)?.peerDown(a);
  }

  track(f: InFlight): () => void {
    this.#inFlight.add(f);
    return () => this.#inFlight.delete(f);
  }

  remove(t: MemoryTransport): void {
    if (this.#byId.get(t.nodeId) === t) this.#byId.delete(t.nodeId);
    if (this.#byAddr.get(t.addr) === t) this.#byAddr.delete(t.addr);
    for (const key of [...this.#links]) {
      const [x, y] = key.split("|");
      if (x === t.nodeId || y === t.nodeId) {
        this.unlink(x, y, `node ${shortNodeId(t.nodeId)} closed`);
      }
    }
    for (const f of [...this.#inFlight]) {
      if (f.from === t.nodeId || f.to === t.nodeId) {
        f.fail(new RpcError("closed", `node ${shortNodeId(t.nodeId)} closed`));
      }
    }
  }
}

export class MemoryTransport implements Transport {
  #handler?: RpcHandler;
  #closed = false;
  #active = 0;
  readonly #peers = new Map<string, string>();
  readonly #known = new Map<string, string>();
  readonly #connected: ((id: string, addr: string) => void)[] = [];
  readonly #disconnected: ((id: string) => void)[] = [];

  constructor(
    readonly network: MemoryNetwork,
    readonly nodeId: string,
    readonly addr: string,
    readonly opts: MemoryTransportOptions,
  ) {}

  serve(handler: RpcHandler): Promise<{ port: number }> {
    if (this.#closed) return Promise.reject(new RpcError("closed", "transport is closed"));
    this.#handler = handler;
    return Promise.resolve({ port: Number(this.addr.slice(this.addr.lastIndexOf(":") + 1)) });
  }

  async call(
    peer: { id?: string; addr: string },
    path: string,
    message: RpcMessage,
    options: CallOptions = {},
  ): Promise<RpcMessage & { from: string }> {
    if (this.#closed) throw new RpcError("closed", "transport is closed");
    let target = peer.id && this.#peers.has(peer.id) ? this.network.byId(peer.id) : undefined;
    if (!target) {
      target = this.network.byAddr(peer.addr);
      if (!target || !target.serving) {
        throw new RpcError("unreachable", `cannot reach ${peer.addr}: nobody listens there`);
      }
      if (peer.id && target.nodeId !== peer.id) {
        throw new RpcError(
          "refused",
          `node at ${peer.addr} is ${shortNodeId(target.nodeId)}, not the expected ${
            shortNodeId(peer.id)
          }`,
        );
      }
    }
    if (target === this) throw new RpcError("refused", `node at ${peer.addr} is this node itself`);
    const response = await this.#send(target, path, message, options);
    return { ...response, from: target.nodeId };
  }

  async callNode(
    id: string,
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage> {
    const addr = this.#peers.get(id) ?? this.#known.get(id);
    if (!addr) {
      throw new RpcError(
        "unreachable",
        `no connection to node ${shortNodeId(id)} and no known address`,
      );
    }
    return await this.call({ id, addr }, path, message, options);
  }

  /** Ids are unique in memory: no two nodes can share one. */
  identityWarnings(): string[] {
    return [];
  }

  connectedPeers(): { id: string; addr: string }[] {
    return [...this.#peers].map(([id, addr]) => ({ id, addr }));
  }

  onPeerConnected(cb: (id: string, addr: string) => void): void {
    this.#connected.push(cb);
  }

  onPeerDisconnected(cb: (id: string) => void): void {
    this.#disconnected.push(cb);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.network.remove(this);
    }
    return Promise.resolve();
  }

  // ---- used by MemoryNetwork ----

  get serving(): boolean {
    return !this.#closed && this.#handler !== undefined;
  }

  peerUp(peer: MemoryTransport): void {
    this.#peers.set(peer.nodeId, peer.addr);
    this.#known.set(peer.nodeId, peer.addr);
    for (const cb of this.#connected) cb(peer.nodeId, peer.addr);
  }

  peerDown(id: string): void {
    if (!this.#peers.delete(id)) return;
    for (const cb of this.#disconnected) cb(id);
  }

  #send(
    target: MemoryTransport,
    path: string,
    message: RpcMessage,
    options: CallOptions,
  ): Promise<RpcMessage> {
    const net = this.network;
    const [from, to] = [this.nodeId, target.nodeId];
    const what = `${path} to ${shortNodeId(to)}`;
    if (net.partitioned(from, to)) {
      return Promise.reject(new RpcError("unreachable", `${what}: network partition`));
    }
    if (options.signal?.aborted) return Promise.reject(abortError(what, options.signal.reason));
    let body: unknown;
    try {
      body = decode(encode(message.body, { ignoreUndefined: true }));
    } catch (e) {
      return Promise.reject(
        new TypeError(`${path}: request body is not msgpack-encodable`, { cause: e }),
      );
    }
    net.link(this, target);
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs ?? RPC_TIMEOUT_MS;
    return new Promise<RpcMessage>((resolve, reject) => {
      const handlerAbort = new AbortController();
      const relays: Relay[] = [];
      let settled = false;
      let finished = false;
      const finish = (error?: unknown) => {
        if (finished) return;
        finished = true;
        untrack();
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        if (error) handlerAbort.abort(error);
        // A request body the handler left unread is cancelled, as over TLS.
        const reason = error ?? new RpcError("closed", "request body left unread by the handler");
        for (const r of relays) r.fail(reason);
      };
      const fail = (error: unknown) => {
        if (!settled) reject(error);
        settled = true;
        finish(error);
      };
      const untrack = net.track({ from, to, fail });
      const timer = setTimeout(
        () => fail(new RpcError("timeout", `${what}: no response within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => fail(abortError(what, options.signal!.reason));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (message.stream) {
        // The caller's body stream is relayed as the handler reads it.
        relays.push(
          new Relay(message.stream, () => {}, (e) => {
            queueMicrotask(() => fail(e)); // as over TLS: the call fails with the source's error
            return new RpcError("closed", `cancelled by caller: ${errorMessage(e)}`);
          }),
        );
      }
      const later = (fn: () => void) => {
        const ms = net.delay(from, to);
        if (ms > 0) setTimeout(fn, ms);
        else queueMicrotask(fn);
      };
      later(() => {
        if (finished || net.drops()) return; // a lost request: the caller times out
        const served = target.#serve(from, path, body, message.stream, handlerAbort.signal, relays);
        if (!served) return fail(new RpcError("overloaded", `${what}: node is overloaded`));
        served.then((response) =>
          later(() => {
            if (finished || net.drops()) {
              response.stream?.cancel(new RpcError("closed", "response lost")).catch(() => {});
              return;
            }
            settled = true;
            clearTimeout(timer);
            if (!response.stream) {
              resolve({ body: response.body });
              return finish();
            }
            const relay = new Relay(
              response.stream,
              () => finish(),
              (e) => new RpcError("remote", `${what}: ${errorMessage(e)}`, { cause: e }),
            );
            relays.push(relay);
            resolve({ body: response.body, stream: relay.stream });
          })
        ).catch((e) =>
          later(() => fail(new RpcError("remote", `${what}: ${errorMessage(e)}`, { cause: e })))
        );
      });
    });
  }

  /** Runs the handler; undefined when overloaded. Response bodies are re-encoded as on the wire. */
  #serve(
    from: string,
    path: string,
    body: unknown,
    stream: ReadableStream<Uint8Array> | undefined,
    signal: AbortSignal,
    relays: Relay[],
  ): Promise<RpcMessage> | undefined {
    const handler = this.#handler;
    if (this.#closed) return Promise.reject(new Error("node is closed"));
    if (!handler) return Promise.reject(new Error(`${path}: this node does not serve requests`));
    const limited = !servedBeyondLimit(path);
    if (limited && this.#active >= (this.opts.maxConcurrentRequests ?? Infinity)) return undefined;
    if (limited) this.#active++;
    const requestStream = stream ? relays.find((r) => r.source === stream)?.stream : undefined;
    return Promise.resolve()
      .then(() => handler(from, path, { body, stream: requestStream }, { signal }))
      .then((r) => ({
        body: decode(encode(r?.body, { ignoreUndefined: true })),
        stream: r?.stream,
      }))
      .finally(() => {
        if (limited) this.#active--;
      });
  }
}

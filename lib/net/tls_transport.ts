/**
 * The RPC transport over mutual TLS (the `node:tls` adapter).
 *
 * Both ends present a certificate signed by the cluster CA; anything else is
 * refused during the handshake. Identity is the node id — SHA-256 of the
 * certificate's SubjectPublicKeyInfo — never a host name. After the
 * handshake both ends greet (HELLO, with the protocol version); only then is
 * the peer registered, so a refused or mistaken peer changes nothing.
 */
import tls from "node:tls";
import type { Socket } from "node:net";
import { isIP } from "node:net";
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import {
  RPC_DATA_FRAME_MAX_BYTES,
  RPC_DIAL_TIMEOUT_MS,
  RPC_DRAIN_TIMEOUT_MS,
  RPC_FRAME_MAX_BYTES,
  RPC_IDENTITY_CONFLICT_REPORT_MS,
  RPC_PING_INTERVAL_MS,
  RPC_PING_TIMEOUT_MS,
  RPC_REDIAL_WAIT_MS,
  RPC_STREAM_IDLE_TIMEOUT_MS,
  RPC_STREAM_WINDOW_BYTES,
  RPC_TIMEOUT_MS,
} from "../util/limits.ts";
import { Connection } from "./_connection.ts";
import { type Admission, type ConnectionLimits, LOG } from "./_stream_host.ts";
import { shortNodeId } from "./node_id.ts";
import { PeerRegistry } from "./_peer_registry.ts";
import { formatAddr, parseAddr } from "./_addr.ts";
import { DialBackoff } from "./_dial_backoff.ts";
import { abortable, remaining, withDeadline } from "./_deadline.ts";
import { handshake, nodeIdOfDer, peerIdOf, remoteAddr, socketChannel } from "./_tls_socket.ts";
import { listenError } from "../util/listen_error.ts";
import {
  type CallOptions,
  RpcError,
  type RpcHandler,
  type RpcMessage,
  type Transport,
} from "./transport.ts";

export { nodeIdOfDer };

/** Failed dials in a row to one address that are all logged; after them, one in this many (~1 a minute). */
const DIAL_FAILURES_LOGGED = 3;
const DIAL_FAILURES_LOG_EVERY = 12;

export interface TlsTransportOptions {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** "host:port" to listen on; port 0 picks one. */
  bindAddr: string;
  /** "host:port" announced to peers (rpc_public_addr); default: our address as they see it. */
  publicAddr?: string;
  /** Bounds work accepted from peers; requests beyond get RpcError("overloaded"). */
  maxConcurrentRequests: number;
  /** Default response timeout of calls. */
  requestTimeoutMs?: number;
  /** Overrides of the limits in lib/util/limits.ts (tests). */
  limits?: Partial<ConnectionLimits & { dialTimeoutMs: number }>;
}

/** How often refused handshakes from one host are logged. */
const TLS_REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Recurring problems remembered for rate-limited logging (beyond it, newcomers go unlogged). */
const LOGGED_PROBLEMS_MAX = 1024;

export class TlsTransport implements Transport {
  readonly nodeId: string;
  readonly #opts: TlsTransportOptions;
  readonly #limits: ConnectionLimits & { dialTimeoutMs: number };
  readonly #registry = new PeerRegistry();
  readonly #conns = new Set<Connection>();
  readonly #sockets = new Set<Socket>();
  readonly #dialing = new Map<string, Promise<Connection>>();
  readonly #backoff = new DialBackoff();
  readonly #admission: Admission;
  #server?: tls.Server;
  #port?: number;
  #handler?: RpcHandler;
  #closed = false;
  /** This process's id in greetings: two live processes with one node id share a certificate. */
  readonly #instance = crypto.randomUUID();
  /** Node ids met from two processes at once, with their addresses (see identityWarnings). */
  readonly #conflicts = new Map<string, { addrs: Set<string>; lastMs: number }>();
  /** Peers that refused this node for using another node's id: why, and when last. */
  readonly #refusals = new Map<string, { reason: string; lastMs: number }>();
  /** When each recurring problem was last logged, so that a redialling peer is not logged every second. */
  readonly #logged = new Map<string, number>();
  /**
   * Addresses at which a dial met this node itself: a node replaced by this
   * one at its address, which peers still name. Never dialled again.
   */
  readonly #ownAddrs = new Set<string>();

  constructor(opts: TlsTransportOptions) {
    this.#opts = opts;
    this.nodeId = nodeIdOfDer(opts.certPem);
    this.#limits = {
      windowBytes: RPC_STREAM_WINDOW_BYTES,
      dataFrameBytes: RPC_DATA_FRAME_MAX_BYTES,
      frameBytes: RPC_FRAME_MAX_BYTES,
      requestTimeoutMs: opts.requestTimeoutMs ?? RPC_TIMEOUT_MS,
      pingIntervalMs: RPC_PING_INTERVAL_MS,
      pingTimeoutMs: RPC_PING_TIMEOUT_MS,
      streamIdleTimeoutMs: RPC_STREAM_IDLE_TIMEOUT_MS,
      drainTimeoutMs: RPC_DRAIN_TIMEOUT_MS,
      dialTimeoutMs: RPC_DIAL_TIMEOUT_MS,
      ...opts.limits,
    };
    let active = 0;
    const max = opts.maxConcurrentRequests;
    this.#admission = {
      max,
      tryAcquire: () => active < max ? (active++, true) : false,
      release: () => void active--,
    };
  }

  /** Connections open now, including ones being retired (tests, metrics). */
  get connectionCount(): number {
    return this.#conns.size;
  }

  async serve(handler: RpcHandler): Promise<{ port: number }> {
    if (this.#closed) throw new RpcError("closed", "transport is closed");
    this.#handler = handler;
    if (this.#server) return { port: this.#port! };
    const { host, port } = parseAddr(this.#opts.bindAddr);
    const server = tls.createServer({
      key: this.#opts.keyPem,
      cert: this.#opts.certPem,
      ca: this.#opts.caPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
      handshakeTimeout: this.#limits.dialTimeoutMs,
    });
    server.on("connection", (sock: Socket) => {
      // Without it, Nagle's algorithm holds a small frame until the last one's ACK, which the
      // peer delays ~40 ms: every replicated write would wait for it.
      sock.setNoDelay(true);
      this.#track(sock);
    });
    server.on("secureConnection", (sock: tls.TLSSocket) => this.#accept(sock));
    server.on("tlsClientError", (err: Error, sock: tls.TLSSocket) => {
      const from = remoteAddr(sock);
      // A misconfigured node redials every second: say it once a minute per host.
      if (this.#shouldLog(`tls:${from.replace(/:\d+$/, "")}`, TLS_REFUSAL_LOG_INTERVAL_MS)) {
        log(
          LOG,
          "warn",
          `refused RPC connection from ${from}: TLS handshake failed (${err.message}). Nodes ` +
            "need certificates signed by the same cluster CA (ca_cert), each trusting it.",
        );
      }
      sock.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(listenError("rpc_bind_addr", this.#opts.bindAddr, e));
      server.once("error", failed);
      server.listen(port, host, () => {
        server.off("error", failed);
        resolve();
      });
    });
    server.on("error", (e: Error) => log(LOG, "error", `RPC listener: ${e.message}`));
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
    log(
      LOG,
      "info",
      `RPC listening on ${formatAddr(host, this.#port)} as ${shortNodeId(this.nodeId)}`,
    );
    return { port: this.#port };
  }

  async call(
    peer: { id?: string; addr: string },
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage & { from: string }> {
    const started = Date.now();
    const conn = await this.#connect(peer.addr, peer.id, options);
    const response = await conn.call(path, message, remaining(options, started));
    return { ...response, from: conn.peerId };
  }

  async callNode(
    id: string,
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage> {
    let conn = this.#registry.get(id);
    if (!conn) {
      const addr = this.#registry.addresses.get(id);
      if (!addr) {
        throw new RpcError(
          "unreachable",
          `no connection to node ${shortNodeId(id)} and no known address`,
        );
      }
      const started = Date.now();
      conn = await this.#connect(addr, id, options);
      return await conn.call(path, message, remaining(options, started));
    }
    return await conn.call(path, message, options);
  }

  connectedPeers(): { id: string; addr: string }[] {
    return this.#registry.peers();
  }

  onPeerConnected(cb: (id: string, addr: string) => void): void {
    this.#registry.onConnected(cb);
  }

  onPeerDisconnected(cb: (id: string) => void): void {
    this.#registry.onDisconnected(cb);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = new RpcError("closed", "transport is closed");
    const server = this.#server;
    const serverClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    const socketsClosed = [...this.#sockets].map((s) =>
      new Promise<void>((resolve) => {
        if (s.destroyed && !s.readable) resolve();
        s.once("close", () => resolve());
        s.destroy();
      })
    );
    for (const conn of this.#conns) conn.close(error);
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  /** Returns the connection to use for a peer, dialling it if needed. */
  async #connect(addr: string, expectedId?: string, options?: CallOptions): Promise<Connection> {
    if (this.#closed) throw new RpcError("closed", "transport is closed");
    if (this.#ownAddrs.has(addr)) {
      throw new RpcError("refused", `${addr} is this node's own address`);
    }
    const knownId = expectedId ?? this.#registry.idAtAddress.get(addr);
    const existing = knownId && this.#registry.get(knownId);
    if (existing) return existing;
    let dial = this.#dialing.get(addr);
    if (!dial) {
      const timeout = Math.min(this.#limits.dialTimeoutMs, options?.timeoutMs ?? Infinity);
      dial = this.#dial(addr, expectedId, timeout).finally(() => this.#dialing.delete(addr));
      this.#dialing.set(addr, dial);
    }
    const lastError = this.#backoff.lastError(addr);
    const waited = lastError === undefined ? dial : withDeadline(
      dial,
      Date.now() + RPC_REDIAL_WAIT_MS,
      () => {},
      "unreachable",
      `cannot reach ${addr}: ${lastError} (reconnecting)`,
    );
    const conn = await abortable(waited, options?.signal, `dialling ${addr}`);
    if (expectedId && conn.peerId !== expectedId) {
      throw new RpcError(
        "refused",
        `node at ${addr} is ${shortNodeId(conn.peerId)}, not the expected ${
          shortNodeId(expectedId)
        }`,
      );
    }
    return this.#registry.get(conn.peerId) ?? conn;
  }

  async #dial(
    addr: string,
    expectedId: string | undefined,
    timeoutMs: number,
  ): Promise<Connection> {
    this.#backoff.check(addr);
    try {
      const conn = await this.#dialOnce(addr, expectedId, timeoutMs);
      this.#backoff.succeeded(addr);
      return conn;
    } catch (e) {
      const failures = this.#backoff.failed(addr, e);
      if (failures <= DIAL_FAILURES_LOGGED || failures % DIAL_FAILURES_LOG_EVERY === 0) {
        log(LOG, "warn", `dialling ${addr} failed (attempt ${failures}): ${errorMessage(e)}`);
      }
      throw e;
    }
  }

  async #dialOnce(addr: string, expectedId: string | undefined, timeoutMs: number) {
    const { host, port } = parseAddr(addr);
    const deadline = Date.now() + timeoutMs;
    const sock = tls.connect({
      host,
      port,
      key: this.#opts.keyPem,
      cert: this.#opts.certPem,
      ca: this.#opts.caPem,
      minVersion: "TLSv1.3",
      servername: isIP(host) ? undefined : host,
      checkServerIdentity: () => undefined, // identity is the node id, checked below
    });
    sock.setNoDelay(true); // as on accepted connections
    this.#track(sock);
    await withDeadline(
      handshake(sock, addr),
      deadline,
      () => sock.destroy(),
      "unreachable",
      `${addr}: no TLS handshake within ${timeoutMs} ms`,
    );
    const peerId = peerIdOf(sock);
    const mismatch = !peerId
      ? "presented no certificate"
      : peerId === this.nodeId
      ? "is this node itself"
      : expectedId && peerId !== expectedId
      ? `is node ${shortNodeId(peerId)}, not the expected ${shortNodeId(expectedId)}`
      : undefined;
    if (mismatch) {
      sock.destroy();
      if (peerId === this.nodeId) this.#ownAddrs.add(addr);
      throw new RpcError("refused", `node at ${addr} ${mismatch}`);
    }
    const nonce = crypto.randomUUID();
    const conn = this.#attach(sock, peerId!, nonce, addr);
    await withDeadline(
      conn.ready.catch((e) => {
        // This transport closing while the peer greets is no refusal by the peer.
        if (this.#closed) throw new RpcError("closed", "transport is closed", { cause: e });
        const why =
          `closed the connection after the TLS handshake (does it accept our certificate?)`;
        throw new RpcError("refused", `${addr} ${why}: ${errorMessage(e)}`, { cause: e });
      }),
      deadline,
      () => conn.destroy(new RpcError("unreachable", "no greeting")),
      "unreachable",
      `${addr}: no greeting within ${timeoutMs} ms`,
    );
    this.#registry.idAtAddress.set(addr, conn.peerId);
    return conn;
  }

  #accept(sock: tls.TLSSocket): void {
    const peerId = peerIdOf(sock);
    const from = remoteAddr(sock);
    if (this.#closed || !sock.authorized || !peerId) {
      log(LOG, "warn", `refused RPC connection from ${from}: not authorized`);
      sock.destroy();
      return;
    }
    if (peerId === this.nodeId) {
      // This node's own dial of its own address is told by the dialling side, once.
      if (!this.#dialledFromHere(sock)) {
        log(
          LOG,
          "warn",
          `refused RPC connection from ${from}: it presents this node's own certificate`,
        );
      }
      sock.destroy();
      return;
    }
    this.#attach(sock, peerId, undefined, undefined);
  }

  /** Whether an accepted socket's other end is a socket this transport dialled. */
  #dialledFromHere(accepted: Socket): boolean {
    for (const sock of this.#sockets) {
      if (
        sock !== accepted && sock.localPort === accepted.remotePort &&
        sock.localAddress === accepted.remoteAddress
      ) return true;
    }
    return false;
  }

  /** Wraps a handshaken socket in a Connection; `nonce`/`dialAddr` are set when we dialled. */
  #attach(
    sock: tls.TLSSocket,
    peerId: string,
    nonce: string | undefined,
    dialAddr: string | undefined,
  ): Connection {
    let lastError: Error | undefined;
    const conn = new Connection({
      peerId,
      dialer: nonce !== undefined,
      channel: socketChannel(sock),
      limits: this.#limits,
      admission: this.#admission,
      handler: () => this.#handler,
      hello: {
        i: this.#instance,
        ...(nonce ? { n: nonce } : {}),
        ...(this.#port ? { port: this.#port } : {}),
        ...(this.#opts.publicAddr ? { addr: this.#opts.publicAddr } : {}),
      },
      onHello: (c, hello) => {
        if (this.#closed) return;
        const announced = typeof hello.addr === "string" ? hello.addr : undefined;
        const port = typeof hello.port === "number" ? hello.port : undefined;
        const addr = dialAddr ?? announced ?? remoteAddr(sock, port);
        const key = nonce ? `${this.nodeId}:${nonce}` : `${peerId}:${String(hello.n)}`;
        const instance = typeof hello.i === "string" ? hello.i : undefined;
        const duplicate = this.#registry.add(c, key, addr, instance);
        if (duplicate) this.#refuseDuplicate(c, duplicate.duplicateOf, addr);
      },
      onGoaway: (c) => this.#registry.unregister(c),
      onClose: (c, error) => {
        this.#conns.delete(c);
        this.#registry.remove(c);
        // Turned away by a peer that met this node's id from another process: the operator must know.
        if (error.kind === "refused") {
          this.#refusals.set(peerId, { reason: error.message, lastMs: Date.now() });
          if (this.#shouldLog(`refused:${peerId}`)) log(LOG, "error", error.message);
        }
      },
    });
    this.#conns.add(conn);
    sock.on("data", (d: Uint8Array) => conn.receive(d));
    sock.on("error", (e: Error) => lastError = e);
    sock.on("close", () => {
      const why = lastError ? lastError.message : "closed by the peer";
      conn.close(new RpcError("closed", `connection to ${shortNodeId(peerId)} lost: ${why}`));
    });
    if (sock.destroyed) conn.close(new RpcError("closed", "socket closed"));
    return conn;
  }

  /**
   * Lately seen: node ids presented by two live processes at once, and
   * peers that refused this node for presenting another's id.
   */
  identityWarnings(): string[] {
    const since = Date.now() - RPC_IDENTITY_CONFLICT_REPORT_MS;
    const warnings: string[] = [];
    for (const [id, c] of this.#conflicts) {
      if (c.lastMs < since) continue;
      warnings.push(
        `Two nodes use the certificate of node ${shortNodeId(id)} (seen at ${
          [...c.addrs].join(" and ")
        }, last ${Math.round((Date.now() - c.lastMs) / 1000)} s ago): the cluster counts them ` +
          "as one and refuses the second. Give each node a certificate and key of its own " +
          `(\`remise cert node\`). This warning goes ${
            RPC_IDENTITY_CONFLICT_REPORT_MS / 60_000
          } minutes after the second stops.`,
      );
    }
    for (const r of this.#refusals.values()) {
      if (r.lastMs >= since) warnings.push(`${r.reason[0].toUpperCase()}${r.reason.slice(1)}`);
    }
    return warnings;
  }

  /** A second process presents a connected peer's id: it keeps a certificate that is not its own. */
  #refuseDuplicate(conn: Connection, firstAddr: string, addr: string): void {
    const id = shortNodeId(conn.peerId);
    const conflict = this.#conflicts.get(conn.peerId) ?? { addrs: new Set<string>(), lastMs: 0 };
    conflict.addrs.add(firstAddr).add(addr);
    conflict.lastMs = Date.now();
    this.#conflicts.set(conn.peerId, conflict);
    if (this.#shouldLog(`duplicate:${conn.peerId}`)) {
      log(
        LOG,
        "error",
        `two nodes present the certificate of node ${id}, one at ${firstAddr} and another at ` +
          `${addr}: the second is refused. Each node needs a certificate and key of its own ` +
          "(`remise cert node`), or the cluster would count both as one node.",
      );
    }
    conn.refuse(
      `node ${id} is already connected from another process (at ${firstAddr}): this node uses ` +
        "the certificate and key of another node. Give it its own (`remise cert node`).",
    );
  }

  /** Whether a recurring problem is due to be logged again. */
  #shouldLog(what: string, everyMs = RPC_IDENTITY_CONFLICT_REPORT_MS): boolean {
    const now = Date.now();
    const last = this.#logged.get(what);
    if (last !== undefined && now - last < everyMs) return false;
    // Hosts scanning an RPC port open to the internet each leave an entry: forget the old ones.
    if (this.#logged.size >= LOGGED_PROBLEMS_MAX) {
      for (const [key, at] of this.#logged) {
        if (now - at >= RPC_IDENTITY_CONFLICT_REPORT_MS) this.#logged.delete(key);
      }
      if (this.#logged.size >= LOGGED_PROBLEMS_MAX) return false;
    }
    this.#logged.set(what, now);
    return true;
  }

  #track(sock: Socket): void {
    this.#sockets.add(sock);
    sock.once("close", () => this.#sockets.delete(sock));
    if (this.#closed) sock.destroy();
  }
}

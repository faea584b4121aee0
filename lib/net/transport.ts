/**
 * The intra-cluster RPC transport: one interface, implemented over mutual TLS
 * (`tls_transport.ts`) and in memory (`memory_transport.ts`), both checked by
 * `transport_conformance.ts`.
 *
 * A request carries a msgpack-encodable `body` and optionally a streamed
 * binary body; so does its response. Streams have backpressure end to end.
 */

/** high: small metadata (pings, table RPCs); background: block transfers (resync). */
export type Priority = "high" | "normal" | "background";

export const PRIORITIES: readonly Priority[] = ["high", "normal", "background"];

export interface RpcMessage {
  /** Any msgpack-encodable value. */
  body: unknown;
  /** A binary body streamed after the message, with backpressure. */
  stream?: ReadableStream<Uint8Array>;
}

export interface CallOptions {
  /** Default "normal"; the response travels at the priority of its request. */
  priority?: Priority;
  /** Time allowed for the response header (re-armed by progress sending the request body). */
  timeoutMs?: number;
  /** Aborting cancels the request on both ends, and the response body if it is being read. */
  signal?: AbortSignal;
}

/** What a handler knows of its request besides the message. */
export interface RequestContext {
  /** Aborted when the caller cancels, times out or the connection is lost. */
  signal: AbortSignal;
}

/** Serves one request; a thrown error reaches the caller as `RpcError("remote")` with its message. */
export type RpcHandler = (
  from: string,
  path: string,
  message: RpcMessage,
  context: RequestContext,
) => Promise<RpcMessage>;

export interface Transport {
  /** This node's full id: hex SHA-256 of its certificate's SubjectPublicKeyInfo. */
  readonly nodeId: string;
  /** Starts listening (port 0 in the bind address picks one); called again, replaces the handler. */
  serve(handler: RpcHandler): Promise<{ port: number }>;
  /**
   * Dials (or reuses) the connection to the peer and sends the request.
   * `peer.id`, if known, is checked against the peer's certificate; when
   * unknown, it is learned from it.
   */
  call(
    peer: { id?: string; addr: string },
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage & { from: string }>;
  /** Calls an already connected (or known-address) peer by id. */
  callNode(
    id: string,
    path: string,
    message: RpcMessage,
    options?: CallOptions,
  ): Promise<RpcMessage>;
  connectedPeers(): { id: string; addr: string }[];
  /**
   * What the operator must fix, seen lately: a node id presented by two live
   * processes at once (two nodes given one certificate; the later one is
   * refused), or a peer that refused this node for it.
   */
  identityWarnings(): string[];
  onPeerConnected(cb: (id: string, addr: string) => void): void;
  onPeerDisconnected(cb: (id: string) => void): void;
  /** Closes every connection (pending calls fail with "closed") and stops listening. */
  close(): Promise<void>;
}

export type RpcErrorKind =
  | "timeout" // no response in time
  | "unreachable" // could not connect (or backing off after failing to)
  | "refused" // TLS handshake or identity check failed
  | "remote" // the handler failed; the message is the remote one
  | "closed" // connection lost, transport closed, or call aborted
  | "overloaded"; // the peer is at max_concurrent_rpc_requests

/**
 * Membership's own requests (pings, layout exchanges, under `system/`) are
 * served beyond max_concurrent_rpc_requests: they are small, and refused
 * under load they would make a busy node look down.
 */
export function servedBeyondLimit(path: string): boolean {
  return path.startsWith("system/");
}

export class RpcError extends Error {
  constructor(readonly kind: RpcErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcError";
  }
}

/** What a node answers a call to a path it serves no handler for. */
export function unknownPathMessage(path: string): string {
  return `Unknown RPC path "${path}"`;
}

/** Whether `e` is the answer of a node that does not serve `path`: one from before it. */
export function isUnknownPath(e: unknown, path: string): boolean {
  return e instanceof RpcError && e.message.includes(unknownPathMessage(path));
}

/** The error for a call aborted through its signal: a TimeoutError reason counts as a timeout. */
export function abortError(what: string, reason: unknown): RpcError {
  const timeout = reason instanceof DOMException && reason.name === "TimeoutError";
  return new RpcError(
    timeout ? "timeout" : "closed",
    `${what}: ${timeout ? "timed out" : "cancelled by the caller"}`,
    { cause: reason },
  );
}

/**
 * One connection between two nodes, multiplexing concurrent requests in both
 * directions over a byte channel (see `_framing.ts` for the wire format).
 *
 * Knows nothing of TLS or sockets: the transport hands it a `ByteChannel`,
 * feeds it received bytes (`receive`) and tells it when the channel closed
 * (`close`). Requests sent are `OutgoingCall`s, requests served are
 * `IncomingStream`s (`_serve_request.ts`); a stream is forgotten once its
 * response and both bodies are done, and frames for forgotten streams are
 * ignored. A retired connection (a duplicate, see `_peer_registry.ts`)
 * starts no requests, says GOAWAY once its own are done, and closes when
 * both sides have said it and nothing is in flight.
 */
import { errorMessage } from "../util/errors.ts";
import {
  decodeCredit,
  decodeHeader,
  encodeFrame,
  encodeHeader,
  type Frame,
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
} from "./_framing.ts";
import { type ByteChannel, FrameWriter } from "./_frame_writer.ts";
import type { IncomingBody, OutgoingBody } from "./_flow_control.ts";
import { OutgoingCall } from "./_outgoing_call.ts";
import { serveRequest } from "./_serve_request.ts";
import {
  type Admission,
  type ConnectionLimits,
  reasonOf,
  type StreamHost,
} from "./_stream_host.ts";
import { shortNodeId } from "./node_id.ts";
import {
  abortError,
  type CallOptions,
  PRIORITIES,
  RpcError,
  type RpcHandler,
  type RpcMessage,
} from "./transport.ts";

export interface ConnectionOptions {
  peerId: string;
  /** Whether this node dialled the connection (it numbers its requests odd). */
  dialer: boolean;
  channel: ByteChannel;
  limits: ConnectionLimits;
  admission: Admission;
  handler: () => RpcHandler | undefined;
  /** Our greeting's fields besides `v`. */
  hello: Record<string, unknown>;
  /** The peer's greeting arrived: the connection is usable. */
  onHello(conn: Connection, hello: Record<string, unknown>): void;
  /** The peer retires this connection. */
  onGoaway(conn: Connection): void;
  onClose(conn: Connection, error: RpcError): void;
}

/** A request being served. */
export interface IncomingStream {
  id: number;
  priority: number;
  abort: AbortController;
  requestBody?: IncomingBody;
  responseBody?: OutgoingBody;
  responded: boolean;
}

export class Connection implements StreamHost {
  readonly peerId: string;
  readonly dialer: boolean;
  readonly limits: ConnectionLimits;
  /** Resolves with the peer's greeting; rejects if the channel closes first. */
  readonly ready: Promise<Record<string, unknown>>;
  readonly writer: FrameWriter;
  readonly incoming = new Map<number, IncomingStream>();
  #opts: ConnectionOptions;
  #decoder: FrameDecoder;
  #outgoing = new Map<number, OutgoingCall>();
  #nextId: number;
  #helloReceived = false;
  #readyResolve!: (hello: Record<string, unknown>) => void;
  #readyReject!: (e: unknown) => void;
  #lastReceived = Date.now();
  #pingTimer: ReturnType<typeof setInterval>;
  #pingSeq = 0;
  #closed = false;
  #retiring = false;
  #refusing = false;
  #closeError?: RpcError;
  #sentGoaway = false;
  #receivedGoaway = false;
  #drainTimer?: ReturnType<typeof setTimeout>;

  constructor(opts: ConnectionOptions) {
    this.#opts = opts;
    this.peerId = opts.peerId;
    this.dialer = opts.dialer;
    this.limits = opts.limits;
    this.#nextId = opts.dialer ? 1 : 2;
    this.#decoder = new FrameDecoder(opts.limits.frameBytes);
    this.writer = new FrameWriter(opts.channel);
    this.ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {});
    this.writer.push(
      0,
      encodeHeader(FrameType.HELLO, 0, { ...opts.hello, v: PROTOCOL_VERSION }),
    );
    this.#pingTimer = setInterval(() => this.#ping(), opts.limits.pingIntervalMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get retiring(): boolean {
    return this.#retiring;
  }

  /** Whether the peer was heard from within two ping intervals (it answers pings). */
  get heardFromLately(): boolean {
    return Date.now() - this.#lastReceived < 2 * this.limits.pingIntervalMs;
  }

  /** Requests in flight in both directions. */
  get streamCount(): number {
    return this.#outgoing.size + this.incoming.size;
  }

  /** Sends a request; resolves with the response header (its body streams after). */
  call(path: string, message: RpcMessage, options: CallOptions = {}): Promise<RpcMessage> {
    const peer = shortNodeId(this.peerId);
    if (this.#closed) {
      // A peer that refused this node said why: that is what the caller needs to know.
      return Promise.reject(
        this.#closeError?.kind === "refused"
          ? this.#closeError
          : new RpcError("closed", `connection to ${peer} is closed`),
      );
    }
    if (this.#sentGoaway || this.#nextId > 0xffff_fff0) {
      this.retire();
      return Promise.reject(new RpcError("closed", `connection to ${peer} is being retired`));
    }
    const priority = PRIORITIES.indexOf(options.priority ?? "normal");
    if (priority < 0) return Promise.reject(new TypeError(`unknown priority ${options.priority}`));
    if (options.signal?.aborted) {
      return Promise.reject(abortError(`${path} to ${peer}`, options.signal.reason));
    }
    let frame: Uint8Array;
    const id = this.#nextId;
    try {
      frame = encodeHeader(FrameType.REQUEST, id, {
        v: PROTOCOL_VERSION,
        p: path,
        b: message.body,
        s: message.stream !== undefined,
        pr: priority,
      });
    } catch (e) {
      return Promise.reject(
        new TypeError(`${path}: request body is not msgpack-encodable`, {
          cause: e,
        }),
      );
    }
    this.#nextId += 2;
    const call = new OutgoingCall(
      this,
      id,
      path,
      priority,
      options.timeoutMs ?? this.limits.requestTimeoutMs,
      frame,
      message,
      options.signal,
      (c) => {
        this.#outgoing.delete(c.id);
        this.#streamGone();
      },
    );
    this.#outgoing.set(id, call);
    return call.promise;
  }

  /** Feeds bytes read from the channel. */
  receive(bytes: Uint8Array): void {
    if (this.#closed || this.#refusing) return;
    this.#lastReceived = Date.now();
    let frames: Frame[];
    try {
      frames = this.#decoder.push(bytes);
    } catch (e) {
      this.destroy(
        new RpcError("closed", `protocol error from ${shortNodeId(this.peerId)}`, {
          cause: e,
        }),
      );
      return;
    }
    for (const frame of frames) {
      if (this.#closed || this.#refusing) return;
      try {
        this.#onFrame(frame);
      } catch (e) {
        this.destroy(
          new RpcError(
            "closed",
            `protocol error from ${shortNodeId(this.peerId)}: ${errorMessage(e)}`,
            { cause: e },
          ),
        );
        return;
      }
    }
  }

  /** Stops starting requests here; closes once both sides are done with it. */
  retire(): void {
    if (this.#retiring || this.#closed) return;
    this.#retiring = true;
    this.#drainTimer = setTimeout(() => {
      this.destroy(new RpcError("closed", `retired connection did not drain in time`));
    }, this.limits.drainTimeoutMs);
    this.#tryGoaway();
  }

  /**
   * Turns the peer away after the greetings: tells it why in a second HELLO
   * (which an older remise ignores, seeing only the connection close), then
   * closes once that is sent.
   */
  refuse(reason: string): void {
    if (this.#closed || this.#refusing) return;
    // Nothing more it sends is served, such as a request sent right after its greeting.
    this.#refusing = true;
    this.writer.push(
      0,
      encodeHeader(FrameType.HELLO, 0, { v: PROTOCOL_VERSION, refused: reason }),
    );
    this.writer.flushed().then(() => {
      this.#opts.channel.end();
      this.close(new RpcError("closed", `refused ${shortNodeId(this.peerId)}: ${reason}`));
    });
  }

  /** Closes the channel at once; pending calls fail with `error`. */
  destroy(error: RpcError): void {
    if (this.#closed) return;
    this.#opts.channel.destroy();
    this.close(error);
  }

  /** The channel is closed: fails everything still in flight. Idempotent. */
  close(error: RpcError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#drainTimer);
    this.writer.close();
    this.#readyReject(error);
    for (const call of [...this.#outgoing.values()]) call.reset(error, false);
    for (const s of this.incoming.values()) this.resetIncoming(s, error, false);
    this.#opts.onClose(this, error);
  }

  #onFrame({ type, stream: id, payload }: Frame): void {
    if (!this.#helloReceived) {
      if (type !== FrameType.HELLO) throw new Error(`frame type ${type} before the greeting`);
      const hello = decodeHeader(payload);
      if (hello.v !== PROTOCOL_VERSION) {
        throw new Error(
          `peer speaks RPC protocol version ${hello.v}, this node version ${PROTOCOL_VERSION}`,
        );
      }
      this.#helloReceived = true;
      this.#readyResolve(hello);
      this.#opts.onHello(this, hello);
      return;
    }
    const mine = (id % 2 === 1) === this.dialer;
    switch (type) {
      case FrameType.REQUEST:
        if (id === 0 || mine || this.incoming.has(id)) throw new Error(`bad request id ${id}`);
        serveRequest(this, id, decodeHeader(payload), this.#opts.handler(), this.#opts.admission);
        return;
      case FrameType.RESPONSE:
        if (mine) this.#outgoing.get(id)?.onResponse(decodeHeader(payload));
        return;
      case FrameType.ERROR:
        if (mine) this.#outgoing.get(id)?.onError(decodeHeader(payload));
        return;
      case FrameType.DATA: {
        const body = mine
          ? this.#outgoing.get(id)?.responseBody
          : this.incoming.get(id)?.requestBody;
        if (body && !body.push(payload)) throw new Error("peer exceeded the flow-control window");
        return;
      }
      case FrameType.END:
        (mine ? this.#outgoing.get(id)?.responseBody : this.incoming.get(id)?.requestBody)?.end();
        return;
      case FrameType.CREDIT: {
        const n = decodeCredit(payload);
        if (mine) this.#outgoing.get(id)?.onCredit(n);
        else this.incoming.get(id)?.responseBody?.addCredit(n);
        return;
      }
      case FrameType.STOP: {
        const reason = new RpcError("closed", `peer stopped reading: ${reasonOf(payload)}`);
        if (mine) this.#outgoing.get(id)?.requestBody?.stop(reason);
        else this.incoming.get(id)?.responseBody?.stop(reason);
        return;
      }
      case FrameType.CANCEL: {
        const why = reasonOf(payload);
        if (mine) {
          const call = this.#outgoing.get(id);
          call?.reset(new RpcError("remote", `${call.path}: ${why}`), false);
        } else {
          const s = this.incoming.get(id);
          if (s) {
            this.resetIncoming(s, new RpcError("closed", `cancelled by caller: ${why}`), false);
          }
        }
        return;
      }
      case FrameType.PING:
        this.writer.push(0, encodeFrame(FrameType.PONG, id));
        return;
      case FrameType.HELLO: {
        const refused = decodeHeader(payload).refused;
        if (typeof refused === "string") {
          this.destroy(
            new RpcError(
              "refused",
              `node ${shortNodeId(this.peerId)} refused this node: ${refused}`,
            ),
          );
        }
        return;
      }
      case FrameType.GOAWAY:
        this.#receivedGoaway = true;
        if (!this.#retiring) {
          this.#opts.onGoaway(this);
          this.retire();
        }
        this.#tryClose();
        return;
      default:
        // PONG refreshes liveness (done above); unknown types from newer peers are ignored.
        return;
    }
  }

  /** Fails a request being served and forgets it; `tell` sends CANCEL to the peer. */
  resetIncoming(s: IncomingStream, error: unknown, tell = true): void {
    if (this.incoming.get(s.id) !== s) return;
    if (tell) {
      this.writer.push(0, encodeHeader(FrameType.CANCEL, s.id, { m: errorMessage(error) }));
    }
    s.abort.abort(error);
    s.requestBody?.fail(error);
    s.responseBody?.stop(error);
    this.incoming.delete(s.id);
    this.#streamGone();
  }

  /** Forgets a served request once it responded and both bodies are done. */
  maybeDoneIncoming(s: IncomingStream): void {
    if (this.incoming.get(s.id) !== s || !s.responded) return;
    if (s.responseBody && !s.responseBody.finished) return;
    if (s.requestBody && !s.requestBody.finished) {
      // Responded without reading the whole request body: stop its sender.
      const reason = new RpcError("closed", "request body left unread by the handler");
      this.writer.push(0, encodeHeader(FrameType.STOP, s.id, { m: reason.message }));
      s.requestBody.fail(reason); // finishing the body calls back here
      return;
    }
    this.incoming.delete(s.id);
    this.#streamGone();
  }

  #streamGone(): void {
    if (this.#retiring) {
      this.#tryGoaway();
      this.#tryClose();
    }
  }

  #tryGoaway(): void {
    if (this.#closed || this.#sentGoaway || this.#outgoing.size > 0) return;
    this.#sentGoaway = true;
    this.writer.push(2, encodeFrame(FrameType.GOAWAY, 0));
    this.#tryClose();
  }

  #tryClose(): void {
    if (this.#closed || !this.#sentGoaway || !this.#receivedGoaway || this.streamCount > 0) return;
    this.writer.flushed().then(() => this.#opts.channel.end());
  }

  #ping(): void {
    const silent = Date.now() - this.#lastReceived;
    if (silent > this.limits.pingTimeoutMs) {
      this.destroy(
        new RpcError("closed", `no answer from ${shortNodeId(this.peerId)} for ${silent} ms`),
      );
      return;
    }
    this.#pingSeq = (this.#pingSeq + 1) >>> 0;
    this.writer.push(0, encodeFrame(FrameType.PING, this.#pingSeq));
  }
}

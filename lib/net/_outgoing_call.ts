/**
 * A request this node sent on a connection: its response timeout, its
 * request body being pumped out, and its response body coming in. It is
 * `done` once the response arrived and both bodies ended, or it was reset.
 */
import { errorMessage } from "../util/errors.ts";
import {
  encodeCredit,
  encodeFrame,
  encodeFrameHeader,
  encodeHeader,
  FrameType,
  PROTOCOL_VERSION,
} from "./_framing.ts";
import { IncomingBody, OutgoingBody } from "./_flow_control.ts";
import { type StreamHost } from "./_stream_host.ts";
import { shortNodeId } from "./node_id.ts";
import { abortError, RpcError, type RpcErrorKind, type RpcMessage } from "./transport.ts";

const KINDS = new Set<RpcErrorKind>([
  "timeout",
  "unreachable",
  "refused",
  "remote",
  "closed",
  "overloaded",
]);

export class OutgoingCall {
  readonly promise: Promise<RpcMessage>;
  requestBody?: OutgoingBody;
  responseBody?: IncomingBody;
  #settle?: { resolve(m: RpcMessage): void; reject(e: unknown): void };
  #timer?: ReturnType<typeof setTimeout>;
  #detach?: () => void;
  #done = false;
  #reset = false;
  /** Whether the request body's queued data frames are still wanted (not reset nor stopped). */
  readonly #sending = () => !this.#reset && !this.requestBody?.stopped;

  /** Queues the request frame (built by the caller); `onDone` runs once when the call is over. */
  constructor(
    readonly host: StreamHost,
    readonly id: number,
    readonly path: string,
    readonly priority: number,
    readonly timeoutMs: number,
    requestFrame: Uint8Array,
    message: RpcMessage,
    signal: AbortSignal | undefined,
    readonly onDone: (call: OutgoingCall) => void,
  ) {
    this.promise = new Promise((resolve, reject) => this.#settle = { resolve, reject });
    host.writer.push(priority, requestFrame);
    this.#armTimer();
    if (signal) {
      const what = `${path} to ${shortNodeId(host.peerId)}`;
      const onAbort = () => this.reset(abortError(what, signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      this.#detach = () => signal.removeEventListener("abort", onAbort);
    }
    if (message.stream) {
      const { windowBytes, dataFrameBytes, streamIdleTimeoutMs } = host.limits;
      const body = this.requestBody = new OutgoingBody(
        windowBytes,
        dataFrameBytes,
        streamIdleTimeoutMs,
      );
      body.pump(
        message.stream,
        (chunk) =>
          host.writer.pushPayload(
            priority,
            encodeFrameHeader(FrameType.DATA, id, chunk.length),
            chunk,
            this.#sending,
          ),
        () => host.writer.push(priority, encodeFrame(FrameType.END, id)),
        (e) => this.reset(e),
        () => this.#settle && this.#armTimer(), // progress re-arms the response timeout
      ).then(() => this.#maybeDone());
    }
  }

  get done(): boolean {
    return this.#done;
  }

  onResponse(header: Record<string, unknown>): void {
    if (!this.#settle) return;
    if (header.v !== PROTOCOL_VERSION) {
      this.reset(
        new RpcError(
          "remote",
          `${this.path}: response in unsupported protocol version ${header.v}`,
        ),
      );
      return;
    }
    const settle = this.#settle;
    this.#settle = undefined;
    clearTimeout(this.#timer);
    if (header.s === true) {
      const { writer, limits } = this.host;
      this.responseBody = new IncomingBody(
        limits.windowBytes,
        (n) => writer.push(0, encodeCredit(this.id, n)),
        (reason) =>
          writer.push(0, encodeHeader(FrameType.STOP, this.id, { m: errorMessage(reason) })),
        () => this.#maybeDone(),
      );
    }
    settle.resolve({ body: header.b, stream: this.responseBody?.stream });
    this.#maybeDone();
  }

  onError(header: Record<string, unknown>): void {
    const kind = KINDS.has(header.k as RpcErrorKind) ? header.k as RpcErrorKind : "remote";
    const message = typeof header.m === "string" ? header.m : "unknown error";
    this.reset(
      new RpcError(kind, `${this.path} on ${shortNodeId(this.host.peerId)}: ${message}`),
      false,
    );
  }

  /** Flow-control credit for the request body: also progress for the timeout. */
  onCredit(bytes: number): void {
    this.requestBody?.addCredit(bytes);
    if (this.#settle) this.#armTimer();
  }

  /** Fails the call and forgets it; `tell` sends CANCEL to the peer. */
  reset(error: unknown, tell = true): void {
    if (this.#done) return;
    this.#reset = true;
    if (tell) {
      this.host.writer.push(
        0,
        encodeHeader(FrameType.CANCEL, this.id, { m: errorMessage(error) }),
      );
    }
    this.#settle?.reject(error);
    this.#settle = undefined;
    this.requestBody?.stop(error);
    this.responseBody?.fail(error);
    this.#finish();
  }

  #maybeDone(): void {
    if (this.#done || this.#settle) return;
    if (this.requestBody && !this.requestBody.finished) return;
    if (this.responseBody && !this.responseBody.finished) return;
    this.#finish();
  }

  #finish(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#detach?.();
    this.onDone(this);
  }

  #armTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const peer = shortNodeId(this.host.peerId);
      this.reset(
        new RpcError("timeout", `${this.path} to ${peer}: no response within ${this.timeoutMs} ms`),
      );
    }, this.timeoutMs);
  }
}

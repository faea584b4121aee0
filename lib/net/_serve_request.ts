/**
 * The serving side of one request on a connection: admission against
 * max_concurrent_rpc_requests, the handler call, and the response with its
 * streamed body.
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
import type { Connection, IncomingStream } from "./_connection.ts";
import { type Admission, LOG } from "./_stream_host.ts";
import { shortNodeId } from "./node_id.ts";
import { log } from "../util/log.ts";
import {
  RpcError,
  type RpcErrorKind,
  type RpcHandler,
  type RpcMessage,
  servedBeyondLimit,
} from "./transport.ts";

export function serveRequest(
  conn: Connection,
  id: number,
  header: Record<string, unknown>,
  handler: RpcHandler | undefined,
  admission: Admission,
): void {
  const priority = typeof header.pr === "number" && header.pr >= 0 && header.pr <= 2
    ? header.pr
    : 1;
  const refuse = (kind: RpcErrorKind, message: string) =>
    conn.writer.push(
      0,
      encodeHeader(FrameType.ERROR, id, { v: PROTOCOL_VERSION, k: kind, m: message }),
    );
  if (header.v !== PROTOCOL_VERSION) {
    refuse(
      "remote",
      `unsupported RPC protocol version ${
        JSON.stringify(header.v)
      }: this node speaks version ${PROTOCOL_VERSION}`,
    );
    return;
  }
  if (typeof header.p !== "string") {
    refuse("remote", "request has no path");
    return;
  }
  const path = header.p;
  if (!handler) {
    refuse("remote", `${path}: this node does not serve requests`);
    return;
  }
  const limited = !servedBeyondLimit(path);
  if (limited && !admission.tryAcquire()) {
    refuse(
      "overloaded",
      `${path}: node is overloaded (${admission.max} requests in progress)`,
    );
    return;
  }
  const s: IncomingStream = { id, priority, abort: new AbortController(), responded: false };
  conn.incoming.set(id, s);
  if (header.s === true) {
    s.requestBody = new IncomingBody(
      conn.limits.windowBytes,
      (n) => conn.writer.push(0, encodeCredit(id, n)),
      (reason) =>
        conn.writer.push(0, encodeHeader(FrameType.STOP, id, { m: errorMessage(reason) })),
      () => conn.maybeDoneIncoming(s),
    );
  }
  const message: RpcMessage = { body: header.b, stream: s.requestBody?.stream };
  const alive = () => conn.incoming.get(id) === s;
  let released = !limited;
  const release = () => {
    if (!released) admission.release();
    released = true;
  };
  Promise.resolve()
    .then(() => handler(conn.peerId, path, message, { signal: s.abort.signal }))
    .then(
      (response) => {
        if (!alive()) {
          response?.stream?.cancel(s.abort.signal.reason).catch(() => {});
          release();
          return;
        }
        respond(conn, s, response, release);
      },
      (error) => {
        release();
        if (!alive()) return;
        s.responded = true;
        conn.writer.push(
          0,
          encodeHeader(FrameType.ERROR, id, {
            v: PROTOCOL_VERSION,
            k: "remote",
            m: errorMessage(error),
          }),
        );
        s.requestBody?.fail(new RpcError("closed", "the handler failed"));
        conn.maybeDoneIncoming(s);
      },
    )
    .catch((e) => {
      log(LOG, "error", `serving ${path} for ${shortNodeId(conn.peerId)}: ${errorMessage(e)}`);
      release();
      conn.resetIncoming(s, e);
    });
}

function respond(
  conn: Connection,
  s: IncomingStream,
  response: RpcMessage,
  release: () => void,
): void {
  let frame: Uint8Array;
  try {
    frame = encodeHeader(FrameType.RESPONSE, s.id, {
      v: PROTOCOL_VERSION,
      b: response?.body,
      s: response?.stream !== undefined,
    });
  } catch (e) {
    response?.stream?.cancel(e).catch(() => {});
    release();
    conn.resetIncoming(s, new Error(`cannot encode the response: ${errorMessage(e)}`));
    return;
  }
  s.responded = true;
  conn.writer.push(s.priority, frame);
  if (!response?.stream) {
    release();
    conn.maybeDoneIncoming(s);
    return;
  }
  const body = s.responseBody = new OutgoingBody(
    conn.limits.windowBytes,
    conn.limits.dataFrameBytes,
    conn.limits.streamIdleTimeoutMs,
  );
  // Data frames still queued once the stream is reset or stopped are dropped.
  const sending = () => !s.abort.signal.aborted && !body.stopped;
  body.pump(
    response.stream,
    (chunk) =>
      conn.writer.pushPayload(
        s.priority,
        encodeFrameHeader(FrameType.DATA, s.id, chunk.length),
        chunk,
        sending,
      ),
    () => conn.writer.push(s.priority, encodeFrame(FrameType.END, s.id)),
    (e) => conn.resetIncoming(s, e),
  ).then(() => {
    release();
    conn.maybeDoneIncoming(s);
  });
}

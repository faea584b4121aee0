/** What the streams of a connection share with it: limits, the frame writer, logging. */
import { log } from "../util/log.ts";
import { decodeHeader } from "./_framing.ts";
import type { FrameWriter } from "./_frame_writer.ts";

export const LOG = "remise::net";

/** Bounds the requests served at once, across all connections of a transport. */
export interface Admission {
  tryAcquire(): boolean;
  release(): void;
  readonly max: number;
}

/** The bounds of lib/util/limits.ts a connection applies (tests shorten some). */
export interface ConnectionLimits {
  windowBytes: number;
  dataFrameBytes: number;
  frameBytes: number;
  requestTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  streamIdleTimeoutMs: number;
  drainTimeoutMs: number;
}

/** The connection as its streams see it. */
export interface StreamHost {
  readonly peerId: string;
  readonly limits: ConnectionLimits;
  readonly writer: FrameWriter;
}

/** The reason carried by a CANCEL or STOP frame. */
export function reasonOf(payload: Uint8Array): string {
  try {
    const m = decodeHeader(payload).m;
    return typeof m === "string" ? m : "no reason given";
  } catch {
    return "no reason given";
  }
}

export function debug(message: string): void {
  log(LOG, "debug", message);
}

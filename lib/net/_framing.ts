/**
 * Wire framing of the RPC protocol.
 *
 * Every frame: u32 length of what follows (big-endian), u8 type, u32 stream
 * id, payload. Headers (request, response, error, hello, cancel, stop) are
 * msgpack maps; request, response and hello carry `v` = PROTOCOL_VERSION.
 * Data frames carry raw body bytes, credit frames a u32 byte count.
 *
 * Stream ids: the node that dialled the connection numbers its requests odd,
 * the other even, so both can start requests without colliding; a request's
 * body, its response and the response's body share its id.
 */
import { decode, encode } from "@msgpack/msgpack";

export const PROTOCOL_VERSION = 1;

export const FRAME_HEADER_BYTES = 9;

export const FrameType = {
  /** {v, p: path, b: body, s: has stream, pr: priority index} */
  REQUEST: 1,
  /** {v, b: body, s: has stream} */
  RESPONSE: 2,
  /** {v, k: kind, m: message}: the request failed; ends the stream. */
  ERROR: 3,
  /** Raw bytes of a body. */
  DATA: 4,
  /** The body ends cleanly. */
  END: 5,
  /** {m: reason}: reset the whole stream (both bodies). */
  CANCEL: 6,
  /** u32: the receiver of a body may send this many more bytes. */
  CREDIT: 7,
  /** {m: reason}: stop sending the body you are sending on this stream. */
  STOP: 8,
  /** {v, n?: nonce (dialler), port?: listen port, addr?: public address} */
  HELLO: 9,
  /** Stream id field carries a sequence number. */
  PING: 10,
  PONG: 11,
  /** The sender starts no more requests on this connection. */
  GOAWAY: 12,
} as const;

export type FrameTypeCode = typeof FrameType[keyof typeof FrameType];

export interface Frame {
  type: number;
  stream: number;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** One frame as one buffer (a single socket write). */
export function encodeFrame(type: number, stream: number, payload: Uint8Array = EMPTY): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(frame, type, stream, payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * The header of a frame whose payload is written after it from the
 * caller's buffer (data frames: copying 64 KiB per frame into a new buffer
 * made a garbage ArrayBuffer per frame, which V8 collects only every few
 * hundred MiB).
 */
export function encodeFrameHeader(type: number, stream: number, payloadBytes: number): Uint8Array {
  const head = new Uint8Array(FRAME_HEADER_BYTES);
  writeFrameHeader(head, type, stream, payloadBytes);
  return head;
}

function writeFrameHeader(
  frame: Uint8Array,
  type: number,
  stream: number,
  payloadBytes: number,
): void {
  const view = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES);
  view.setUint32(0, 5 + payloadBytes);
  view.setUint8(4, type);
  view.setUint32(5, stream);
}

export function encodeHeader(type: number, stream: number, header: unknown): Uint8Array {
  return encodeFrame(type, stream, encode(header, { ignoreUndefined: true }));
}

export function encodeCredit(stream: number, bytes: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, bytes);
  return encodeFrame(FrameType.CREDIT, stream, payload);
}

export function decodeCredit(payload: Uint8Array): number {
  if (payload.length !== 4) throw new Error("credit frame payload is not 4 bytes");
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

/** Decodes a msgpack header that must be a map. */
export function decodeHeader(payload: Uint8Array): Record<string, unknown> {
  const value = decode(payload);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("frame header is not a msgpack map");
  }
  return value as Record<string, unknown>;
}

/**
 * Splits a byte stream into frames. Payloads that arrive within one chunk
 * are views into it (no copy); others are assembled once, but for data
 * frames: those are raw body bytes, so one spanning chunks comes out as a
 * data frame per chunk, each a view (a replica receives every upload's
 * blocks, and joining them cost a copy and an allocation per frame).
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #header = new Uint8Array(FRAME_HEADER_BYTES);

  constructor(readonly maxFrameBytes: number) {}

  /** Feeds bytes; returns the frames completed by them. Throws on an oversized frame. */
  push(chunk: Uint8Array): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.#buffered >= FRAME_HEADER_BYTES) {
      const head = this.#peek(FRAME_HEADER_BYTES);
      const view = new DataView(head.buffer, head.byteOffset, FRAME_HEADER_BYTES);
      const length = view.getUint32(0);
      if (length < 5 || length - 5 > this.maxFrameBytes) {
        throw new Error(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
      }
      if (this.#buffered < 4 + length) break;
      const type = view.getUint8(4);
      const stream = view.getUint32(5);
      this.#skip(FRAME_HEADER_BYTES);
      if (type === FrameType.DATA && length > 5) {
        for (const payload of this.#takeViews(length - 5)) frames.push({ type, stream, payload });
      } else {
        frames.push({ type, stream, payload: this.#take(length - 5) });
      }
    }
    return frames;
  }

  /** The first n buffered bytes, as a view if they sit in one chunk. */
  #peek(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first.length >= n) return first;
    let filled = 0;
    for (const c of this.#chunks) {
      const part = c.subarray(0, n - filled);
      this.#header.set(part, filled);
      filled += part.length;
      if (filled === n) break;
    }
    return this.#header;
  }

  /** The next n buffered bytes, as views of the chunks they sit in. */
  #takeViews(n: number): Uint8Array[] {
    this.#buffered -= n;
    const views: Uint8Array[] = [];
    for (let left = n; left > 0;) {
      const c = this.#chunks[0];
      const part = plain(c.subarray(0, left));
      views.push(part);
      left -= part.length;
      if (part.length === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(part.length);
    }
    return views;
  }

  #skip(n: number): void {
    this.#take(n);
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return EMPTY;
    if (first.length >= n) {
      const out = plain(first.subarray(0, n));
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0];
      const part = c.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
      if (part.length === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(part.length);
    }
    return out;
  }
}

/** A plain Uint8Array view (not a node Buffer) of the same bytes. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * A minimal HTTP/1.1 keep-alive client over `Deno.connect`, for the load
 * generator: one request in flight per connection, the request head written
 * as one buffer, response bodies discarded into a reused scratch buffer (or
 * collected as text for the few responses the benchmark reads). Far lighter
 * per request than `fetch` or `node:http`, so the client is not what limits
 * small-object throughput on loopback.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF2 = [13, 10, 13, 10];
const READ_BUFFER_BYTES = 64 * 1024;
const SCRATCH_BYTES = 1024 * 1024;

export interface ResponseHead {
  status: number;
  headers: Map<string, string>;
  /** Body length from Content-Length, or -1 when chunked or until close. */
  contentLength: number;
  chunked: boolean;
  /** False when the server asked to close (a body without length also ends at close). */
  keepAlive: boolean;
}

export interface Target {
  hostname: string;
  port: number;
  tls: boolean;
  /** The Host header value. */
  host: string;
}

export function parseTarget(endpoint: string): Target {
  const url = new URL(endpoint);
  const tls = url.protocol === "https:";
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  return { hostname: url.hostname, port, tls, host: url.host };
}

/** The bytes of a request head; `contentLength` adds the header when given. */
export function requestHead(
  method: string,
  pathAndQuery: string,
  host: string,
  headers: Record<string, string>,
  contentLength?: number,
): Uint8Array {
  let head = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
  if (contentLength !== undefined) head += `content-length: ${contentLength}\r\n`;
  return encoder.encode(head + "\r\n");
}

export class Http1Connection {
  #buf = new Uint8Array(READ_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  static #scratch = new Uint8Array(SCRATCH_BYTES);
  closed = false;

  private constructor(readonly conn: Deno.Conn) {}

  static async open(target: Target): Promise<Http1Connection> {
    const conn = target.tls
      ? await Deno.connectTls({ hostname: target.hostname, port: target.port })
      : await Deno.connect({ hostname: target.hostname, port: target.port });
    if (!target.tls) (conn as Deno.TcpConn).setNoDelay(true);
    return new Http1Connection(conn);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.byteLength) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads more bytes into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  #indexOf(pattern: number[], from: number): number {
    const b = this.#buf;
    const last = this.#end - pattern.length;
    outer: for (let i = from; i <= last; i++) {
      for (let j = 0; j < pattern.length; j++) if (b[i + j] !== pattern[j]) continue outer;
      return i;
    }
    return -1;
  }

  async readHead(): Promise<ResponseHead> {
    for (;;) {
      // bytes already searched, relative to #start (which #fill may move)
      let searched = 0;
      let at = -1;
      for (;;) {
        at = this.#indexOf(CRLF2, this.#start + searched);
        if (at >= 0) break;
        searched = Math.max(0, this.#end - this.#start - 3);
        if (!(await this.#fill())) throw new Error("connection closed before a response");
      }
      const text = decoder.decode(this.#buf.subarray(this.#start, at));
      this.#start = at + 4;
      const lines = text.split("\r\n");
      const status = Number(lines[0].slice(9, 12));
      if (status === 100) continue; // 100 Continue: the real response follows
      const headers = new Map<string, string>();
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(":");
        if (colon > 0) {
          headers.set(lines[i].slice(0, colon).toLowerCase(), lines[i].slice(colon + 1).trim());
        }
      }
      const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
      const cl = headers.get("content-length");
      const contentLength = chunked ? -1 : cl !== undefined ? Number(cl) : -1;
      const keepAlive = !/close/i.test(headers.get("connection") ?? "");
      return { status, headers, contentLength, chunked, keepAlive };
    }
  }

  /**
   * Reads the body of a response to `method`; returns its length and, when
   * `collect`, its text. `onFirstByte` is called when its first byte is in.
   */
  async readBody(
    method: string,
    head: ResponseHead,
    collect = false,
    onFirstByte?: () => void,
  ): Promise<{ bytes: number; text?: string }> {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    const take = (chunk: Uint8Array) => {
      if (bytes === 0 && chunk.byteLength > 0) onFirstByte?.();
      bytes += chunk.byteLength;
      if (collect) parts.push(chunk.slice());
    };
    const noBody = method === "HEAD" || head.status === 204 || head.status === 304;
    if (noBody) {
      // nothing
    } else if (head.chunked) {
      for (;;) {
        let eol = this.#indexOf([13, 10], this.#start);
        while (eol < 0) {
          if (!(await this.#fill())) throw new Error("connection closed inside a chunked body");
          eol = this.#indexOf([13, 10], this.#start);
        }
        const size = parseInt(decoder.decode(this.#buf.subarray(this.#start, eol)), 16);
        this.#start = eol + 2;
        if (size === 0) {
          // trailers, then an empty line
          for (;;) {
            let end = this.#indexOf([13, 10], this.#start);
            while (end < 0) {
              if (!(await this.#fill())) throw new Error("connection closed in trailers");
              end = this.#indexOf([13, 10], this.#start);
            }
            const empty = end === this.#start;
            this.#start = end + 2;
            if (empty) break;
          }
          break;
        }
        await this.#consume(size + 2, take, size, !collect);
      }
    } else if (head.contentLength >= 0) {
      await this.#consume(head.contentLength, take, head.contentLength, !collect);
    } else {
      // until close
      for (;;) {
        if (this.#end > this.#start) {
          take(this.#buf.subarray(this.#start, this.#end));
          this.#start = this.#end;
        }
        if (!(await this.#fill())) break;
      }
      this.closed = true;
    }
    if (!head.keepAlive) this.close();
    return { bytes, text: collect ? decoder.decode(concat(parts)) : undefined };
  }

  /**
   * Consumes `total` bytes, giving the first `payload` of them to `take`.
   * `discard`: large reads go to a scratch buffer shared by every connection
   * (its content is never looked at after `take` counted it).
   */
  async #consume(
    total: number,
    take: (c: Uint8Array) => void,
    payload: number,
    discard: boolean,
  ): Promise<void> {
    let left = total;
    let payloadLeft = payload;
    while (left > 0) {
      if (this.#end > this.#start) {
        const n = Math.min(left, this.#end - this.#start);
        const p = Math.min(n, payloadLeft);
        if (p > 0) take(this.#buf.subarray(this.#start, this.#start + p));
        this.#start += n;
        left -= n;
        payloadLeft -= p;
        continue;
      }
      if (discard && left >= READ_BUFFER_BYTES) {
        // large bodies: read straight into the scratch buffer, never past the body
        const scratch = Http1Connection.#scratch;
        const n = await this.conn.read(scratch.subarray(0, Math.min(left, scratch.length)));
        if (n === null) throw new Error("connection closed inside a body");
        const p = Math.min(n, payloadLeft);
        if (p > 0) take(scratch.subarray(0, p));
        left -= n;
        payloadLeft -= p;
        continue;
      }
      if (!(await this.#fill())) throw new Error("connection closed inside a body");
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

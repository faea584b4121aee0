/**
 * Credit-based flow control of one streamed body, sender and receiver sides.
 *
 * The receiver starts the stream with `window` bytes of credit granted
 * implicitly; it grants more as its consumer takes chunks, in batches of a
 * quarter window. The sender never has more than the credit in flight, so a
 * body costs at most one window of memory at the receiver, and a consumer
 * that stops reading stalls only its own stream.
 */
import { RpcError } from "./transport.ts";

/** Receiving side: a ReadableStream fed by data frames. */
export class IncomingBody {
  readonly stream: ReadableStream<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #consumed = 0;
  #ended = false;
  #error: unknown = undefined;
  #finished = false;
  #wake: (() => void) | undefined;
  #finish: () => void;

  /**
   * @param sendCredit grants the sender more bytes
   * @param onStop the consumer cancelled: tell the sender to stop
   * @param onFinish called once when no more frames can come: ended, failed or cancelled
   */
  constructor(
    readonly window: number,
    sendCredit: (bytes: number) => void,
    onStop: (reason: unknown) => void,
    onFinish: () => void,
  ) {
    const finish = this.#finish = () => {
      if (this.#finished) return;
      this.#finished = true;
      onFinish();
    };
    this.stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (this.#chunks.length === 0 && !this.#ended && this.#error === undefined) {
          await new Promise<void>((resolve) => this.#wake = resolve);
        }
        if (this.#chunks.length > 0) {
          const chunk = this.#chunks.shift()!;
          this.#buffered -= chunk.length;
          this.#consumed += chunk.length;
          if (this.#consumed >= this.window / 4 && this.#error === undefined && !this.#ended) {
            sendCredit(this.#consumed);
            this.#consumed = 0;
          }
          controller.enqueue(chunk);
        } else if (this.#error !== undefined) {
          controller.error(this.#error);
        } else {
          controller.close();
        }
      },
      cancel: (reason) => {
        const wasOpen = !this.#ended && this.#error === undefined;
        this.#chunks = [];
        this.#buffered = 0;
        this.#error ??= reason ?? new Error("cancelled");
        if (wasOpen) onStop(reason);
        finish();
        this.#wakeUp();
      },
    }, { highWaterMark: 0 });
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Data from the sender; false if it exceeds the granted credit (a protocol violation). */
  push(chunk: Uint8Array): boolean {
    if (this.#ended || this.#error !== undefined) return true; // late frames after cancel
    this.#buffered += chunk.length;
    if (this.#buffered > this.window) return false;
    this.#chunks.push(chunk);
    this.#wakeUp();
    return true;
  }

  end(): void {
    if (this.#error !== undefined) return;
    this.#ended = true;
    this.#finish();
    this.#wakeUp();
  }

  /** The body failed (sender cancelled, connection lost): the consumer's next read throws. */
  fail(error: unknown): void {
    if (this.#ended || this.#error !== undefined) return; // complete bodies stay readable
    this.#error = error;
    this.#chunks = [];
    this.#buffered = 0;
    this.#finish();
    this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Sending side: pumps a ReadableStream out as data frames within the credit. */
export class OutgoingBody {
  #credit: number;
  #waiter: (() => void) | undefined;
  #stopped: unknown = undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #finished = false;

  constructor(
    window: number,
    readonly maxFrameBytes: number,
    readonly idleTimeoutMs: number,
  ) {
    this.#credit = window;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Whether the pump was stopped: data it queued is no longer wanted. */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  addCredit(bytes: number): void {
    this.#credit += bytes;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Stops the pump (peer stopped reading, stream reset, connection lost); cancels the source. */
  stop(reason: unknown): void {
    if (this.#stopped !== undefined || this.#finished) return;
    this.#stopped = reason ?? new Error("stopped");
    this.#reader?.cancel(reason).catch(() => {});
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /**
   * Sends the source: `sendData` per chunk, then `sendEnd`. Resolves when the
   * body is sent or stopped; a source error or credit starvation is passed
   * to `onError` (the caller resets the stream).
   */
  async pump(
    source: ReadableStream<Uint8Array>,
    sendData: (chunk: Uint8Array) => void,
    sendEnd: () => void,
    onError: (error: unknown) => void,
    onProgress?: () => void,
  ): Promise<void> {
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = this.#reader = source.getReader();
    } catch (e) {
      this.#finished = true;
      onError(e);
      return;
    }
    if (this.#stopped !== undefined) reader.cancel(this.#stopped).catch(() => {});
    try {
      while (this.#stopped === undefined) {
        const { done, value } = await reader.read();
        if (this.#stopped !== undefined) break;
        if (done) {
          sendEnd();
          break;
        }
        if (!(value instanceof Uint8Array)) {
          throw new TypeError("a body stream must yield Uint8Array chunks");
        }
        let rest = value;
        while (rest.length > 0 && this.#stopped === undefined) {
          if (this.#credit <= 0) await this.#waitForCredit();
          if (this.#stopped !== undefined) break;
          const n = Math.min(rest.length, this.#credit, this.maxFrameBytes);
          sendData(rest.subarray(0, n));
          this.#credit -= n;
          rest = rest.subarray(n);
          onProgress?.();
        }
      }
    } catch (e) {
      if (this.#stopped === undefined) {
        this.#stopped = e;
        reader.cancel(e).catch(() => {});
        onError(e);
      }
    } finally {
      this.#finished = true;
      try {
        reader.releaseLock();
      } catch { /* a pending read after cancel */ }
    }
  }

  async #waitForCredit(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#waiter = resolve;
        timer = setTimeout(() => {
          reject(
            new RpcError(
              "timeout",
              `receiver granted no flow-control credit for ${this.idleTimeoutMs} ms`,
            ),
          );
        }, this.idleTimeoutMs);
      });
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
  }
}

/**
 * The write side of a connection: one FIFO queue of frames per priority.
 * The writer always sends pending high-priority frames before normal ones and
 * normal before background, and hands the channel one frame at a time while
 * it accepts more, so a metadata request waits behind at most the bytes
 * already in the socket buffer, never behind a queued block transfer.
 *
 * Data frames are queued as a header and a view of the sender's bytes, not
 * copied: the writer hands one to the channel only when the channel is idle,
 * so that the channel takes its bytes at once and keeps no reference to them,
 * and drops it unwritten once its stream was reset (the sender may then reuse
 * its buffer).
 */

/** The byte pipe under a connection (a TLS socket, or an in-memory pipe in tests). */
export interface ByteChannel {
  /** Queues bytes; false when the channel's buffer is full (wait for `drained`). */
  write(bytes: Uint8Array): boolean;
  /**
   * Writes a frame's header and payload together. Called only when `idle()`:
   * the channel is done with both buffers when this returns.
   */
  writeFrame(head: Uint8Array, payload: Uint8Array): boolean;
  /** Whether everything written has been handed on (a write now takes its bytes at once). */
  idle(): boolean;
  /** Resolves when the channel is idle, or is closed. */
  whenIdle(): Promise<void>;
  /** Resolves when the channel accepts writes again, or is closed. */
  drained(): Promise<void>;
  /** Flushes and closes gracefully. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
}

/** A data frame: header, a view of the sender's bytes, and whether its stream still wants it sent. */
interface PayloadFrame {
  head: Uint8Array;
  payload: Uint8Array;
  live: () => boolean;
}

type Queued = Uint8Array | PayloadFrame;

/** A FIFO with O(1) shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

export class FrameWriter {
  #queues = [new Fifo<Queued>(), new Fifo<Queued>(), new Fifo<Queued>()];
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(readonly channel: ByteChannel) {}

  /** Queues a frame at priority 0 (high), 1 (normal) or 2 (background). */
  push(priority: number, frame: Uint8Array): void {
    if (this.#closed) return;
    this.#queues[priority].push(frame);
    if (!this.#running) this.#run();
  }

  /**
   * Queues a frame whose payload is sent from `payload` itself, which must
   * not change until the frame is written or `live` says false.
   */
  pushPayload(priority: number, head: Uint8Array, payload: Uint8Array, live: () => boolean): void {
    if (this.#closed) return;
    this.#queues[priority].push({ head, payload, live });
    if (!this.#running) this.#run();
  }

  /** Resolves when every queued frame has been handed to the channel. */
  flushed(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drops queued frames; later pushes are ignored. */
  close(): void {
    this.#closed = true;
    for (const q of this.#queues) q.clear();
    this.#wakeIdle();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#closed) {
        const queue = this.#queues.find((q) => q.length > 0);
        if (queue === undefined) break;
        const frame = queue.peek()!;
        if (frame instanceof Uint8Array) {
          queue.shift();
          if (!this.channel.write(frame)) await this.channel.drained();
          continue;
        }
        if (!frame.live()) {
          queue.shift();
          continue;
        }
        if (!this.channel.idle()) {
          // Frames queued meanwhile at a higher priority go first.
          await this.channel.whenIdle();
          continue;
        }
        queue.shift();
        if (!this.channel.writeFrame(frame.head, frame.payload)) await this.channel.drained();
      }
    } finally {
      this.#running = false;
      this.#wakeIdle();
    }
  }

  #wakeIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

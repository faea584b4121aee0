/**
 * The write side of a connection: one FIFO queue of frames per priority.
 * The writer always sends pending high-priority frames before normal ones and
 * normal before background, and hands the channel one frame at a time while
 * it accepts more, so a metadata request waits behind at most the bytes
 * already in the socket buffer, never behind a queued block transfer.
 */

/** The byte pipe under a connection (a TLS socket, or an in-memory pipe in tests). */
export interface ByteChannel {
  /** Queues bytes; false when the channel's buffer is full (wait for `drained`). */
  write(bytes: Uint8Array): boolean;
  /** Resolves when the channel accepts writes again, or is closed. */
  drained(): Promise<void>;
  /** Flushes and closes gracefully. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
}

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
  #queues = [new Fifo<Uint8Array>(), new Fifo<Uint8Array>(), new Fifo<Uint8Array>()];
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
        const frame = this.#queues[0].shift() ?? this.#queues[1].shift() ??
          this.#queues[2].shift();
        if (frame === undefined) break;
        if (!this.channel.write(frame)) await this.channel.drained();
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

/**
 * Block-sized buffers that uploads reuse instead of allocating one per block.
 *
 * Why: V8 runs a full garbage collection for every ~64 MiB of ArrayBuffers
 * allocated, however many were freed meanwhile, and a 1 MiB block per 1 MiB
 * received made large uploads pay for one every 64 blocks. A buffer moved to a
 * hashing worker and back, or into a BYOB read, keeps its memory: that counts
 * as no new allocation, so a pooled buffer travels the whole upload path.
 *
 * A buffer is given back only when nothing can still read it (every replica
 * stored the block); any other buffer is simply left to the collector.
 */
export class BlockBufferPool {
  readonly #free: Uint8Array<ArrayBuffer>[] = [];
  readonly #maxKept: number;

  /** Keeps at most `maxKeptBytes` of free buffers of `blockSize` bytes. */
  constructor(readonly blockSize: number, maxKeptBytes: number) {
    this.#maxKept = Math.floor(maxKeptBytes / blockSize);
  }

  /** A buffer of `blockSize` bytes, with any content. */
  take(): Uint8Array<ArrayBuffer> {
    return this.#free.pop() ?? new Uint8Array(this.blockSize);
  }

  /**
   * Gives back a buffer nothing reads or writes any more. Views of part of a
   * buffer, buffers of another size and moved-away (detached) ones are
   * ignored, as are those beyond the pool's size and one already given (it
   * would go to two uploads at once).
   */
  give(data: Uint8Array): void {
    if (
      this.#free.length < this.#maxKept && data.buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 && data.byteLength === this.blockSize &&
      data.buffer.byteLength === this.blockSize &&
      !this.#free.includes(data as Uint8Array<ArrayBuffer>)
    ) {
      this.#free.push(data as Uint8Array<ArrayBuffer>);
    }
  }

  /** Free buffers kept (for tests). */
  get kept(): number {
    return this.#free.length;
  }
}

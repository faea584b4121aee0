/** Stream relaying of the in-memory transport. */

/** Relays a stream chunk by chunk as it is read, copying chunks as the wire would. */
export class Relay {
  readonly stream: ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #done = false;

  /**
   * @param onDone the relay ended (closed, failed or cancelled)
   * @param onSourceError maps a failure of the source to the error its reader sees
   */
  constructor(
    readonly source: ReadableStream<Uint8Array>,
    onDone: () => void,
    onSourceError: (error: unknown) => unknown,
  ) {
    this.#reader = source.getReader();
    const done = () => {
      this.#done = true;
      onDone();
    };
    this.stream = new ReadableStream<Uint8Array>({
      start: (c) => void (this.#controller = c),
      pull: async (c) => {
        try {
          const { done: end, value } = await this.#reader.read();
          if (this.#done) return;
          if (end) {
            c.close();
            done();
          } else c.enqueue(value.slice());
        } catch (e) {
          if (!this.#done) {
            c.error(onSourceError(e));
            done();
          }
        }
      },
      cancel: (reason) => {
        done();
        return this.#reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** The link failed: both ends see the error. */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#reader.cancel(error).catch(() => {});
    try {
      this.#controller.error(error);
    } catch { /* already closed */ }
  }
}

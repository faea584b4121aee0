/**
 * A time limit on a client that stops sending a body it announced. Nothing
 * else ends such a wait: a dropped link leaves the read pending for ever (the
 * kernel only gives up on data it sends), holding the connection, its buffers
 * and the blocks written so far. A read that waits longer than the limit
 * cancels the body and fails with S3's RequestTimeout, which clients retry.
 *
 * Only time spent waiting on the client counts, not the time the consumer
 * takes between reads (a block written to a slow replica), so one timer per
 * body suffices: when it fires it is re-armed for what is left of the limit
 * of the read then waiting, if any.
 */
import { S3Error } from "../s3_error.ts";
import { incompleteBody } from "./_auth_errors.ts";

export class IdleReadLimit {
  /** When the read now waiting began (performance.now()); undefined between reads. */
  #waitingSince: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = false;

  constructor(
    private readonly reader: { cancel(reason?: unknown): Promise<void> },
    private readonly idleMs: number,
  ) {}

  /**
   * Runs one read of the body within the limit: RequestTimeout when it was
   * cut off, IncompleteBody (with `detail`) when the read failed (the client
   * went away).
   */
  async read<R>(read: () => Promise<R>, detail?: string): Promise<R> {
    this.#waitingSince = performance.now();
    this.#timer ??= this.#arm(this.idleMs);
    try {
      const result = await read();
      if (!this.#timedOut) return result;
    } catch (e) {
      if (!this.#timedOut) throw incompleteBody(detail, e);
    } finally {
      this.#waitingSince = undefined;
    }
    throw requestTimeout();
  }

  /** The body ended: the timer stops. */
  end(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The consumer gave up (or a read failed): the timer stops and the body is cancelled. */
  cancel(reason?: unknown): Promise<void> {
    this.end();
    return this.reader.cancel(reason);
  }

  #arm(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.#expire(), ms);
    // A pending limit never keeps the process alive on its own.
    Deno.unrefTimer(timer);
    return timer;
  }

  #expire(): void {
    this.#timer = undefined;
    if (this.#waitingSince === undefined) return;
    const waited = performance.now() - this.#waitingSince;
    if (waited < this.idleMs) {
      this.#timer = this.#arm(this.idleMs - waited);
      return;
    }
    this.#timedOut = true;
    this.reader.cancel(requestTimeout()).catch(() => {});
  }
}

export function requestTimeout(): S3Error {
  return new S3Error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
  );
}

/**
 * Background workers with status (`remise worker list`): a loop that runs
 * `work()` steps, sleeps between them, backs off after failures, can be
 * paused, woken and stopped within a bounded wait.
 */
import {
  WORKER_ERROR_BACKOFF_MAX_MS,
  WORKER_ERROR_BACKOFF_MIN_MS,
  WORKER_STOP_TIMEOUT_MS,
} from "./limits.ts";
import { errorMessage } from "./errors.ts";
import { log } from "./log.ts";

export type WorkerState = "idle" | "busy" | "paused" | "stopped" | "error";

export interface WorkerStatus {
  name: string;
  state: WorkerState;
  queueLength?: number;
  progress?: string;
  /** Why the last step failed; cleared by one that succeeds (the count of failures stays). */
  lastError?: string;
  /** Failed steps since start. */
  errors: number;
  /** When the last step ended, successfully or not (ms since the epoch, by the worker's clock). */
  lastRunMs?: number;
}

/** What a registry needs from a worker. */
export interface ManagedWorker {
  readonly name: string;
  status(): WorkerStatus;
  /** Resolves within about `timeoutMs`; true when the worker really ended. */
  stop(timeoutMs?: number): Promise<boolean>;
}

export interface BackgroundWorkerOptions {
  /** Clock for `lastRunMs`; Date.now by default. */
  nowMs?: () => number;
  errorBackoffMinMs?: number;
  errorBackoffMaxMs?: number;
}

/**
 * Sleeps `ms`, or less when `signal` aborts (then resolves, never rejects).
 * The timer is cleared on abort, so nothing is left pending.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * A worker's loop. Subclasses implement `work()`: one bounded step, returning
 * how long to wait before the next one (0: more to do now). A step that
 * throws is retried after an exponential backoff.
 */
export abstract class BackgroundWorker implements ManagedWorker {
  abstract readonly name: string;

  readonly #nowMs: () => number;
  readonly #backoffMinMs: number;
  readonly #backoffMaxMs: number;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #state: WorkerState = "stopped";
  #paused = false;
  #errors = 0;
  #lastError: string | undefined;
  #lastRunMs: number | undefined;
  /** Wakes the current sleep; set while sleeping. */
  #wakeSleep: (() => void) | undefined;
  /** A wake-up that arrived while the worker was busy: the next sleep is skipped. */
  #woken = false;

  constructor(options: BackgroundWorkerOptions = {}) {
    this.#nowMs = options.nowMs ?? Date.now;
    this.#backoffMinMs = options.errorBackoffMinMs ?? WORKER_ERROR_BACKOFF_MIN_MS;
    this.#backoffMaxMs = options.errorBackoffMaxMs ?? WORKER_ERROR_BACKOFF_MAX_MS;
  }

  /** One bounded step; resolves to the delay in ms before the next step. */
  protected abstract work(signal: AbortSignal): Promise<number>;

  /** Queue length and progress shown in the status; none by default. */
  protected details(): { queueLength?: number; progress?: string } {
    return {};
  }

  get running(): boolean {
    return this.#loop !== undefined;
  }

  start(): void {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#state = this.#paused ? "paused" : "idle";
    const loop = this.#run(this.#abort.signal);
    this.#loop = loop;
    loop.finally(() => {
      if (this.#loop === loop) this.#loop = undefined;
    });
  }

  /**
   * Asks the loop to end and waits at most `timeoutMs` for the current step
   * to finish; true when it did. The step sees its signal aborted.
   */
  async stop(timeoutMs = WORKER_STOP_TIMEOUT_MS): Promise<boolean> {
    const loop = this.#loop;
    if (!loop) return true;
    this.#abort.abort();
    this.#wakeSleep?.();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) =>
      timer = setTimeout(() => resolve(false), timeoutMs)
    );
    try {
      const ended = await Promise.race([loop.then(() => true as const), timeout]);
      if (!ended) {
        log("remise::worker", "warn", `worker "${this.name}" did not stop within ${timeoutMs} ms`);
      }
      return ended;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops running steps until `resume()`; a step in progress finishes. */
  pause(): void {
    this.#paused = true;
    if (this.#state !== "busy" && this.#loop) this.#state = "paused";
  }

  resume(): void {
    this.#paused = false;
    this.wake();
  }

  /** Cuts the current sleep short (new work arrived); a wake during a step skips the next sleep. */
  wake(): void {
    if (this.#wakeSleep) this.#wakeSleep();
    else this.#woken = true;
  }

  status(): WorkerStatus {
    return {
      name: this.name,
      state: this.#loop ? this.#state : "stopped",
      ...this.details(),
      lastError: this.#lastError,
      errors: this.#errors,
      lastRunMs: this.#lastRunMs,
    };
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (this.#paused) {
        this.#state = "paused";
        await this.#sleep(this.#backoffMaxMs, signal);
        continue;
      }
      this.#state = "busy";
      let delayMs: number;
      try {
        delayMs = Math.max(0, await this.work(signal));
        failures = 0;
        this.#lastError = undefined;
        this.#state = delayMs > 0 ? "idle" : "busy";
      } catch (e) {
        if (signal.aborted) break;
        failures++;
        this.#errors++;
        this.#lastError = errorMessage(e);
        this.#state = "error";
        delayMs = Math.min(this.#backoffMaxMs, this.#backoffMinMs * 2 ** (failures - 1));
        log(
          "remise::worker",
          "warn",
          `worker "${this.name}" failed (retry in ${delayMs} ms): ${this.#lastError}`,
        );
      }
      this.#lastRunMs = this.#nowMs();
      // Even with more to do, yield to the event loop between steps.
      await this.#sleep(delayMs, signal);
    }
    this.#state = "stopped";
  }

  async #sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    if (ms <= 0) {
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      return;
    }
    const wake = new AbortController();
    this.#wakeSleep = () => wake.abort();
    try {
      await sleep(ms, AbortSignal.any([signal, wake.signal]));
    } finally {
      this.#wakeSleep = undefined;
    }
  }
}

/** A worker that runs `fn` every `intervalMs` (for example the block garbage collector). */
export class PeriodicWorker extends BackgroundWorker {
  #progress: string | undefined;
  #waitFirst: number;

  constructor(
    readonly name: string,
    readonly intervalMs: number,
    private readonly fn: (signal: AbortSignal) => Promise<string | void>,
    options?: BackgroundWorkerOptions & {
      /** The first run waits this long after the start (what it needs to know first). */
      firstRunDelayMs?: number;
    },
  ) {
    super(options);
    this.#waitFirst = options?.firstRunDelayMs ?? 0;
  }

  protected async work(signal: AbortSignal): Promise<number> {
    if (this.#waitFirst > 0) {
      const delayMs = this.#waitFirst;
      this.#waitFirst = 0;
      return delayMs;
    }
    const progress = await this.fn(signal);
    if (typeof progress === "string") this.#progress = progress;
    return this.intervalMs;
  }

  protected override details(): { progress?: string } {
    return this.#progress === undefined ? {} : { progress: this.#progress };
  }
}

/** The node's workers, by name, for `remise worker list` and shutdown. */
export class WorkerRegistry {
  #workers = new Map<string, ManagedWorker>();

  register<W extends ManagedWorker>(worker: W): W {
    if (this.#workers.has(worker.name)) {
      throw new Error(`Cannot register worker "${worker.name}": a worker of that name exists`);
    }
    this.#workers.set(worker.name, worker);
    return worker;
  }

  unregister(name: string): void {
    this.#workers.delete(name);
  }

  get(name: string): ManagedWorker | undefined {
    return this.#workers.get(name);
  }

  /** Every worker's status, by name. */
  list(): WorkerStatus[] {
    return [...this.#workers.values()].map((w) => w.status()).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /** Stops every worker concurrently; resolves within about `timeoutMs`, true when all ended. */
  async stopAll(timeoutMs = WORKER_STOP_TIMEOUT_MS): Promise<boolean> {
    const results = await Promise.all(
      [...this.#workers.values()].map((w) => w.stop(timeoutMs).catch(() => false)),
    );
    return results.every(Boolean);
  }
}

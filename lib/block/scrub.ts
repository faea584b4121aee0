/**
 * Scrub: re-reads every local block and checks it against its hash. A
 * corrupted file is moved to `data_dir/corrupt/` and the block queued for
 * resync, which fetches a correct copy from another replica.
 *
 * A pass is throttled to a share of disk time and runs every
 * SCRUB_INTERVAL_MS in the background, or on demand (`remise repair scrub`).
 * Key: `["scrub", "state"]` -> ScrubState (when passes ran, what they found).
 */
import type { DbKey, DbStore } from "../db/db.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { BackgroundWorker, type BackgroundWorkerOptions, sleep } from "../util/worker.ts";
import {
  SCRUB_DISK_TIME_FRACTION,
  SCRUB_IDLE_CHECK_MS,
  SCRUB_INTERVAL_MS,
  SCRUB_STEP_MS,
} from "../util/limits.ts";
import { type BlockStore, CorruptBlockError } from "./block_store.ts";
import { quarantineBlock, type ResyncQueue } from "./resync.ts";

const FORMAT_VERSION = 1;
const STATE_KEY: DbKey = ["scrub", "state"];

interface ScrubState {
  v: number;
  /** The time the next background pass is counted from: the end of the last one (or the first start). */
  lastPassFinishedMs: number;
  lastPass?: ScrubResult;
}

/** What one pass found. */
export interface ScrubResult {
  startedMs: number;
  finishedMs: number;
  /** Blocks read and re-hashed. */
  checked: number;
  /** Blocks whose content did not match their hash (moved aside and queued for resync). */
  corrupt: number;
  /** Blocks that could not be read at all (I/O errors), left in place. */
  unreadable: number;
  /** False when the pass was cut short. */
  completed: boolean;
}

export interface ScrubEnvironment {
  store: BlockStore;
  queue: ResyncQueue;
  db: DbStore;
  /** The block's lock (BlockManager.lockKey), held while the file changes. */
  lock(hash: string): Promise<() => void>;
  nowMs(): number;
}

export interface ScrubOptions extends BackgroundWorkerOptions {
  /** Time between background passes; SCRUB_INTERVAL_MS by default. */
  intervalMs?: number;
  /** Share of disk time a pass may use, in (0, 1]; SCRUB_DISK_TIME_FRACTION by default. */
  diskTimeFraction?: number;
  /** Reading time between throttling sleeps; SCRUB_STEP_MS by default. */
  stepMs?: number;
}

/** One pass over the block files, advanced in steps. */
class ScrubPass {
  checked = 0;
  corrupt = 0;
  unreadable = 0;
  done = false;
  readonly #blocks: AsyncIterator<string>;

  constructor(private readonly env: ScrubEnvironment, readonly startedMs: number) {
    this.#blocks = env.store.list();
  }

  /** Checks blocks for about `budgetMs`; returns the time spent, in ms. */
  async step(budgetMs: number, signal?: AbortSignal): Promise<number> {
    const start = performance.now();
    while (!this.done && !signal?.aborted && performance.now() - start < budgetMs) {
      const next = await this.#blocks.next();
      if (next.done) this.done = true;
      else await this.#check(next.value);
    }
    return performance.now() - start;
  }

  /** Ends the walk early. */
  async close(): Promise<void> {
    this.done = true;
    await this.#blocks.return?.();
  }

  result(finishedMs: number): ScrubResult {
    const { startedMs, checked, corrupt, unreadable, done } = this;
    return { startedMs, finishedMs, checked, corrupt, unreadable, completed: done };
  }

  async #check(hash: string): Promise<void> {
    const first = await this.#read(hash);
    if (first === "present") this.checked++;
    if (first !== "corrupt") return;
    this.checked++;
    // Check again under the block's lock, so that only a file still corrupted is moved.
    const release = await this.env.lock(hash);
    try {
      if ((await this.#read(hash)) !== "corrupt") return;
      this.corrupt++;
      await quarantineBlock(this.env.store, hash, this.env.nowMs());
    } finally {
      release();
    }
    await this.env.queue.enqueue(hash, 0);
  }

  /** Reads a block to check it; a read that fails otherwise than on its content is counted and logged. */
  async #read(hash: string): Promise<"present" | "absent" | "corrupt" | "unreadable"> {
    try {
      return (await this.env.store.read(hash)) !== undefined ? "present" : "absent";
    } catch (e) {
      if (e instanceof CorruptBlockError) return "corrupt";
      this.unreadable++;
      log("remise::block", "warn", `scrub cannot read block ${hash}: ${errorMessage(e)}`);
      return "unreadable";
    }
  }
}

export class ScrubWorker extends BackgroundWorker {
  readonly name = "block scrub";
  readonly #intervalMs: number;
  readonly #sleepPerBusyMs: number;
  readonly #stepMs: number;
  #state: ScrubState | undefined;
  #pass: ScrubPass | undefined;
  /** Who drives the current pass: the background loop or a runOnce() call. */
  #owner: "loop" | "once" = "loop";
  #requested = false;

  constructor(private readonly env: ScrubEnvironment, options: ScrubOptions = {}) {
    super({ nowMs: env.nowMs, ...options });
    const fraction = options.diskTimeFraction ?? SCRUB_DISK_TIME_FRACTION;
    if (!(fraction > 0 && fraction <= 1)) {
      throw new Error(`Cannot start scrub: the disk time fraction ${fraction} is not in (0, 1]`);
    }
    this.#intervalMs = options.intervalMs ?? SCRUB_INTERVAL_MS;
    this.#sleepPerBusyMs = (1 - fraction) / fraction;
    this.#stepMs = options.stepMs ?? SCRUB_STEP_MS;
  }

  /** Whether a pass is running. */
  get scrubbing(): boolean {
    return this.#pass !== undefined;
  }

  /** Asks the background loop to start a pass now; false when one is already running. */
  startPass(): boolean {
    if (this.#pass) return false;
    this.#requested = true;
    this.wake();
    return true;
  }

  /**
   * Runs a whole pass now, in the caller, throttled like the background one;
   * `signal` cuts it short (the result then says completed: false).
   * Refused while another pass runs.
   */
  async runOnce(signal?: AbortSignal): Promise<ScrubResult> {
    if (this.#pass) throw new Error("Cannot start a scrub pass: one is already running");
    const pass = new ScrubPass(this.env, this.env.nowMs());
    this.#pass = pass;
    this.#owner = "once";
    try {
      while (!pass.done && !signal?.aborted) {
        const busyMs = await pass.step(this.#stepMs, signal);
        await sleep(busyMs * this.#sleepPerBusyMs, signal);
      }
      return await this.#finish(pass);
    } finally {
      if (!pass.done) await pass.close();
      this.#pass = undefined;
      this.wake();
    }
  }

  /** The last finished pass, if any. */
  async lastPass(): Promise<ScrubResult | undefined> {
    return (await this.#loadState()).lastPass;
  }

  protected async work(signal: AbortSignal): Promise<number> {
    if (this.#pass && this.#owner === "once") return SCRUB_IDLE_CHECK_MS; // woken when it ends
    if (!this.#pass) {
      const state = await this.#loadState();
      const dueMs = state.lastPassFinishedMs + this.#intervalMs;
      const now = this.env.nowMs();
      if (!this.#requested && now < dueMs) return Math.min(SCRUB_IDLE_CHECK_MS, dueMs - now);
      this.#requested = false;
      this.#pass = new ScrubPass(this.env, now);
      this.#owner = "loop";
      log("remise::block", "info", "scrub pass started");
    }
    const pass = this.#pass;
    const busyMs = await pass.step(this.#stepMs, signal);
    if (!pass.done) return Math.max(1, busyMs * this.#sleepPerBusyMs);
    this.#pass = undefined;
    await this.#finish(pass);
    return Math.min(SCRUB_IDLE_CHECK_MS, this.#intervalMs);
  }

  protected override details(): { progress?: string } {
    const pass = this.#pass;
    if (pass) {
      return {
        progress: `pass started ${iso(pass.startedMs)}: ${pass.checked} blocks checked, ` +
          `${pass.corrupt} corrupt, ${pass.unreadable} unreadable`,
      };
    }
    const last = this.#state?.lastPass;
    if (!last) return {};
    return {
      progress: `last pass ${iso(last.finishedMs)}: ${last.checked} blocks checked, ` +
        `${last.corrupt} corrupt, ${last.unreadable} unreadable` +
        (last.completed ? "" : " (cut short)"),
    };
  }

  async #finish(pass: ScrubPass): Promise<ScrubResult> {
    const result = pass.result(this.env.nowMs());
    const state = await this.#loadState();
    const next: ScrubState = {
      v: FORMAT_VERSION,
      lastPassFinishedMs: result.completed ? result.finishedMs : state.lastPassFinishedMs,
      lastPass: result,
    };
    await this.env.db.commit([{ type: "set", key: STATE_KEY, value: next }]);
    this.#state = next;
    log(
      "remise::block",
      result.corrupt > 0 ? "warn" : "info",
      `scrub pass ${
        result.completed ? "finished" : "cut short"
      }: ${result.checked} blocks checked, ` +
        `${result.corrupt} corrupt (queued for resync), ${result.unreadable} unreadable`,
    );
    return result;
  }

  /** The stored state; on first start, the next pass is counted from now (no disk storm at set-up). */
  async #loadState(): Promise<ScrubState> {
    if (this.#state) return this.#state;
    let state = await this.env.db.get<ScrubState>(STATE_KEY);
    if (!state) {
      state = { v: FORMAT_VERSION, lastPassFinishedMs: this.env.nowMs() };
      await this.env.db.commit([{ type: "set", key: STATE_KEY, value: state }]);
    }
    this.#state = state;
    return state;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

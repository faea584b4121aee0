/**
 * The persistent resync queue: brings this node the blocks it should hold
 * and hands over those it should not, retrying failures with backoff.
 *
 * Keys (values carry a format version `v`):
 * - `["resync", "q", dueMs, hash]` -> QueueEntry: the queue, in due order;
 * - `["resync", "h", hash]` -> dueMs: where a hash sits in the queue (one entry per hash);
 * - `["resync", "e", hash]` -> BlockError: blocks whose last resync failed.
 */
import type { DbKey, DbStore, Mutation } from "../db/db.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { errorMessage } from "../util/errors.ts";
import { sha256Hex } from "../util/hash.ts";
import { log } from "../util/log.ts";
import { WarningBudget } from "../util/warning_budget.ts";
import { BackgroundWorker, type BackgroundWorkerOptions } from "../util/worker.ts";
import {
  CORRUPT_BLOCKS_KEPT_MAX,
  RESYNC_BATCH_MAX,
  RESYNC_CONCURRENCY,
  RESYNC_DISK_PAUSE_MS,
  RESYNC_ENQUEUE_BATCH_MAX,
  RESYNC_ERRORS_LIST_MAX,
  RESYNC_FAILURE_WARNINGS_PER_MINUTE,
  RESYNC_IDLE_INTERVAL_MS,
  RESYNC_QUEUE_COUNT_MAX,
  RESYNC_RETRY_MAX_MS,
  RESYNC_RETRY_MIN_MS,
  RESYNC_STATUS_REFRESH_MS,
} from "../util/limits.ts";
import { type BlockStore, CorruptBlockError } from "./block_store.ts";

const FORMAT_VERSION = 1;

interface QueueEntry {
  v: number;
  /** Failed attempts so far (drives the backoff). */
  attempts: number;
}

/** A block whose resync failed (`remise block list-errors`). */
export interface BlockError {
  hash: string;
  attempts: number;
  lastError: string;
  lastTryMs: number;
  nextTryMs: number;
}

/** A queue entry taken by the worker. */
export interface ResyncItem {
  hash: string;
  dueMs: number;
  attempts: number;
}

const qKey = (dueMs: number, hash: string): DbKey => ["resync", "q", dueMs, hash];
const hKey = (hash: string): DbKey => ["resync", "h", hash];
const eKey = (hash: string): DbKey => ["resync", "e", hash];

/** Delay before the next try after `attempts` failures: 10 s doubling up to 1 h. */
export function resyncBackoffMs(attempts: number): number {
  return Math.min(RESYNC_RETRY_MAX_MS, RESYNC_RETRY_MIN_MS * 2 ** Math.max(0, attempts - 1));
}

export class ResyncQueue {
  /** Called after an enqueue that changed the queue (the worker wakes up). */
  onEnqueued: () => void = () => {};

  readonly #mutex = new KeyedMutex();
  /** Hashes being resynced; `againDueMs` is set when an enqueue arrived meanwhile. */
  readonly #inFlight = new Map<string, { againDueMs?: number }>();

  constructor(private readonly db: DbStore, private readonly clock: () => number) {}

  /**
   * Queues a block to be resynced in `delayMs`. A hash already queued sooner
   * stays where it is; one queued later is moved sooner (keeping its attempt
   * count). A hash being resynced right now is queued again afterwards.
   */
  async enqueue(hash: string, delayMs = 0): Promise<void> {
    await this.enqueueMany([hash], delayMs);
  }

  /** `enqueue` for several hashes, in one metadata commit per batch. */
  async enqueueMany(hashes: Iterable<string>, delayMs = 0): Promise<void> {
    let batch: string[] = [];
    for (const hash of hashes) {
      batch.push(hash);
      if (batch.length >= RESYNC_ENQUEUE_BATCH_MAX) {
        await this.#enqueueBatch(batch, delayMs);
        batch = [];
      }
    }
    if (batch.length > 0) await this.#enqueueBatch(batch, delayMs);
  }

  /**
   * Queues every hash of `source` (all local blocks of a BlockStore, or any
   * hash list such as the referenced blocks); returns how many were given.
   */
  async enqueueAll(source: BlockStore | AsyncIterable<string>): Promise<number> {
    const hashes = "list" in source ? source.list() : source;
    let count = 0;
    let batch: string[] = [];
    for await (const hash of hashes) {
      count++;
      batch.push(hash);
      if (batch.length >= RESYNC_ENQUEUE_BATCH_MAX) {
        await this.#enqueueBatch(batch, 0);
        batch = [];
      }
    }
    if (batch.length > 0) await this.#enqueueBatch(batch, 0);
    return count;
  }

  /** Queued hashes, counted up to RESYNC_QUEUE_COUNT_MAX. */
  async length(): Promise<number> {
    let count = 0;
    for await (
      const _ of this.db.list({ prefix: ["resync", "h"] }, { limit: RESYNC_QUEUE_COUNT_MAX })
    ) {
      count++;
    }
    return count;
  }

  /** Blocks whose last resync failed, by hash, at most `limit`. */
  async errors(limit = RESYNC_ERRORS_LIST_MAX): Promise<BlockError[]> {
    const errors: BlockError[] = [];
    for await (
      const { value } of this.db.list<BlockError & { v?: number }>({ prefix: ["resync", "e"] }, {
        limit,
      })
    ) {
      const { hash, attempts, lastError, lastTryMs, nextTryMs } = value;
      errors.push({ hash, attempts, lastError, lastTryMs, nextTryMs });
    }
    return errors;
  }

  /** Forgets a block's error record; its queue entry (if any) stays. */
  async clearError(hash: string): Promise<void> {
    await this.db.commit([{ type: "delete", key: eKey(hash) }]);
  }

  /** The queue's clock now: what is queued from here on is due after it. */
  nowMs(): number {
    return this.clock();
  }

  /**
   * Whether every block due by `ms` was resynced and none is left failing:
   * blocks queued later, as new writes' are, do not count.
   */
  async doneUpTo(ms: number): Promise<boolean> {
    const next = await this.nextDueMs();
    if (next !== undefined && next <= ms) return false;
    return (await this.errors(1)).length === 0;
  }

  /** When the first queued entry is due, or undefined when the queue is empty. */
  async nextDueMs(): Promise<number | undefined> {
    for await (const { key } of this.db.list({ prefix: ["resync", "q"] }, { limit: 1 })) {
      return key[2] as number;
    }
    return undefined;
  }

  /** Entries due now, in due order, at most `limit` (not yet claimed). */
  async due(limit = RESYNC_BATCH_MAX): Promise<ResyncItem[]> {
    const items: ResyncItem[] = [];
    const end = qKey(this.clock() + 1, "");
    for await (
      const { key, value } of this.db.list<QueueEntry>({ prefix: ["resync", "q"], end }, { limit })
    ) {
      items.push({ dueMs: key[2] as number, hash: key[3] as string, attempts: value.attempts });
    }
    return items;
  }

  /**
   * Marks an entry as being resynced; false when it moved or went meanwhile
   * (or is already in flight) and must be skipped.
   */
  async claim(item: ResyncItem): Promise<boolean> {
    const release = await this.#mutex.acquire(item.hash);
    try {
      if (this.#inFlight.has(item.hash)) return false;
      if ((await this.db.get<number>(hKey(item.hash))) !== item.dueMs) return false;
      this.#inFlight.set(item.hash, {});
      return true;
    } finally {
      release();
    }
  }

  /** Removes a claimed entry after success (requeues it if asked meanwhile) and clears its error. */
  async succeed(item: ResyncItem): Promise<void> {
    const release = await this.#mutex.acquire(item.hash);
    try {
      const again = this.#inFlight.get(item.hash)?.againDueMs;
      const mutations: Mutation[] = [
        { type: "delete", key: qKey(item.dueMs, item.hash) },
        { type: "delete", key: eKey(item.hash) },
      ];
      if (again === undefined) mutations.push({ type: "delete", key: hKey(item.hash) });
      else mutations.push(...this.#place(item.hash, again, 0));
      await this.db.commit(mutations);
    } finally {
      this.#inFlight.delete(item.hash);
      release();
    }
  }

  /** Moves a claimed entry to its backoff time and records the error; returns the record. */
  async fail(item: ResyncItem, error: unknown): Promise<BlockError> {
    const release = await this.#mutex.acquire(item.hash);
    try {
      const now = this.clock();
      const attempts = item.attempts + 1;
      const record: BlockError = {
        hash: item.hash,
        attempts,
        lastError: errorMessage(error),
        lastTryMs: now,
        nextTryMs: now + resyncBackoffMs(attempts),
      };
      await this.db.commit([
        { type: "delete", key: qKey(item.dueMs, item.hash) },
        ...this.#place(item.hash, record.nextTryMs, attempts),
        { type: "set", key: eKey(item.hash), value: { v: FORMAT_VERSION, ...record } },
      ]);
      return record;
    } finally {
      this.#inFlight.delete(item.hash);
      release();
    }
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async #enqueueBatch(hashes: string[], delayMs: number): Promise<void> {
    const unique = [...new Set(hashes)];
    const release = await this.#mutex.acquireAll(unique);
    let changed = false;
    try {
      const due = this.clock() + Math.max(0, delayMs);
      const mutations: Mutation[] = [];
      for (const hash of unique) {
        const flight = this.#inFlight.get(hash);
        if (flight) {
          flight.againDueMs = Math.min(flight.againDueMs ?? Infinity, due);
          continue;
        }
        const queued = await this.db.get<number>(hKey(hash));
        if (queued !== undefined && queued <= due) continue;
        let attempts = 0;
        if (queued !== undefined) {
          attempts = (await this.db.get<QueueEntry>(qKey(queued, hash)))?.attempts ?? 0;
          mutations.push({ type: "delete", key: qKey(queued, hash) });
        }
        mutations.push(...this.#place(hash, due, attempts));
      }
      if (mutations.length > 0) {
        await this.db.commit(mutations);
        changed = true;
      }
    } finally {
      release();
    }
    if (changed) this.onEnqueued();
  }

  #place(hash: string, dueMs: number, attempts: number): Mutation[] {
    return [
      {
        type: "set",
        key: qKey(dueMs, hash),
        value: { v: FORMAT_VERSION, attempts } satisfies QueueEntry,
      },
      { type: "set", key: hKey(hash), value: dueMs },
    ];
  }
}

/** What the resync worker needs from the rest of the node. */
export interface ResyncEnvironment {
  store: BlockStore;
  /** > 0: the block is referenced here. */
  refcount(hash: string): Promise<number>;
  /** This node is among the block's replicas in the current layout (old or new while in transition). */
  shouldStore(hash: string): boolean;
  /** A verified copy from another replica (throws if none has one). */
  fetchFromPeers(hash: string): Promise<Uint8Array>;
  /** Ensures the replicas that should hold the block have it; true when done. */
  offloadToPeers(hash: string, data: Uint8Array): Promise<boolean>;
  /** Called for a block that is here but referenced by nothing: makes sure garbage collection knows of it. */
  unreferenced?(hash: string): Promise<void>;
  /** The block's lock (BlockManager.lockKey), held while the file changes. */
  lock(hash: string): Promise<() => void>;
  nowMs(): number;
}

/** What one resync did to a block. */
export type ResyncOutcome =
  | "present"
  | "fetched"
  | "offloaded"
  | "absent"
  | "unreferenced";

/**
 * Moves a corrupted block file to `data_dir/corrupt/<hash>.<ms>` for
 * inspection (or deletes it once CORRUPT_BLOCKS_KEPT_MAX files are kept
 * there). The caller holds the block's lock. Returns the new path, if kept.
 */
export async function quarantineBlock(
  store: BlockStore,
  hash: string,
  nowMs: number,
): Promise<string | undefined> {
  const dir = `${store.dataDir}/corrupt`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    let kept = 0;
    for await (const _ of Deno.readDir(dir)) {
      if (++kept >= CORRUPT_BLOCKS_KEPT_MAX) break;
    }
    if (kept < CORRUPT_BLOCKS_KEPT_MAX) {
      const target = `${dir}/${hash}.${nowMs}`;
      await Deno.rename(store.pathOf(hash), target);
      log("remise::block", "warn", `block ${hash} is corrupted; moved to ${target}`);
      return target;
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    log(
      "remise::block",
      "warn",
      `cannot move corrupted block ${hash} aside (${errorMessage(e)}); deleting it`,
    );
  }
  await store.delete(hash);
  log("remise::block", "warn", `block ${hash} is corrupted; deleted`);
  return undefined;
}

/**
 * The local copy's state, under the block's lock: a corrupted file is moved
 * aside and then counts as missing.
 */
async function readLocal(env: ResyncEnvironment, hash: string): Promise<Uint8Array | undefined> {
  try {
    return await env.store.read(hash);
  } catch (e) {
    if (!(e instanceof CorruptBlockError)) throw e;
  }
  const release = await env.lock(hash);
  try {
    try {
      return await env.store.read(hash);
    } catch (e) {
      if (!(e instanceof CorruptBlockError)) throw e;
      await quarantineBlock(env.store, hash, env.nowMs());
      return undefined;
    }
  } finally {
    release();
  }
}

/** This node's data disk refused a block fetched for it (read-only, failing, full). */
export class BlockWriteError extends Error {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
    this.name = "BlockWriteError";
  }
}

/** Brings one block to where the layout wants it; throws when that failed (to be retried). */
export async function resyncBlock(env: ResyncEnvironment, hash: string): Promise<ResyncOutcome> {
  if (env.shouldStore(hash)) {
    if ((await env.refcount(hash)) <= 0) {
      await env.unreferenced?.(hash); // garbage collection's business
      return "unreferenced";
    }
    if ((await readLocal(env, hash)) !== undefined) return "present";
    const data = await env.fetchFromPeers(hash);
    if (sha256Hex(data) !== hash) {
      throw new Error(`the copy of block ${hash} received from a peer is corrupted`);
    }
    const release = await env.lock(hash);
    try {
      if (!(await env.store.has(hash))) {
        await env.store.write(hash, data).catch((e) => {
          throw new BlockWriteError(e);
        });
      }
    } finally {
      release();
    }
    return "fetched";
  }
  // Not ours in the current layout: hand it over, then drop it. Done whatever
  // the local refcount says, which may be stale once the block's partition moved.
  if (!(await env.store.has(hash))) return "absent";
  const data = await readLocal(env, hash);
  if (data === undefined) return "absent"; // corrupted: the replicas fetch a good copy elsewhere
  if (!(await env.offloadToPeers(hash, data))) {
    throw new Error(
      `Cannot hand block ${hash} over: not every replica that should hold it has it yet`,
    );
  }
  const release = await env.lock(hash);
  try {
    if (!env.shouldStore(hash)) await env.store.delete(hash); // the layout may have changed back
  } finally {
    release();
  }
  return "offloaded";
}

/** Processes the queue's due entries, RESYNC_CONCURRENCY at a time. */
export class ResyncWorker extends BackgroundWorker {
  readonly name = "block resync";
  #queueLength: number | undefined;
  #errorCount = 0;
  #refreshedMs = -Infinity;
  /** The queue changed since the status was last refreshed. */
  #dirty = true;
  #done = 0;
  #failed = 0;
  /** While the data disk refuses blocks, resync waits until this time. */
  #diskPausedUntilMs = 0;
  readonly #failureWarnings: WarningBudget;

  constructor(
    readonly queue: ResyncQueue,
    private readonly env: ResyncEnvironment,
    options?: BackgroundWorkerOptions,
  ) {
    super({ nowMs: env.nowMs, ...options });
    this.#failureWarnings = new WarningBudget(
      "remise::block",
      "block resync failures",
      RESYNC_FAILURE_WARNINGS_PER_MINUTE,
      60_000,
      env.nowMs,
    );
    queue.onEnqueued = () => {
      this.#dirty = true;
      this.wake();
    };
  }

  /**
   * Resyncs the entries due now (one batch); returns how many were processed.
   * Failures are recorded in the queue, not thrown.
   */
  async processDue(signal?: AbortSignal): Promise<number> {
    const items = await this.queue.due(RESYNC_BATCH_MAX);
    let next = 0;
    let processed = 0;
    const runner = async () => {
      while (next < items.length && !signal?.aborted && !this.#diskPaused()) {
        const item = items[next++];
        if (!(await this.queue.claim(item))) continue;
        processed++;
        await this.#process(item);
      }
    };
    await Promise.all(Array.from({ length: RESYNC_CONCURRENCY }, runner));
    return processed;
  }

  protected async work(signal: AbortSignal): Promise<number> {
    if (this.#diskPaused()) return this.#diskPausedUntilMs - this.env.nowMs();
    const processed = await this.processDue(signal);
    if (processed > 0) this.#dirty = true;
    await this.#refreshStatus(processed === 0 && this.#dirty);
    if (processed > 0) return 0;
    const nextDue = await this.queue.nextDueMs();
    if (nextDue === undefined) return RESYNC_IDLE_INTERVAL_MS;
    return Math.min(RESYNC_IDLE_INTERVAL_MS, Math.max(1, nextDue - this.env.nowMs()));
  }

  protected override details(): { queueLength?: number; progress?: string } {
    const paused = this.#diskPaused() ? "paused: the data disk refuses blocks; " : "";
    const progress = paused +
      `${this.queue.inFlight} in progress, ${this.#done} done, ${this.#failed} failed` +
      ` since start, ${this.#errorCount} blocks in error`;
    return this.#queueLength === undefined
      ? { progress }
      : { queueLength: this.#queueLength, progress };
  }

  async #process(item: ResyncItem): Promise<void> {
    let outcome: ResyncOutcome;
    try {
      outcome = await resyncBlock(this.env, item.hash);
    } catch (e) {
      this.#failed++;
      const record = await this.queue.fail(item, e);
      const failure = `resync of block ${item.hash} failed (attempt ${record.attempts}, next in ${
        Math.round((record.nextTryMs - record.lastTryMs) / 1000)
      } s): ${record.lastError}`;
      if (!(e instanceof BlockWriteError)) return this.#failureWarnings.warn(failure);
      if (this.#diskPaused()) return log("remise::block", "debug", failure);
      this.#diskPausedUntilMs = this.env.nowMs() + RESYNC_DISK_PAUSE_MS;
      log(
        "remise::block",
        "warn",
        `block resync pauses for ${
          RESYNC_DISK_PAUSE_MS / 1000
        } s: the data disk refused a block: ${failure}`,
      );
      return;
    }
    this.#done++;
    await this.queue.succeed(item);
    if (outcome === "fetched" || outcome === "offloaded") {
      log("remise::block", "debug", `resync of block ${item.hash}: ${outcome}`);
    }
  }

  #diskPaused(): boolean {
    return this.env.nowMs() < this.#diskPausedUntilMs;
  }

  async #refreshStatus(force: boolean): Promise<void> {
    const now = this.env.nowMs();
    if (!force && now - this.#refreshedMs < RESYNC_STATUS_REFRESH_MS) return;
    this.#refreshedMs = now;
    this.#dirty = false;
    this.#queueLength = await this.queue.length();
    this.#errorCount = (await this.queue.errors()).length;
  }
}

/**
 * Blocks and their reference counts. A block is written once per content
 * (deduplicated by hash); the `block_ref` table's update hook changes its
 * reference count in the same local transaction. A block whose count has
 * stayed at zero for `gcDelayMs` is deleted by the garbage collector.
 *
 * Keys: `["block", "rc", hash]` -> Refcount, and `["block", "gc", sinceMs,
 * hash]` -> null for every block whose count is zero (the collector's queue).
 */
import type { DbKey, DbStore } from "../db/db.ts";
import type { KeyedMutex } from "../util/keyed_mutex.ts";
import type { LocalTransaction } from "../table/schema.ts";
import { DbTransaction } from "../table/transaction.ts";
import type { BlockStore } from "./block_store.ts";
import { log } from "../util/log.ts";

interface Refcount {
  count: number;
  /** When the count last became zero; null while referenced. */
  zeroSinceMs: number | null;
}

/** A block that is referenced but cannot be found. */
export class MissingBlockError extends Error {
  constructor(readonly hash: string) {
    super(`Block ${hash} is missing from this node`);
    this.name = "MissingBlockError";
  }
}

const rcKey = (hash: string): DbKey => ["block", "rc", hash];
const gcKey = (sinceMs: number, hash: string): DbKey => ["block", "gc", sinceMs, hash];

export class BlockManager {
  constructor(
    readonly store: BlockStore,
    private readonly db: DbStore,
    private readonly mutex: KeyedMutex,
    private readonly nowMs: () => number,
    private readonly gcDelayMs: number,
  ) {}

  /** The lock protecting a block's file and count; the block_ref table locks it too. */
  static lockKey(hash: string): string {
    return `block\u0000${hash}`;
  }

  /** Stores a block durably; an unreferenced block is collected after the GC delay. */
  async putBlock(hash: string, data: Uint8Array): Promise<void> {
    const release = await this.mutex.acquire(BlockManager.lockKey(hash));
    try {
      const tx = new DbTransaction(this.db);
      const rc = await tx.get<Refcount>(rcKey(hash));
      if (!(await this.store.has(hash))) await this.store.write(hash, data);
      if (rc === undefined || rc.count === 0) {
        // (Re)start the grace period, so a concurrent collection cannot take a
        // block that is about to be referenced.
        this.#setCount(tx, hash, rc, 0);
        await tx.commit();
      }
    } finally {
      release();
    }
  }

  async getBlock(hash: string): Promise<Uint8Array> {
    const data = await this.store.read(hash);
    if (data === undefined) throw new MissingBlockError(hash);
    return data;
  }

  /** Changes a block's reference count; the caller holds `lockKey(hash)`. */
  async changeRefcount(hash: string, delta: number, tx: LocalTransaction): Promise<void> {
    const rc = await tx.get<Refcount>(rcKey(hash));
    this.#setCount(tx, hash, rc, Math.max(0, (rc?.count ?? 0) + delta));
  }

  async refcount(hash: string): Promise<number> {
    return (await this.db.get<Refcount>(rcKey(hash)))?.count ?? 0;
  }

  /** Deletes blocks unreferenced for longer than the delay; returns how many. */
  async collectGarbage(): Promise<number> {
    const before = this.nowMs() - this.gcDelayMs;
    let deleted = 0;
    const due: string[] = [];
    for await (
      const { key } of this.db.list({ prefix: ["block", "gc"], end: ["block", "gc", before + 1] }, {
        limit: 1000,
      })
    ) {
      due.push(key[3] as string);
    }
    for (const hash of due) {
      const release = await this.mutex.acquire(BlockManager.lockKey(hash));
      try {
        const rc = await this.db.get<Refcount>(rcKey(hash));
        if (
          rc !== undefined && (rc.count > 0 || rc.zeroSinceMs === null || rc.zeroSinceMs > before)
        ) continue;
        await this.store.delete(hash);
        const mutations = [{ type: "delete" as const, key: rcKey(hash) }];
        if (rc?.zeroSinceMs != null) {
          mutations.push({ type: "delete", key: gcKey(rc.zeroSinceMs, hash) });
        }
        await this.db.commit(mutations);
        deleted++;
      } finally {
        release();
      }
    }
    if (deleted > 0) log("remise::block", "debug", `garbage collection deleted ${deleted} blocks`);
    return deleted;
  }

  #setCount(tx: LocalTransaction, hash: string, old: Refcount | undefined, count: number): void {
    if (old?.zeroSinceMs != null) tx.delete(gcKey(old.zeroSinceMs, hash));
    const zeroSinceMs = count === 0 ? this.nowMs() : null;
    tx.set(rcKey(hash), { count, zeroSinceMs } satisfies Refcount);
    if (zeroSinceMs !== null) tx.set(gcKey(zeroSinceMs, hash), null);
  }
}

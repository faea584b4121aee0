/**
 * A table of CRDT entries, partitioned by partition key and ordered by sort
 * key. Updates merge with what is stored, so replicas converge whatever the
 * order in which they receive updates.
 *
 * This is the replicated table of the design running with one replica: every
 * update and read goes to the local store. The cluster issue adds quorum
 * writes and reads to the replicas of the entry's partition below this same
 * interface.
 */
import type { DbKey, DbSelector, DbStore } from "../db/db.ts";
import { sha256Hex } from "../util/hash.ts";
import type { KeyedMutex } from "../util/keyed_mutex.ts";
import type { TableSchema } from "./schema.ts";
import { DbTransaction } from "./transaction.ts";

const TABLE_SPACE = "t";

interface StoredEntry<E> {
  /** Format version of `entry`. */
  v: number;
  entry: E;
}

export interface ScanOptions {
  /** Only sort keys starting with this. */
  prefix?: string;
  /** First sort key (inclusive). */
  start?: string;
  /** Sort keys after the last wanted (exclusive). */
  end?: string;
  limit?: number;
  reverse?: boolean;
}

/** The partition (0..255) of a partition key: first byte of its SHA-256. */
export function partitionOfKey(partitionKey: string): number {
  return parseInt(sha256Hex(partitionKey).slice(0, 2), 16);
}

/** The smallest string greater than every string starting with `prefix`, or undefined if none. */
export function prefixEnd(prefix: string): string | undefined {
  const chars = [...prefix];
  while (chars.length > 0) {
    let code = chars.pop()!.codePointAt(0)! + 1;
    if (code === 0xd800) code = 0xe000;
    if (code <= 0x10ffff) return chars.join("") + String.fromCodePoint(code);
  }
  return undefined;
}

export class Table<E> {
  readonly #partitionCache = new Map<string, number>();

  constructor(
    readonly schema: TableSchema<E>,
    private readonly db: DbStore,
    private readonly mutex: KeyedMutex,
    private readonly replicationFactor = 1,
  ) {}

  async get(partitionKey: string, sortKey = ""): Promise<E | undefined> {
    const stored = await this.db.get<StoredEntry<E>>(this.#key(partitionKey, sortKey));
    return stored === undefined ? undefined : this.#decode(stored);
  }

  async insert(entry: E): Promise<void> {
    await this.insertMany([entry]);
  }

  /** Merges the entries into the table in one local transaction. */
  async insertMany(entries: E[]): Promise<void> {
    if (entries.length === 0) return;
    const lockKey = this.schema.lockKey?.bind(this.schema) ??
      ((e: E) =>
        `${this.schema.name}\u0000${this.schema.partitionKey(e)}\u0000${this.schema.sortKey(e)}`);
    const release = await this.mutex.acquireAll(entries.map(lockKey));
    const tx = new DbTransaction(this.db);
    try {
      for (const incoming of entries) {
        const key = this.#key(this.schema.partitionKey(incoming), this.schema.sortKey(incoming));
        const stored = await tx.get<StoredEntry<E>>(key);
        const old = stored === undefined ? undefined : this.#decode(stored);
        const next = old === undefined ? incoming : this.schema.merge(old, incoming);
        if (this.replicationFactor === 1 && this.schema.isTombstone?.(next)) {
          // With a single replica, every replica has the tombstone already.
          tx.delete(key);
        } else {
          tx.set(key, { v: this.schema.formatVersion, entry: next } satisfies StoredEntry<E>);
        }
        await this.schema.updated?.(old, next, tx);
      }
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
  }

  /** Entries of one partition in sort-key order. */
  async *scan(partitionKey: string, options: ScanOptions = {}): AsyncIterableIterator<E> {
    const base = this.#base(partitionKey);
    let start = options.start;
    let end = options.end;
    if (options.prefix !== undefined && options.prefix !== "") {
      if (start === undefined || start < options.prefix) start = options.prefix;
      const pEnd = prefixEnd(options.prefix);
      if (pEnd !== undefined && (end === undefined || pEnd < end)) end = pEnd;
    }
    if (start !== undefined && end !== undefined && start >= end) return;
    const selector: DbSelector = end === undefined
      ? (start === undefined ? { prefix: base } : { prefix: base, start: [...base, start] })
      : (start === undefined
        ? { prefix: base, end: [...base, end] }
        : { start: [...base, start], end: [...base, end] });
    const iter = this.db.list<StoredEntry<E>>(selector, {
      limit: options.limit,
      reverse: options.reverse,
    });
    for await (const { value } of iter) yield this.#decode(value);
  }

  #decode(stored: StoredEntry<E>): E {
    if (stored.v === this.schema.formatVersion || !this.schema.decode) return stored.entry;
    return this.schema.decode(stored.entry, stored.v);
  }

  #partition(partitionKey: string): number {
    let p = this.#partitionCache.get(partitionKey);
    if (p === undefined) {
      p = partitionOfKey(partitionKey);
      if (this.#partitionCache.size > 10_000) this.#partitionCache.clear();
      this.#partitionCache.set(partitionKey, p);
    }
    return p;
  }

  #base(partitionKey: string): DbKey {
    return [TABLE_SPACE, this.schema.name, this.#partition(partitionKey), partitionKey];
  }

  #key(partitionKey: string, sortKey: string): DbKey {
    return [...this.#base(partitionKey), sortKey];
  }
}

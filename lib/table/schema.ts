/** What a replicated table needs to know about its entries. */
import type { DbKey, Mutation } from "../db/db.ts";

export interface TableSchema<E> {
  /** Short, stable name used in storage keys. */
  readonly name: string;
  /** Format version of stored entries, so a newer remise reads what an older one wrote. */
  readonly formatVersion: number;
  partitionKey(entry: E): string;
  /** Order inside the partition; "" for tables without a sort key. */
  sortKey(entry: E): string;
  /** CRDT merge: commutative, associative and idempotent. */
  merge(a: E, b: E): E;
  /** Upgrades an entry read from storage in an older format; identity by default. */
  decode?(stored: unknown, formatVersion: number): E;
  /** A tombstone may be deleted from storage once every replica has it. */
  isTombstone?(entry: E): boolean;
  /** When a tombstone was written: it is collected a delay after that. */
  tombstoneSinceMs?(entry: E): number;
  /**
   * Key of the lock held while the entry is updated; defaults to partition
   * and sort key. Unused where the schema has `partitionEnd`: its entries are
   * locked by partition key.
   */
  lockKey?(entry: E): string;
  /**
   * An entry that ends its whole partition (the version table's released
   * data): a node that stores it ends every entry of the partition it holds,
   * in the same transaction, and every entry merged in afterwards, with
   * `end`. A write cut short, whose entries reached only a replica that was
   * down while the partition was ended, cannot bring them back live.
   */
  partitionEnd?: PartitionEnd<E>;
  /**
   * Runs inside the local transaction that stores `next`: may add mutations
   * (committed atomically with the entry) and after-commit work.
   */
  updated?(old: E | undefined, next: E, tx: LocalTransaction): void | Promise<void>;
  /**
   * Runs inside the local transaction that deletes this node's copy of an
   * entry of a partition it no longer holds, once the partition's replicas
   * have it (see handover.ts): undoes what `updated` counted here.
   */
  handedOver?(entry: E, tx: LocalTransaction): void | Promise<void>;
}

export interface PartitionEnd<E> {
  /** The end marker's sort key, which no other entry has. */
  readonly sortKey: string;
  /** The entry as the marker ends it (itself if ended already): merged in its place. */
  end(entry: E, marker: E): E;
}

/** The mutations of one local update, committed together, with work to run afterwards. */
export interface LocalTransaction {
  /** Reads a key, seeing this transaction's own pending sets. */
  get<T>(key: DbKey): Promise<T | undefined>;
  /** This transaction's own write of `key`: `{ value }` when set, null when deleted, undefined when untouched. */
  pending<T>(key: DbKey): { value: T } | null | undefined;
  set(key: DbKey, value: unknown): void;
  delete(key: DbKey): void;
  /** Work to run once the transaction is durable (e.g. updating other tables). */
  afterCommit(fn: () => Promise<void>): void;
  /**
   * Runs `done` as soon as the commit has succeeded, `failed` if it failed:
   * before the caller releases its locks, so that caches of what is stored
   * stay in step with it.
   */
  onSettled(done: () => void, failed: () => void): void;
  readonly mutations: readonly Mutation[];
  /**
   * The entries come from a writer that writes, itself and before it goes
   * on, the live entries they imply in other tables (`WriteOptions`): the
   * `updated` hook may leave those to it. False for entries that anti-entropy,
   * a read's repair or a handover brings, whose writer may be long gone.
   */
  readonly writerDerives: boolean;
}

/**
 * Incremental Merkle summaries of a table's entries, one per (table,
 * partition), for anti-entropy: two replicas compare a partition digest, then
 * 256 leaf digests, then the item lists of the leaves that differ.
 *
 * An entry (partition key `pk`, sort key `sk`) falls in the leaf given by the
 * first byte of SHA-256(pk + "\0" + sk). Its item hash covers pk, sk and the
 * value as stored; a leaf digest is the XOR of the item hashes in the leaf, so
 * an update costs O(1): XOR the old item hash out and the new one in.
 *
 * Keys (beside the table's `["t", table, partition, pk, sk]`):
 * - `["m", table, partition, leaf, pk, sk]` -> item hash (Uint8Array, 32 bytes)
 * - `["md", table, partition, leaf]` -> leaf digest (absent when all zero)
 * - `["mv", table, partition]` -> `{ v }`: the index of this partition was
 *   built (or rebuilt) by format version `v`; see `isBuilt`.
 *
 * Locking contract. A leaf digest is a read-modify-write shared by every entry
 * of the leaf, so a caller of `recordUpdate` must hold, from before the
 * transaction reads anything until its commit has resolved, the keys that
 * `lockKeys` returns, on the same `KeyedMutex` this index was given. Acquire
 * them together with the entry locks in one `acquireAll` (sorted order, so no
 * deadlock). `rebuild` takes every leaf lock of its partition itself.
 */
import type { DbKey, DbStore, Mutation } from "../db/db.ts";
import { sha256Hasher, sha256OfLengthPrefixed } from "../util/hash.ts";
import type { KeyedMutex } from "../util/keyed_mutex.ts";
import {
  MERKLE_DIGEST_CACHE_MAX_AGE_MS,
  MERKLE_LEAF_RECORDS_MAX,
  MERKLE_REBUILD_BATCH_MUTATIONS,
} from "../util/limits.ts";
import { stableString } from "../util/crdt.ts";
import type { LocalTransaction } from "./schema.ts";

/** Leaves per partition: the first byte of the item's key hash. */
export const LEAF_COUNT = 256;
/** Bytes of an item hash, a leaf digest and a partition digest (SHA-256). */
export const DIGEST_BYTES = 32;
/** Version of the item hash and key layout; a change makes `isBuilt` false, so indexes get rebuilt. */
export const MERKLE_FORMAT_VERSION = 2;

const ITEM_SPACE = "m";
const LEAF_SPACE = "md";
const MARKER_SPACE = "mv";
/** Starts with \u0001 so that no table's entry lock key (`name\0pk\0sk`) can equal it. */
const LOCK_PREFIX = "\u0001merkle\u0000";
const PARTITIONS = 256;

const encoder = new TextEncoder();

/** One indexed item of a leaf. */
export interface LeafItem {
  pk: string;
  sk: string;
  hash: Uint8Array;
}

export interface MerkleIndexOptions {
  /** Clock for the partition digest cache; Date.now by default. */
  now?: () => number;
}

/** The leaf (0..255) of an entry: first byte of SHA-256(pk + "\0" + sk). */
export function leafOf(pk: string, sk: string): number {
  const hasher = sha256Hasher();
  hasher.update(encoder.encode(pk + "\u0000" + sk));
  return hasher.digest()[0];
}

/**
 * The item hash of an entry: SHA-256 over pk, sk (length-prefixed) and
 * `stableString(stored)`, where `stored` is the value as the table stores it
 * (`{ v, entry }`). Replicas holding equal merged entries get equal hashes.
 */
export function itemHash(pk: string, sk: string, stored: unknown): Uint8Array {
  return sha256OfLengthPrefixed([pk, sk, stableString(stored)]);
}

export function equalDigests(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function xorInto(target: Uint8Array, value: Uint8Array): void {
  for (let i = 0; i < DIGEST_BYTES; i++) target[i] ^= value[i];
}

function isZero(digest: Uint8Array): boolean {
  return digest.every((b) => b === 0);
}

function checkPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition >= PARTITIONS) {
    throw new RangeError(`Partition ${partition} is not an integer in 0..255`);
  }
}

function checkHash(hash: Uint8Array, what: string): void {
  if (!(hash instanceof Uint8Array) || hash.byteLength !== DIGEST_BYTES) {
    throw new TypeError(`${what} must be a Uint8Array of ${DIGEST_BYTES} bytes`);
  }
}

/** SHA-256 of a partition's leaf digests, end to end: the partition digest. */
function sha256(leaves: Uint8Array): Uint8Array {
  const hasher = sha256Hasher();
  hasher.update(leaves);
  return hasher.digest();
}

/**
 * The leaf digests of one partition known to equal the stored ones, so that
 * a write reads no leaf key, and a complete record serves `leafDigests`
 * without a listing. A leaf is set by the write that reads or changes it,
 * under its lock (a changed one once the commit has succeeded, forgotten if
 * it failed); all of them by a listing that no write overlapped. 8 KiB each.
 */
class LeafRecord {
  readonly #digests = new Uint8Array(LEAF_COUNT * DIGEST_BYTES);
  readonly #known = new Uint8Array(LEAF_COUNT);
  #knownCount = 0;

  get complete(): boolean {
    return this.#knownCount === LEAF_COUNT;
  }

  /** A copy of the leaf's digest, or undefined when unknown. */
  get(leaf: number): Uint8Array | undefined {
    if (this.#known[leaf] === 0) return undefined;
    return this.#digests.slice(leaf * DIGEST_BYTES, (leaf + 1) * DIGEST_BYTES);
  }

  set(leaf: number, digest: Uint8Array): void {
    this.#digests.set(digest, leaf * DIGEST_BYTES);
    if (this.#known[leaf] === 0) {
      this.#known[leaf] = 1;
      this.#knownCount++;
    }
  }

  forget(leaf: number): void {
    if (this.#known[leaf] === 1) {
      this.#known[leaf] = 0;
      this.#knownCount--;
    }
  }

  /** Every leaf, from their digests end to end. */
  setAll(leaves: Uint8Array): void {
    this.#digests.set(leaves);
    this.#known.fill(1);
    this.#knownCount = LEAF_COUNT;
  }

  all(): Uint8Array[] {
    return Array.from({ length: LEAF_COUNT }, (_, leaf) => this.get(leaf)!);
  }

  /** The partition digest of a complete record. */
  digest(): Uint8Array {
    return sha256(this.#digests);
  }
}

/** What `rebuild` found. */
export interface RebuildResult {
  /** Entries of the partition. */
  items: number;
  /** Item keys added, replaced or deleted. */
  changed: number;
  /** Leaf digests that were wrong. */
  leavesChanged: number;
}

interface CachedDigest {
  digest: Uint8Array;
  at: number;
}

/** The Merkle index of every table's partitions in one metadata store; one instance per store. */
export class MerkleIndex {
  readonly #now: () => number;
  /** Partition digests computed since the last write to their partition. */
  readonly #cache = new Map<string, CachedDigest>();
  /** Bumped on every write to a partition, so a digest computed across a write is not cached. */
  readonly #generations = new Map<string, number>();
  /** Known leaf digests of the partitions written to lately, least recently used first. */
  readonly #leaves = new Map<string, LeafRecord>();

  constructor(
    private readonly db: DbStore,
    private readonly mutex: KeyedMutex,
    options: MerkleIndexOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** See the module's `itemHash`. */
  itemHash(pk: string, sk: string, stored: unknown): Uint8Array {
    return itemHash(pk, sk, stored);
  }

  /**
   * The lock keys the caller of `recordUpdate(…, pk, sk, …)` must hold on this
   * index's mutex until its transaction has committed (see the module doc).
   */
  lockKeys(table: string, partition: number, pk: string, sk: string): string[] {
    return [this.#leafLockKey(table, partition, leafOf(pk, sk))];
  }

  /** The lock keys of every leaf of the partition: for writes of entries not known in advance. */
  partitionLockKeys(table: string, partition: number): string[] {
    return Array.from(
      { length: LEAF_COUNT },
      (_, leaf) => this.#leafLockKey(table, partition, leaf),
    );
  }

  /**
   * Adds to `tx` the mutations recording that entry (pk, sk) of the partition
   * now has item hash `newItemHash` (`undefined`: the entry was deleted). The
   * previous hash is read from the index itself, so the leaf digest always
   * equals the XOR of the items listed under it, whatever was stored before;
   * `absentBefore` tells that the entry did not exist, so neither does its
   * item (writes and deletions of entries always update the index with them,
   * and `rebuild` makes it so), and saves that read. The leaf digest comes
   * from memory when known (see `LeafRecord`). Nothing is written when the
   * hash is unchanged; else two mutations (item key, leaf digest).
   *
   * The caller holds `lockKeys(table, partition, pk, sk)` until the commit has
   * resolved, and commits `tx` with its `onSettled` callbacks.
   */
  async recordUpdate(
    tx: LocalTransaction,
    table: string,
    partition: number,
    pk: string,
    sk: string,
    newItemHash: Uint8Array | undefined,
    options: { absentBefore?: boolean } = {},
  ): Promise<void> {
    checkPartition(partition);
    if (newItemHash !== undefined) checkHash(newItemHash, "The new item hash");
    const leaf = leafOf(pk, sk);
    const itemKey: DbKey = [ITEM_SPACE, table, partition, leaf, pk, sk];
    const leafKey: DbKey = [LEAF_SPACE, table, partition, leaf];
    const record = this.#leafRecord(table, partition);
    // Both at once: they share a batch of reads (the leaf is read in vain when nothing changed).
    const [oldItemHash, digest] = await Promise.all([
      options.absentBefore ? undefined : tx.get<Uint8Array>(itemKey),
      this.#leafBefore(tx, record, leaf, leafKey),
    ]);
    if (equalDigests(oldItemHash, newItemHash)) return;
    if (oldItemHash !== undefined) xorInto(digest, oldItemHash);
    if (newItemHash !== undefined) {
      xorInto(digest, newItemHash);
      tx.set(itemKey, newItemHash.slice());
    } else {
      tx.delete(itemKey);
    }
    if (isZero(digest)) tx.delete(leafKey);
    else tx.set(leafKey, digest);
    this.#invalidate(table, partition);
    tx.onSettled(() => {
      record.set(leaf, digest);
      this.#invalidate(table, partition);
    }, () => {
      record.forget(leaf);
      this.#invalidate(table, partition);
    });
  }

  /** The leaf's digest before this write (a copy to change): pending in `tx`, known, or read. */
  async #leafBefore(
    tx: LocalTransaction,
    record: LeafRecord,
    leaf: number,
    leafKey: DbKey,
  ): Promise<Uint8Array> {
    const pending = tx.pending<Uint8Array>(leafKey);
    if (pending !== undefined) {
      return pending === null ? new Uint8Array(DIGEST_BYTES) : pending.value.slice();
    }
    const known = record.get(leaf);
    if (known !== undefined) return known;
    // The caller holds the leaf's lock: what is read stays current until its commit.
    const stored = await this.db.get<Uint8Array>(leafKey);
    const digest = stored?.slice() ?? new Uint8Array(DIGEST_BYTES);
    record.set(leaf, digest);
    return digest.slice();
  }

  /** The partition's record of known leaf digests, made if missing; most recently used last. */
  #leafRecord(table: string, partition: number): LeafRecord {
    const id = `${table}\u0000${partition}`;
    let record = this.#leaves.get(id);
    if (record !== undefined) this.#leaves.delete(id);
    else record = new LeafRecord();
    this.#leaves.set(id, record);
    if (this.#leaves.size > MERKLE_LEAF_RECORDS_MAX) {
      this.#leaves.delete(this.#leaves.keys().next().value!);
    }
    return record;
  }

  /** The 256 leaf digests of a partition (all zero for an empty leaf). */
  async leafDigests(table: string, partition: number): Promise<Uint8Array[]> {
    checkPartition(partition);
    const record = this.#leaves.get(`${table}\u0000${partition}`);
    if (record?.complete) return record.all();
    const leaves = await this.#storedLeaves(table, partition);
    return Array.from(
      { length: LEAF_COUNT },
      (_, leaf) => leaves.subarray(leaf * DIGEST_BYTES, (leaf + 1) * DIGEST_BYTES),
    );
  }

  /** The stored leaf digests of a partition, end to end (zero for an empty leaf). */
  async #storedLeaves(table: string, partition: number): Promise<Uint8Array> {
    const id = `${table}\u0000${partition}`;
    const record = this.#leaves.get(id);
    const generation = this.#generations.get(id) ?? 0;
    const leaves = new Uint8Array(LEAF_COUNT * DIGEST_BYTES);
    for await (
      const { key, value } of this.db.list<Uint8Array>({ prefix: [LEAF_SPACE, table, partition] })
    ) {
      leaves.set(value, (key[3] as number) * DIGEST_BYTES);
    }
    // Records exist for the partitions written to lately (a listing makes
    // none); one is completed only if no write landed while this one ran.
    if (
      record !== undefined && this.#leaves.get(id) === record &&
      (this.#generations.get(id) ?? 0) === generation
    ) {
      record.setAll(leaves);
    }
    return leaves;
  }

  /** SHA-256 of the 256 leaf digests; cached until the partition is written to. */
  async partitionDigest(table: string, partition: number): Promise<Uint8Array> {
    checkPartition(partition);
    const id = `${table}\u0000${partition}`;
    const record = this.#leaves.get(id);
    if (record?.complete) return record.digest();
    const cached = this.#cache.get(id);
    if (cached !== undefined && this.#now() - cached.at < MERKLE_DIGEST_CACHE_MAX_AGE_MS) {
      return cached.digest.slice();
    }
    const generation = this.#generations.get(id) ?? 0;
    const at = this.#now();
    const digest = sha256(await this.#storedLeaves(table, partition));
    if ((this.#generations.get(id) ?? 0) === generation) this.#cache.set(id, { digest, at });
    return digest.slice();
  }

  /** The digests of `partitions`, in their order: one answer for a replica's whole share. */
  async partitionDigests(table: string, partitions: readonly number[]): Promise<Uint8Array[]> {
    const digests: Uint8Array[] = [];
    // One after the other: each may list its partition's leaves.
    for (const partition of partitions) digests.push(await this.partitionDigest(table, partition));
    return digests;
  }

  /** The indexed items of one leaf, in (pk, sk) order. */
  async *leafItems(
    table: string,
    partition: number,
    leaf: number,
  ): AsyncIterableIterator<LeafItem> {
    checkPartition(partition);
    for await (
      const { key, value } of this.db.list<Uint8Array>({
        prefix: [ITEM_SPACE, table, partition, leaf],
      })
    ) {
      yield { pk: key[4] as string, sk: key[5] as string, hash: value };
    }
  }

  /** Whether the partition's index was (re)built by this format version; if not, call `rebuild`. */
  async isBuilt(table: string, partition: number): Promise<boolean> {
    checkPartition(partition);
    const marker = await this.db.get<{ v: number }>([MARKER_SPACE, table, partition]);
    return marker?.v === MERKLE_FORMAT_VERSION;
  }

  /**
   * Marks the partition's index built when it is empty, which is right for
   * a partition with no entry (a new node's first start: rebuilding would hold
   * 256 leaf locks per partition for nothing). Writes keep the index as they
   * go, so one landing meanwhile leaves it right. True when marked.
   */
  async markBuiltIfEmpty(table: string, partition: number): Promise<boolean> {
    checkPartition(partition);
    return await this.#markBuiltIfNoIndex(table, partition);
  }

  /**
   * `markBuiltIfEmpty` for every partition of a table whose index is empty
   * (a new node's first start), in one commit; true when marked.
   */
  async markTableBuiltIfEmpty(table: string): Promise<boolean> {
    return await this.#markBuiltIfNoIndex(table);
  }

  /** Marks the partition (all of the table's when undefined) built if it has no index key. */
  async #markBuiltIfNoIndex(table: string, partition?: number): Promise<boolean> {
    const scope = partition === undefined ? [table] : [table, partition];
    for (const space of [ITEM_SPACE, LEAF_SPACE]) {
      for await (const _ of this.db.list({ prefix: [space, ...scope] }, { limit: 1 })) {
        return false;
      }
    }
    const partitions = partition === undefined
      ? Array.from({ length: PARTITIONS }, (_, p) => p)
      : [partition];
    await this.db.commit(partitions.map((p) => ({
      type: "set" as const,
      key: [MARKER_SPACE, table, p],
      value: { v: MERKLE_FORMAT_VERSION },
    })));
    return true;
  }

  /**
   * Recomputes the partition's index from its entries (`entry` = the value as
   * stored, as for `itemHash`), writing only what differs and deleting stale
   * item keys; then marks the partition built. Holds every leaf lock of the
   * partition meanwhile, so writes to it wait (the caller must hold none of
   * them). Keeps the partition's item hashes in memory (1/256 of the table).
   * An empty `entries` clears the partition's index.
   */
  async rebuild(
    table: string,
    partition: number,
    entries: AsyncIterable<{ pk: string; sk: string; entry: unknown }>,
  ): Promise<RebuildResult> {
    checkPartition(partition);
    const release = await this.mutex.acquireAll(this.partitionLockKeys(table, partition));
    try {
      // Its leaf writes go behind the known digests, and no write or listing can make new ones meanwhile.
      this.#leaves.delete(`${table}\u0000${partition}`);
      this.#invalidate(table, partition);
      const marker: DbKey = [MARKER_SPACE, table, partition];
      // Unmarked while half-rebuilt, so a crash leaves it "not built".
      if (await this.db.get(marker) !== undefined) {
        await this.db.commit([{ type: "delete", key: marker }]);
      }
      const fresh = Array.from({ length: LEAF_COUNT }, () => new Map<string, LeafItem>());
      let items = 0;
      for await (const { pk, sk, entry } of entries) {
        fresh[leafOf(pk, sk)].set(JSON.stringify([pk, sk]), {
          pk,
          sk,
          hash: itemHash(pk, sk, entry),
        });
        items++;
      }
      const digests = fresh.map((leafItems) => {
        const digest = new Uint8Array(DIGEST_BYTES);
        for (const { hash } of leafItems.values()) xorInto(digest, hash);
        return digest;
      });
      const batch: Mutation[] = [];
      const flush = async (force: boolean) => {
        if (batch.length === 0 || (!force && batch.length < MERKLE_REBUILD_BATCH_MUTATIONS)) return;
        await this.db.commit(batch.splice(0));
      };
      let changed = 0;
      let leavesChanged = 0;
      for await (
        const { key, value } of this.db.list<Uint8Array>({ prefix: [ITEM_SPACE, table, partition] })
      ) {
        const [leaf, pk, sk] = [key[3] as number, key[4] as string, key[5] as string];
        const id = JSON.stringify([pk, sk]);
        const want = fresh[leaf]?.get(id);
        if (want === undefined || leafOf(pk, sk) !== leaf) {
          batch.push({ type: "delete", key });
          changed++;
        } else {
          if (!equalDigests(want.hash, value)) {
            batch.push({ type: "set", key, value: want.hash });
            changed++;
          }
          fresh[leaf].delete(id);
        }
        await flush(false);
      }
      const storedLeaves = await this.leafDigests(table, partition);
      for (let leaf = 0; leaf < LEAF_COUNT; leaf++) {
        for (const { pk, sk, hash } of fresh[leaf].values()) {
          batch.push({
            type: "set",
            key: [ITEM_SPACE, table, partition, leaf, pk, sk],
            value: hash,
          });
          changed++;
          await flush(false);
        }
      }
      for (let leaf = 0; leaf < LEAF_COUNT; leaf++) {
        if (equalDigests(digests[leaf], storedLeaves[leaf])) continue;
        leavesChanged++;
        const key: DbKey = [LEAF_SPACE, table, partition, leaf];
        batch.push(
          isZero(digests[leaf])
            ? { type: "delete", key }
            : { type: "set", key, value: digests[leaf] },
        );
      }
      batch.push({ type: "set", key: marker, value: { v: MERKLE_FORMAT_VERSION } });
      await flush(true);
      return { items, changed, leavesChanged };
    } finally {
      this.#invalidate(table, partition);
      release();
    }
  }

  #leafLockKey(table: string, partition: number, leaf: number): string {
    return `${LOCK_PREFIX}${table}\u0000${partition}\u0000${leaf}`;
  }

  #invalidate(table: string, partition: number): void {
    const id = `${table}\u0000${partition}`;
    this.#cache.delete(id);
    this.#generations.set(id, (this.#generations.get(id) ?? 0) + 1);
  }
}

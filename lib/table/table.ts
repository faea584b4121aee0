/**
 * A table of CRDT entries, partitioned by partition key and ordered by sort
 * key. Updates merge with what is stored, so replicas converge whatever the
 * order in which they receive updates.
 *
 * Writes go to every replica of the entry's partition and return after a
 * write quorum; reads ask a read quorum, merge the answers and repair the
 * replicas that were behind. A store that runs alone is a cluster of one.
 */
import { type FreeSpace, OutOfSpaceError } from "../util/free_space.ts";
import type { DbKey, DbSelector, DbStore, ValuePick } from "../db/db.ts";
import { pickValue } from "../db/v8_pick.ts";
import { partitionOfKey } from "./partition.ts";
import { sha256Hex } from "../util/hash.ts";
import type { KeyedMutex } from "../util/keyed_mutex.ts";
import type { TableSchema } from "./schema.ts";
import { DbTransaction } from "./transaction.ts";
import { stableEqual, stableString } from "../util/crdt.ts";
import { compareUtf8 } from "../util/utf8_order.ts";
import { itemHash, type MerkleIndex } from "./merkle.ts";
import { replicasOf, type Replication } from "../rpc/replication.ts";
import { quorumRead, quorumWrite } from "../rpc/quorum.ts";

const TABLE_SPACE = "t";

export interface StoredEntry<E> {
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
  /**
   * Read only these properties of each entry, for scans that need a part of
   * large entries; the schema's merge must accept entries reduced so.
   */
  pick?: ValuePick;
  /**
   * Read every replica seen up (a read quorum at least), not the nearest
   * quorum: for a scan that must not miss an entry, such as a release, which
   * would leave live an entry that reached only the replicas a quorum read
   * skips (a write cut short by its node's death), for anti-entropy to spread.
   */
  everyReplicaUp?: boolean;
}

export { partitionOfKey };

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

/** How many entries one range read asks each replica for. */
const SCAN_PAGE_ENTRIES = 500;

interface RangeRequest {
  pk: string;
  start?: string;
  end?: string;
  limit: number;
  /** Replicas that predate it answer whole entries, which merge with reduced ones. */
  pick?: ValuePick;
}

/** How a write reaches the replicas. */
export interface WriteOptions {
  /**
   * The caller writes the live entries these imply in other tables once this
   * write succeeds, before it acknowledges anything that relies on them: the
   * replicas' `updated` hooks may leave them to it (see
   * `LocalTransaction.writerDerives`). Replicas from before it derive them
   * anyway, which is only more work.
   */
  writerDerives?: boolean;
}

export class Table<E> {
  readonly #partitionCache = new Map<string, number>();
  readonly #path: string;
  #onEntriesNotHeld: (() => void) | undefined;

  constructor(
    readonly schema: TableSchema<E>,
    private readonly db: DbStore,
    private readonly mutex: KeyedMutex,
    private readonly replication: Replication,
    /** Per-partition summaries for anti-entropy; absent on a store that runs alone. */
    private readonly merkle?: MerkleIndex,
    /** The metadata disk's reserve: below it, new entries are refused (see #merge). */
    private readonly space?: FreeSpace,
  ) {
    this.#path = `table/${schema.name}`;
    replication.register(`${this.#path}/update`, async (_from, m) => {
      const { entries, seen, writerDerives } = m.body as {
        entries: E[];
        seen?: ValuePick | null;
        writerDerives?: boolean | null;
      };
      const before = await this.applyLocal(entries, { writerDerives: writerDerives === true });
      if (!seen) return { body: null };
      return {
        body: { seen: before.map((old) => old === undefined ? null : pickValue(old, seen)) },
      };
    });
    replication.register(`${this.#path}/get`, async (_from, m) => {
      const { pk, sk } = m.body as { pk: string; sk: string };
      return { body: { entry: (await this.getLocal(pk, sk)) ?? null } };
    });
    replication.register(`${this.#path}/delete-if`, async (_from, m) => {
      const { pk, sk, fingerprint } = m.body as { pk: string; sk: string; fingerprint: string };
      return { body: { deleted: await this.deleteLocalIf(pk, sk, fingerprint) } };
    });
    replication.register(`${this.#path}/range`, async (_from, m) => {
      const r = m.body as RangeRequest;
      // Absent fields may arrive as null from the wire.
      const entries = await this.#rangeLocal(
        r.pk,
        r.start ?? undefined,
        r.end ?? undefined,
        r.limit,
        r.pick ?? undefined,
      );
      return { body: { entries } };
    });
  }

  /**
   * `listener` runs after this node stored entries of partitions it does not
   * hold (sent by a peer whose layout was behind, or changed during a
   * handover), so that they are handed over soon (handover.ts).
   */
  onEntriesNotHeld(listener: () => void): void {
    this.#onEntriesNotHeld = listener;
  }

  partitionOf(partitionKey: string): number {
    let p = this.#partitionCache.get(partitionKey);
    if (p === undefined) {
      p = partitionOfKey(partitionKey);
      if (this.#partitionCache.size > 10_000) this.#partitionCache.clear();
      this.#partitionCache.set(partitionKey, p);
    }
    return p;
  }

  /** Reads an entry from a read quorum of replicas, merges the answers and repairs replicas that were behind. */
  async get(partitionKey: string, sortKey = ""): Promise<E | undefined> {
    const nodes = this.replication.readSet(this.partitionOf(partitionKey));
    // A node that is the only replica reads its own copy without an RPC's promise chain.
    if (nodes.length === 1 && nodes[0] === this.replication.nodeId) {
      return await this.getLocal(partitionKey, sortKey);
    }
    const answers = await this.#quorumRead(
      `read ${this.schema.name} entry`,
      nodes,
      false,
      (node) => this.#getOn(node, partitionKey, sortKey, "high"),
    );
    const merged = this.#mergeCopies(answers.map((a) => a.value));
    if (answers.length > 1) {
      for (const repair of this.#repairBehind(answers, merged)) repair.catch(() => {});
    }
    return merged;
  }

  /**
   * Reads an entry from every replica that answers, and writes the merged
   * copies to those that lack part of it; resolves once they stored it or
   * failed. A write that failed after it reached one replica alone is then
   * on every replica up, where quorum reads see it, without waiting for
   * anti-entropy to spread it.
   */
  async spreadCopies(partitionKey: string, sortKey = ""): Promise<void> {
    const copies = await this.copiesOnReplicas(partitionKey, sortKey, "high");
    const answers = [...copies].map(([node, value]) => ({ node, value }));
    const merged = this.#mergeCopies(answers.map((a) => a.value));
    await Promise.allSettled(this.#repairBehind(answers, merged));
  }

  /** Sends `merged` to the replicas whose copy lacks part of it (read repair). */
  #repairBehind(
    copies: { node: string; value: E | undefined }[],
    merged: E | undefined,
  ): Promise<unknown>[] {
    if (merged === undefined) return [];
    return copies
      .filter((c) => c.value === undefined || !stableEqual(c.value, merged))
      .map(({ node }) =>
        this.replication.call(node, `${this.#path}/update`, { body: { entries: [merged] } }, {
          priority: "high",
        })
      );
  }

  /**
   * An entry as every replica of its partition holds it, merged; fails
   * unless every one answers. For a decision that a copy on any replica
   * would overturn, such as releasing data that no entry seems to name.
   */
  async getFromEveryReplica(partitionKey: string, sortKey = ""): Promise<E | undefined> {
    const nodes = replicasOf(this.replication, this.partitionOf(partitionKey));
    const answers = await quorumRead(
      `read ${this.schema.name} entry from every replica`,
      nodes,
      nodes.length,
      this.replication.readHedgeMs(nodes),
      (node) => this.#getOn(node, partitionKey, sortKey, "background"),
    );
    return this.#mergeCopies(answers.map((a) => a.value));
  }

  /**
   * Each replica's copy of an entry, from the replicas that answer (a copy
   * undefined: that replica holds none); those that fail are left out.
   */
  async copiesOnReplicas(
    partitionKey: string,
    sortKey = "",
    priority: "high" | "background" = "background",
  ): Promise<Map<string, E | undefined>> {
    const nodes = replicasOf(this.replication, this.partitionOf(partitionKey));
    const answers = await Promise.allSettled(
      nodes.map((node) => this.#getOn(node, partitionKey, sortKey, priority)),
    );
    const copies = new Map<string, E | undefined>();
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") copies.set(nodes[i], a.value);
    });
    return copies;
  }

  /** A replica's copy of an entry. */
  async #getOn(
    node: string,
    pk: string,
    sk: string,
    priority: "high" | "background",
  ): Promise<E | undefined> {
    const answer = await this.replication.call(node, `${this.#path}/get`, { body: { pk, sk } }, {
      priority,
    });
    return (answer.body as { entry: E | null }).entry ?? undefined;
  }

  /** Replicas' copies of an entry, merged; undefined where none has it. */
  #mergeCopies(copies: (E | undefined)[]): E | undefined {
    let merged: E | undefined;
    for (const copy of copies) {
      if (copy !== undefined) {
        merged = merged === undefined ? copy : this.schema.merge(merged, copy);
      }
    }
    return merged;
  }

  async insert(entry: E): Promise<void> {
    await this.insertMany([entry]);
  }

  /**
   * Writes one entry as `insert` does, and resolves with the copies the
   * replicas of the write quorum held before it, reduced to `pick` (undefined
   * where one had none): a read and a write in one round trip. Should a
   * replica not report its copy (an older remise), a quorum read after the
   * write stands for them, its answer then including `entry`.
   */
  async insertSeeing(entry: E, pick: ValuePick): Promise<unknown[]> {
    const pk = this.schema.partitionKey(entry);
    const answers = await this.#writePartition(this.partitionOf(pk), {
      entries: [entry],
      seen: pick,
    });
    const seen: unknown[] = [];
    for (const { value } of answers) {
      const reported = (value.body as { seen?: unknown[] } | null)?.seen;
      if (reported === undefined) {
        const now = await this.get(pk, this.schema.sortKey(entry));
        return [now === undefined ? undefined : pickValue(now, pick)];
      }
      seen.push(reported[0] ?? undefined);
    }
    return seen;
  }

  /** Sends the entries to every replica of their partitions; resolves once a write quorum stored them. */
  async insertMany(entries: E[], options: WriteOptions = {}): Promise<void> {
    if (entries.length === 0) return;
    const byPartition = new Map<number, E[]>();
    for (const e of entries) {
      const p = this.partitionOf(this.schema.partitionKey(e));
      const list = byPartition.get(p);
      if (list) list.push(e);
      else byPartition.set(p, [e]);
    }
    await Promise.all(
      [...byPartition].map(([partition, group]) =>
        this.#writePartition(
          partition,
          options.writerDerives ? { entries: group, writerDerives: true } : { entries: group },
        )
      ),
    );
  }

  /** Sends an `update` to every replica of the partition; resolves with a write quorum's answers. */
  #writePartition(
    partition: number,
    body: { entries: E[]; seen?: ValuePick; writerDerives?: boolean },
  ) {
    return quorumWrite(
      `write ${this.schema.name} entries`,
      this.replication.writeSets(partition),
      (n) => this.replication.writeQuorum(n),
      (node) => this.replication.call(node, `${this.#path}/update`, { body }, { priority: "high" }),
      { localLast: this.replication.nodeId },
    );
  }

  /**
   * Entries of one partition key in sort-key order, read from a read quorum
   * of replicas page by page and merged.
   */
  async *scan(partitionKey: string, options: ScanOptions = {}): AsyncIterableIterator<E> {
    for await (const page of this.scanPages(partitionKey, options)) yield* page;
  }

  /** What `scan` yields, a page at a time: for loops that run over many entries. */
  async *scanPages(partitionKey: string, options: ScanOptions = {}): AsyncIterableIterator<E[]> {
    let { start, end } = sortKeyBounds(options);
    if (start !== undefined && end !== undefined && compareUtf8(start, end) >= 0) return;
    let remaining = options.limit ?? Infinity;
    const nodes = this.replication.readSet(this.partitionOf(partitionKey));
    while (remaining > 0) {
      const limit = Math.min(SCAN_PAGE_ENTRIES, remaining);
      const request: RangeRequest = { pk: partitionKey, start, end, limit, pick: options.pick };
      const answers = await this.#quorumRead(
        `list ${this.schema.name} entries`,
        nodes,
        options.everyReplicaUp === true,
        async (node) =>
          ((await this.replication.call(node, `${this.#path}/range`, { body: request }, {
            priority: "high",
          }))
            .body as { entries: E[] }).entries,
      );
      const { entries, boundary } = this.#mergePages(answers.map((a) => a.value), limit);
      const page = entries.length > remaining ? entries.slice(0, remaining) : entries;
      remaining -= page.length;
      if (page.length > 0) yield page;
      if (boundary === undefined) return;
      start = boundary + "\u0000";
    }
  }

  /**
   * Asks the nearest read quorum of `nodes`, and others when some fail or are
   * slow; with `everyUp`, every node seen up, and others while that is less
   * than a quorum. Without, a replica that may lack acknowledged writes is
   * left out when enough others are up (see Replication.holdsAllWrites).
   */
  #quorumRead<T>(
    what: string,
    nodes: string[],
    everyUp: boolean,
    fn: (node: string) => Promise<T>,
  ): Promise<{ node: string; value: T }[]> {
    let quorum = this.replication.readQuorum(nodes.length);
    let ordered = this.replication.byProximity(nodes);
    if (everyUp) {
      const up = ordered.filter((node) => this.replication.isUp(node));
      quorum = Math.max(quorum, up.length);
      ordered = [...up, ...ordered.filter((node) => !up.includes(node))];
    } else if (!ordered.every((node) => this.replication.holdsAllWrites(node))) {
      // A replica rebuilt from empty disks lacks the writes it acknowledged before, until it
      // has fetched them: it answers only when the replicas up that hold them are too few.
      const holding = ordered.filter((node) => this.replication.holdsAllWrites(node));
      if (holding.filter((node) => this.replication.isUp(node)).length >= quorum) {
        ordered = holding;
      }
    }
    const hedgeMs = this.replication.readHedgeMs(ordered.slice(0, quorum));
    return quorumRead(what, ordered, quorum, hedgeMs, fn);
  }

  /**
   * Merges the pages that replicas answered to one range read. Only keys up
   * to the smallest last key of a full page are known on every replica asked:
   * `boundary` is that key, or undefined when no page was full (the range is
   * read to its end).
   */
  #mergePages(pages: E[][], limit: number): { entries: E[]; boundary?: string } {
    let boundary: string | undefined;
    for (const page of pages) {
      if (page.length === limit) {
        const last = this.schema.sortKey(page[page.length - 1]);
        if (boundary === undefined || compareUtf8(last, boundary) < 0) boundary = last;
      }
    }
    // One replica's page is sorted and has one entry per key already.
    if (pages.length === 1) return { entries: pages[0], boundary };
    const merged = new Map<string, E>();
    for (const page of pages) {
      for (const e of page) {
        const sk = this.schema.sortKey(e);
        if (boundary !== undefined && compareUtf8(sk, boundary) > 0) continue;
        const seen = merged.get(sk);
        merged.set(sk, seen === undefined ? e : this.schema.merge(seen, e));
      }
    }
    const sorted = [...merged.entries()].sort(([a], [b]) => compareUtf8(a, b));
    return { entries: sorted.map(([, e]) => e), boundary };
  }

  /**
   * Merges the entries into this node's copy in one local transaction (the
   * replica side of a write); resolves with the copies held before. New
   * entries refused for lack of space fail the call once the others are
   * stored, so that a batch (anti-entropy's) still brings its deletions.
   */
  async applyLocal(entries: E[], options: WriteOptions = {}): Promise<(E | undefined)[]> {
    if (entries.length === 0) return [];
    const release = await this.mutex.acquireAll(entries.flatMap((e) => this.#lockKeys(e)));
    const tx = new DbTransaction(this.db, options.writerDerives);
    const before: (E | undefined)[] = new Array(entries.length);
    const ends = new PartitionEnds(this.schema, (pk, sk) => this.#getIn(tx, pk, sk));
    let refused: OutOfSpaceError | undefined;
    try {
      for (const i of ends.markersFirst(entries)) {
        const pk = this.schema.partitionKey(entries[i]);
        const sk = this.schema.sortKey(entries[i]);
        const old = await this.#getIn(tx, pk, sk);
        before[i] = old;
        if (ends.isMarker(sk) && old === undefined) await this.#endStored(tx, pk, entries[i]);
        try {
          await this.#merge(tx, await ends.admit(pk, sk, entries[i]), old);
        } catch (e) {
          if (!(e instanceof OutOfSpaceError)) throw e;
          refused ??= e;
        }
      }
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
    if (this.#onEntriesNotHeld && entries.some((e) => !this.#holds(e))) this.#onEntriesNotHeld();
    if (refused) throw refused;
    return before;
  }

  /**
   * Ends every entry of the partition stored here, for its end marker about
   * to be stored: first, because a commit too large for one engine commit is
   * written in order, and a stop in between must leave no marker without
   * its ending.
   */
  async #endStored(tx: DbTransaction, pk: string, marker: E): Promise<void> {
    const end = this.schema.partitionEnd!.end;
    for (const stored of await this.#rangeLocal(pk, undefined, undefined, undefined, undefined)) {
      await this.#merge(tx, end(stored, marker), stored);
    }
  }

  /**
   * On a node that is its partition's only replica: merges in the entry
   * `make` returns from the stored one (undefined: nothing to write), read
   * and written under the entry's lock: one read where a read, then an
   * insert's merge, would make two. Resolves to undefined, having done
   * nothing, when the partition has other replicas; else to the stored entry
   * `make` was given.
   */
  async updateIfAlone(
    partitionKey: string,
    sortKey: string,
    make: (old: E | undefined) => E | undefined,
  ): Promise<{ old: E | undefined } | undefined> {
    if (this.schema.lockKey) {
      throw new Error(`${this.schema.name}: updateIfAlone needs entries locked by their key`);
    }
    if (!this.#alone(partitionKey)) return undefined;
    const release = await this.mutex.acquireAll(this.#locksOf(partitionKey, sortKey));
    const tx = new DbTransaction(this.db);
    let old: E | undefined;
    try {
      old = await this.#getIn(tx, partitionKey, sortKey);
      const incoming = make(old);
      if (incoming === undefined) return { old };
      if (
        this.schema.partitionKey(incoming) !== partitionKey ||
        this.schema.sortKey(incoming) !== sortKey
      ) {
        throw new Error(`${this.schema.name}: updateIfAlone may only write the entry it read`);
      }
      await this.#merge(tx, incoming, old);
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
    return { old };
  }

  /** Whether this node is the only replica of the partition, for reads and writes alike. */
  #alone(partitionKey: string): boolean {
    const partition = this.partitionOf(partitionKey);
    const self = this.replication.nodeId;
    const reads = this.replication.readSet(partition);
    return reads.length === 1 && reads[0] === self &&
      this.replication.writeSets(partition).every((set) => set.length === 1 && set[0] === self);
  }

  /**
   * The locks a write of `entry` holds until its commit: the entry's, and the
   * Merkle leaf's whose digest it changes (a read-modify-write shared by every
   * entry of the leaf; see merkle.ts).
   */
  #lockKeys(entry: E): string[] {
    const pk = this.schema.partitionKey(entry);
    const sk = this.schema.sortKey(entry);
    const partitionEnd = this.schema.partitionEnd;
    if (partitionEnd) {
      // An end marker's arrival and an entry's must not interleave: one would
      // miss the other. A marker ends entries of any Merkle leaf.
      const own = `${this.schema.name}\u0000${pk}`;
      if (sk !== partitionEnd.sortKey) return [own, ...this.#leafLockKeys(pk, sk)];
      const leaves = this.merkle?.partitionLockKeys(this.schema.name, this.partitionOf(pk)) ?? [];
      return [own, ...leaves];
    }
    const own = this.schema.lockKey?.(entry);
    return own === undefined ? this.#locksOf(pk, sk) : [own, ...this.#leafLockKeys(pk, sk)];
  }

  /** The locks of an entry by its keys (tables without a lockKey of their own) and of its Merkle leaf. */
  #locksOf(pk: string, sk: string): string[] {
    return [`${this.schema.name}\u0000${pk}\u0000${sk}`, ...this.#leafLockKeys(pk, sk)];
  }

  #leafLockKeys(pk: string, sk: string): string[] {
    return this.merkle?.lockKeys(this.schema.name, this.partitionOf(pk), pk, sk) ?? [];
  }

  async #getIn(tx: DbTransaction, pk: string, sk: string): Promise<E | undefined> {
    const stored = await tx.get<StoredEntry<E>>(this.#key(pk, sk));
    return stored === undefined ? undefined : this.#decode(stored);
  }

  /** Merges `incoming` into the stored entry `old` within `tx` (the caller holds the entry's lock). */
  async #merge(tx: DbTransaction, incoming: E, old: E | undefined): Promise<void> {
    const next = old === undefined ? incoming : this.schema.merge(old, incoming);
    if (old !== undefined && stableEqual(old, next)) return;
    // A disk at its reserve takes no new entries, here or from peers (whose
    // write quorum may do without this replica); changes to entries it has,
    // deletions among them, go on: they are what makes room.
    if (old === undefined && !this.schema.isTombstone?.(next)) this.space?.claim(0);
    const pk = this.schema.partitionKey(incoming);
    const sk = this.schema.sortKey(incoming);
    const key = this.#key(pk, sk);
    if (!this.merkle && this.replication.nodeId === "local" && this.schema.isTombstone?.(next)) {
      // A store that runs alone is every replica: the tombstone is everywhere already.
      tx.delete(key);
    } else {
      const value: StoredEntry<E> = { v: this.schema.formatVersion, entry: next };
      tx.set(key, value);
      await this.merkle?.recordUpdate(
        tx,
        this.schema.name,
        this.partitionOf(pk),
        pk,
        sk,
        itemHash(pk, sk, value),
        { absentBefore: old === undefined },
      );
    }
    await this.schema.updated?.(old, next, tx);
  }

  /** A fingerprint of an entry's content, to check that replicas hold the same copy. */
  static fingerprint(entry: unknown): string {
    return sha256Hex(stableString(entry));
  }

  /**
   * Deletes this node's copy of an entry if it still has the content with
   * that fingerprint (a tombstone every replica holds); true when deleted.
   */
  async deleteLocalIf(
    partitionKey: string,
    sortKey: string,
    fingerprint: string,
    options: { handedOver?: boolean } = {},
  ): Promise<boolean> {
    const partition = this.partitionOf(partitionKey);
    const key = this.#key(partitionKey, sortKey);
    // The entry's locks are those its updates take (a table may lock by a
    // key of its own): read once to learn them, then again under them.
    const unlocked = await this.db.get<StoredEntry<E>>(key);
    if (unlocked === undefined) return false;
    const release = await this.mutex.acquireAll(this.#lockKeys(this.#decode(unlocked)));
    const tx = new DbTransaction(this.db);
    try {
      const stored = await tx.get<StoredEntry<E>>(key);
      const entry = stored === undefined ? undefined : this.#decode(stored);
      if (entry === undefined || Table.fingerprint(entry) !== fingerprint) return false;
      tx.delete(key);
      await this.merkle?.recordUpdate(
        tx,
        this.schema.name,
        partition,
        partitionKey,
        sortKey,
        undefined,
      );
      if (options.handedOver) await this.schema.handedOver?.(entry, tx);
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
    return true;
  }

  /**
   * Deletes this node's copy of an entry of a partition it no longer holds,
   * if it is still `stored` (the replicas have it); true when deleted.
   */
  async deleteHandedOver(stored: StoredEntry<E>): Promise<boolean> {
    const entry = this.#decode(stored);
    return await this.deleteLocalIf(
      this.schema.partitionKey(entry),
      this.schema.sortKey(entry),
      Table.fingerprint(entry),
      { handedOver: true },
    );
  }

  async getLocal(partitionKey: string, sortKey = ""): Promise<E | undefined> {
    const stored = await this.db.get<StoredEntry<E>>(this.#key(partitionKey, sortKey));
    return stored === undefined ? undefined : this.#decode(stored);
  }

  /**
   * This node's first `limit` entries of a partition key, in sort-key order,
   * or undefined when it does not store the partition: for readers that can
   * tell from the entries themselves that they are all there and current.
   */
  async scanLocal(partitionKey: string, limit: number): Promise<E[] | undefined> {
    if (!this.replication.storesPartition(this.partitionOf(partitionKey))) return undefined;
    return await this.#rangeLocal(partitionKey, undefined, undefined, limit, undefined);
  }

  /** This node's entries of a range, in sort-key order. */
  async #rangeLocal(
    partitionKey: string,
    start: string | undefined,
    end: string | undefined,
    limit: number | undefined,
    pick: ValuePick | undefined,
  ): Promise<E[]> {
    const base = this.#base(partitionKey);
    const selector: DbSelector = end === undefined
      ? (start === undefined ? { prefix: base } : { prefix: base, start: [...base, start] })
      : (start === undefined
        ? { prefix: base, end: [...base, end] }
        : { start: [...base, start], end: [...base, end] });
    const storedPick = pick === undefined ? undefined : storedEntryPick(pick);
    const entries: E[] = [];
    for await (
      const { key, value } of this.db.list<StoredEntry<E>>(selector, {
        limit,
        pick: storedPick,
      })
    ) {
      if (storedPick !== undefined && value.v !== this.schema.formatVersion && this.schema.decode) {
        // An older format upgrades from the whole entry.
        const sortKey = key[key.length - 1] as string;
        entries.push((await this.getLocal(partitionKey, sortKey)) ?? this.#decode(value));
      } else {
        entries.push(this.#decode(value));
      }
    }
    return entries;
  }

  /** Merges entries received as stored by another replica (anti-entropy). */
  async applyStored(stored: StoredEntry<E>[]): Promise<void> {
    await this.applyLocal(stored.map((s) => this.#decode(s)));
  }

  #holds(entry: E): boolean {
    return this.replication.storesPartition(this.partitionOf(this.schema.partitionKey(entry)));
  }

  #decode(stored: StoredEntry<E>): E {
    if (stored.v === this.schema.formatVersion || !this.schema.decode) return stored.entry;
    return this.schema.decode(stored.entry, stored.v);
  }

  #base(partitionKey: string): DbKey {
    return [TABLE_SPACE, this.schema.name, this.partitionOf(partitionKey), partitionKey];
  }

  #key(partitionKey: string, sortKey: string): DbKey {
    return [...this.#base(partitionKey), sortKey];
  }
}

const storedEntryPicks = new WeakMap<ValuePick, ValuePick>();

/** The pick of stored entries for a pick of entries; always the same one (readers cache on it). */
function storedEntryPick(entryPick: ValuePick): ValuePick {
  let pick = storedEntryPicks.get(entryPick);
  if (pick === undefined) {
    pick = { v: true, entry: entryPick };
    storedEntryPicks.set(entryPick, pick);
  }
  return pick;
}

/** The sort-key range [start, end) of scan options, prefix included. */
function sortKeyBounds(options: ScanOptions): { start?: string; end?: string } {
  let start = options.start;
  let end = options.end;
  if (options.prefix !== undefined && options.prefix !== "") {
    if (start === undefined || compareUtf8(start, options.prefix) < 0) start = options.prefix;
    const pEnd = prefixEnd(options.prefix);
    if (pEnd !== undefined && (end === undefined || compareUtf8(pEnd, end) < 0)) end = pEnd;
  }
  return { start, end };
}

/**
 * The end markers of one local transaction's partitions (see
 * TableSchema.partitionEnd), each read once.
 */
class PartitionEnds<E> {
  readonly #markers = new Map<string, E | undefined>();

  constructor(
    private readonly schema: TableSchema<E>,
    private readonly read: (pk: string, sk: string) => Promise<E | undefined>,
  ) {}

  isMarker(sortKey: string): boolean {
    return this.schema.partitionEnd?.sortKey === sortKey;
  }

  /** The indexes of `entries`, markers first: the entries after them in a batch see them. */
  markersFirst(entries: E[]): number[] {
    const indexes = entries.map((_, i) => i);
    if (!this.schema.partitionEnd) return indexes;
    const marker = (i: number) => this.isMarker(this.schema.sortKey(entries[i]));
    return [...indexes.filter(marker), ...indexes.filter((i) => !marker(i))];
  }

  /** The entry to merge in for `entry`: ended if its partition is. */
  async admit(pk: string, sk: string, entry: E): Promise<E> {
    const partitionEnd = this.schema.partitionEnd;
    if (!partitionEnd) return entry;
    if (this.isMarker(sk)) {
      this.#markers.set(pk, entry);
      return entry;
    }
    if (!this.#markers.has(pk)) this.#markers.set(pk, await this.read(pk, partitionEnd.sortKey));
    const marker = this.#markers.get(pk);
    return marker === undefined ? entry : partitionEnd.end(entry, marker);
  }
}

/**
 * Test helper: a replica of CRDT test entries on a real KvStore with a
 * MerkleIndex, updated the way `Table` must update it (entry and leaf locks in
 * one `acquireAll`, held until the commit has resolved).
 */
import { KvStore } from "../db/kv_store.ts";
import { sha256Hex } from "../util/hash.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { indexedPartitionPeer, type PartitionPeer } from "./anti_entropy.ts";
import { itemHash, MerkleIndex } from "./merkle.ts";
import { DbTransaction } from "./transaction.ts";

/** A CRDT: last-writer-wins `value` (by `t`, then by value) and a grow-only set of tags. */
export interface TestEntry {
  pk: string;
  sk: string;
  t: number;
  value: string;
  tags: string[];
}

export interface Stored {
  v: number;
  entry: TestEntry;
}

export function mergeTestEntries(a: TestEntry, b: TestEntry): TestEntry {
  const winner = a.t !== b.t ? (a.t > b.t ? a : b) : (a.value >= b.value ? a : b);
  const tags = [...new Set([...a.tags, ...b.tags])].sort();
  return { pk: a.pk, sk: a.sk, t: winner.t, value: winner.value, tags };
}

export function partitionOf(pk: string): number {
  return parseInt(sha256Hex(pk).slice(0, 2), 16);
}

export interface Op {
  pk: string;
  sk: string;
  /** The new stored value; undefined deletes the entry. */
  stored: unknown;
}

export class TestReplica {
  readonly mutex = new KeyedMutex();
  readonly index: MerkleIndex;
  /** Entries received through `putEntries`. */
  received = 0;

  private constructor(readonly db: KvStore, readonly dir: string) {
    this.index = new MerkleIndex(db, this.mutex);
  }

  static async open(): Promise<TestReplica> {
    const dir = await Deno.makeTempDir({ prefix: "remise_merkle_" });
    return new TestReplica(await KvStore.open(`${dir}/meta.db`), dir);
  }

  async close(): Promise<void> {
    this.db.close();
    await Deno.remove(this.dir, { recursive: true });
  }

  /** Sets (or deletes) entries exactly, in one transaction, recording them in the index. */
  async apply(table: string, ops: Op[], lock = true): Promise<void> {
    const keys = ops.flatMap(({ pk, sk }) => [
      `${table}\u0000${pk}\u0000${sk}`,
      ...this.index.lockKeys(table, partitionOf(pk), pk, sk),
    ]);
    const release = lock ? await this.mutex.acquireAll(keys) : () => {};
    const tx = new DbTransaction(this.db);
    try {
      for (const { pk, sk, stored } of ops) {
        const partition = partitionOf(pk);
        const key = ["t", table, partition, pk, sk];
        if (stored === undefined) tx.delete(key);
        else tx.set(key, stored);
        const hash = stored === undefined ? undefined : itemHash(pk, sk, stored);
        await this.index.recordUpdate(tx, table, partition, pk, sk, hash);
      }
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
  }

  /** Merges CRDT entries into what is stored, as a table does. */
  async merge(table: string, incoming: TestEntry[]): Promise<void> {
    const keys = incoming.flatMap(({ pk, sk }) => [
      `${table}\u0000${pk}\u0000${sk}`,
      ...this.index.lockKeys(table, partitionOf(pk), pk, sk),
    ]);
    const release = await this.mutex.acquireAll(keys);
    const tx = new DbTransaction(this.db);
    try {
      for (const entry of incoming) {
        const partition = partitionOf(entry.pk);
        const key = ["t", table, partition, entry.pk, entry.sk];
        const old = await tx.get<Stored>(key);
        const next: Stored = { v: 1, entry: old ? mergeTestEntries(old.entry, entry) : entry };
        tx.set(key, next);
        await this.index.recordUpdate(
          tx,
          table,
          partition,
          entry.pk,
          entry.sk,
          itemHash(entry.pk, entry.sk, next),
          { absentBefore: old === undefined },
        );
      }
      await tx.commit();
    } finally {
      release();
    }
    await tx.runAfterCommit();
  }

  async get(table: string, pk: string, sk: string): Promise<Stored | undefined> {
    return await this.db.get<Stored>(["t", table, partitionOf(pk), pk, sk]);
  }

  /** The stored entries of a partition, as `rebuild` takes them. */
  async *entries(
    table: string,
    partition: number,
  ): AsyncIterableIterator<{ pk: string; sk: string; entry: unknown }> {
    for await (const { key, value } of this.db.list({ prefix: ["t", table, partition] })) {
      yield { pk: key[3] as string, sk: key[4] as string, entry: value };
    }
  }

  peer(): PartitionPeer {
    return indexedPartitionPeer(this.index, {
      getEntries: async (table, keys) => {
        const out: unknown[] = [];
        for (const { pk, sk } of keys) out.push(await this.get(table, pk, sk));
        return out;
      },
      putEntries: async (table, stored) => {
        this.received += stored.length;
        await this.merge(table, (stored as Stored[]).map((s) => s.entry));
      },
    });
  }
}

/** Runs `fn` with `count` fresh replicas, closed after. */
export async function withReplicas(
  count: number,
  fn: (...replicas: TestReplica[]) => Promise<void>,
): Promise<void> {
  const replicas = await Promise.all(Array.from({ length: count }, () => TestReplica.open()));
  try {
    await fn(...replicas);
  } finally {
    for (const r of replicas) await r.close();
  }
}

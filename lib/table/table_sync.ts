/**
 * Anti-entropy between the replicas of every table: the local side reads the
 * Merkle index and stored entries, the remote side is reached by RPC.
 */
import type { DbStore } from "../db/db.ts";
import type { Replication } from "../rpc/replication.ts";
import { PARTITION_COUNT } from "../rpc/layout_assignment.ts";
import { isUnknownPath } from "../net/transport.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { AntiEntropyWorker, indexedPartitionPeer, type PartitionPeer } from "./anti_entropy.ts";
import { handOverPartitions, type HandoverResult } from "./handover.ts";
import type { MerkleIndex } from "./merkle.ts";
import { partitionOfKey } from "./partition.ts";
import type { StoredEntry, Table } from "./table.ts";

/** The digests of many partitions in one call (see `PartitionPeer.partitionDigests`). */
const DIGESTS_PATH = "sync/digests";
/** Partitions whose anti-entropy index is checked (and built if missing) at once at start. */
const INDEX_CHECKS_AT_ONCE = 16;

export interface TableSync {
  worker: AntiEntropyWorker;
  /** Builds the Merkle index of every partition stored here that has none (first start, format change). */
  buildMissingIndexes(): Promise<number>;
  /** Hands the entries of partitions this node no longer holds to their replicas (handover.ts). */
  handOver(): Promise<HandoverResult>;
  /** `listener` runs when entries of a partition this node does not hold were stored here. */
  onEntriesNotHeld(listener: () => void): void;
}

export function setUpTableSync(
  // deno-lint-ignore no-explicit-any
  tables: Table<any>[],
  db: DbStore,
  merkle: MerkleIndex,
  replication: Replication,
): TableSync {
  const byName = new Map(tables.map((t) => [t.schema.name, t]));
  const tableOf = (name: string) => {
    const table = byName.get(name);
    if (!table) throw new Error(`Unknown table "${name}"`);
    return table;
  };
  const local = indexedPartitionPeer(merkle, {
    async getEntries(table, keys) {
      return await Promise.all(
        keys.map(({ pk, sk }) => db.get(["t", table, partitionOfKey(pk), pk, sk])),
      );
    },
    async putEntries(table, stored) {
      await tableOf(table).applyStored(stored.filter((s) => s != null) as StoredEntry<unknown>[]);
    },
  });
  type Body = {
    table: string;
    partition: number;
    leaf?: number;
    partitions?: number[];
    keys?: { pk: string; sk: string }[];
    entries?: unknown[];
  };
  const handlers: Record<string, (b: Body) => Promise<unknown>> = {
    "sync/digest": (b) => local.partitionDigest(b.table, b.partition),
    [DIGESTS_PATH]: (b) => local.partitionDigests!(b.table, b.partitions!),
    "sync/leaves": (b) => local.leafDigests(b.table, b.partition),
    "sync/items": (b) => local.leafItems(b.table, b.partition, b.leaf!),
    "sync/get": async (b) => (await local.getEntries(b.table, b.keys!)).map((e) => e ?? null),
    "sync/put": async (b) => {
      await local.putEntries(b.table, b.entries!);
      return null;
    },
  };
  for (const [path, fn] of Object.entries(handlers)) {
    replication.register(
      path,
      async (_from, m) => ({ body: { result: await fn(m.body as Body) } }),
    );
  }
  const remote = (node: string): PartitionPeer => {
    const call = async <T>(path: string, body: Body): Promise<T> =>
      ((await replication.call(node, path, { body }, { priority: "normal" })).body as { result: T })
        .result;
    return {
      partitionDigest: (table, partition) => call("sync/digest", { table, partition }),
      partitionDigests: async (table, partitions) => {
        try {
          return await call(DIGESTS_PATH, { table, partition: 0, partitions });
        } catch (e) {
          if (isUnknownPath(e, DIGESTS_PATH)) return undefined;
          throw e;
        }
      },
      leafDigests: (table, partition) => call("sync/leaves", { table, partition }),
      leafItems: (table, partition, leaf) => call("sync/items", { table, partition, leaf }),
      getEntries: (table, keys) => call("sync/get", { table, partition: 0, keys }),
      putEntries: (table, entries) => call("sync/put", { table, partition: 0, entries }),
    };
  };
  const partitions = () =>
    Array.from({ length: PARTITION_COUNT }, (_, p) => p).filter((p) =>
      replication.storesPartition(p)
    );
  const worker = new AntiEntropyWorker({
    nodeId: replication.nodeId,
    tables: [...byName.keys()],
    local,
    partitions,
    replicasOf: (p) => [...new Set(replication.writeSets(p).flat())],
    peer: remote,
  });
  return {
    worker,
    handOver: () =>
      handOverPartitions(
        [...byName.values()],
        db,
        replication,
        (node, table, entries) => remote(node).putEntries(table, entries),
      ),
    onEntriesNotHeld(listener) {
      for (const table of byName.values()) table.onEntriesNotHeld(listener);
    },
    async buildMissingIndexes() {
      let built = 0;
      const todo: { name: string; p: number }[] = [];
      for (const name of byName.keys()) {
        // A new node's tables are empty: one commit marks a table's partitions.
        if (await isEmpty(db.list({ prefix: ["t", name] }, { limit: 1 }))) {
          if (await merkle.markTableBuiltIfEmpty(name)) continue;
        }
        for (let p = 0; p < PARTITION_COUNT; p++) todo.push({ name, p });
      }
      // Several partitions at once, so that their reads batch.
      await Promise.all(Array.from({ length: INDEX_CHECKS_AT_ONCE }, async () => {
        for (let next = todo.shift(); next; next = todo.shift()) {
          const { name, p } = next;
          if (await merkle.isBuilt(name, p)) continue;
          const empty = await isEmpty(entriesOf(db, name, p));
          if (empty && await merkle.markBuiltIfEmpty(name, p)) continue;
          await merkle.rebuild(name, p, entriesOf(db, name, p));
          built++;
        }
      }));
      if (built > 0) {
        log("remise::table", "info", `built the anti-entropy index of ${built} table partitions`);
      }
      return built;
    },
  };
}

async function isEmpty(items: AsyncIterable<unknown>): Promise<boolean> {
  for await (const _ of items) return false;
  return true;
}

async function* entriesOf(db: DbStore, table: string, partition: number) {
  try {
    for await (const { key, value } of db.list({ prefix: ["t", table, partition] })) {
      yield { pk: key[3] as string, sk: key[4] as string, entry: value };
    }
  } catch (e) {
    throw new Error(`Cannot read table ${table} partition ${partition}: ${errorMessage(e)}`);
  }
}

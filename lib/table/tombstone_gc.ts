/**
 * Collects tombstones (entries that only record a deletion) once every
 * replica has the same tombstone: deleting it earlier could let a replica
 * that missed the deletion bring the deleted data back.
 */
import type { DbStore } from "../db/db.ts";
import type { Replication } from "../rpc/replication.ts";
import { PARTITION_COUNT } from "../rpc/layout_assignment.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { type StoredEntry, Table } from "./table.ts";

/** Candidates checked with the replicas per batch. */
const TOMBSTONE_GC_BATCH = 100;

export interface TombstoneGcOptions {
  /** A tombstone younger than this is kept (lets late replicas receive it first). */
  delayMs: number;
  nowMs: () => number;
  /** Aborted when the node stops: the pass ends at the next entry. */
  signal?: AbortSignal;
}

/** One pass over this node's partitions; returns how many tombstones were removed everywhere. */
export async function collectTombstones(
  // deno-lint-ignore no-explicit-any
  tables: Table<any>[],
  db: DbStore,
  replication: Replication,
  options: TombstoneGcOptions,
): Promise<number> {
  let removed = 0;
  for (const table of tables) {
    const schema = table.schema;
    if (!schema.isTombstone || !schema.tombstoneSinceMs) continue;
    for (let p = 0; p < PARTITION_COUNT; p++) {
      if (!replication.storesPartition(p)) continue;
      let batch: unknown[] = [];
      const flush = async () => {
        removed += await removeEverywhere(table, replication, p, batch, options.signal);
        batch = [];
      };
      for await (
        const { value } of db.list<StoredEntry<unknown>>({ prefix: ["t", schema.name, p] })
      ) {
        if (options.signal?.aborted) return removed;
        const entry = value.entry;
        if (
          !schema.isTombstone(entry) ||
          schema.tombstoneSinceMs(entry) + options.delayMs > options.nowMs()
        ) continue;
        batch.push(entry);
        if (batch.length >= TOMBSTONE_GC_BATCH) await flush();
      }
      if (batch.length > 0) await flush();
    }
  }
  return removed;
}

async function removeEverywhere(
  table: Table<unknown>,
  replication: Replication,
  partition: number,
  entries: unknown[],
  signal: AbortSignal | undefined,
) {
  const replicas = [...new Set(replication.writeSets(partition).flat())];
  const path = `table/${table.schema.name}`;
  let removed = 0;
  for (const entry of entries) {
    if (signal?.aborted) break;
    const pk = table.schema.partitionKey(entry);
    const sk = table.schema.sortKey(entry);
    const fingerprint = Table.fingerprint(entry);
    try {
      const copies = await Promise.all(
        replicas.map(async (node) =>
          ((await replication.call(node, `${path}/get`, { body: { pk, sk } }, {
            priority: "background",
          }))
            .body as { entry: unknown }).entry
        ),
      );
      // Only when every replica answers with this very tombstone.
      if (!copies.every((c) => c != null && Table.fingerprint(c) === fingerprint)) continue;
      await Promise.all(
        replicas.map((node) =>
          replication.call(node, `${path}/delete-if`, { body: { pk, sk, fingerprint } }, {
            priority: "background",
          })
        ),
      );
      removed++;
    } catch (e) {
      log(
        "remise::table",
        "debug",
        `tombstone ${table.schema.name}/${pk}/${sk} kept: ${errorMessage(e)}`,
      );
    }
  }
  return removed;
}

/**
 * Hands over the table entries of partitions this node no longer holds
 * (after a layout change took them elsewhere): each batch is merged into
 * every replica the layout names, then this node's copies are deleted if
 * unchanged. Kept, they would go stale; and should the partition come back
 * here, anti-entropy would bring back what was deleted meanwhile (its
 * tombstones collected) from these copies.
 *
 * A replica that cannot be reached keeps the batch here until a later pass.
 */
import type { DbStore } from "../db/db.ts";
import type { Replication } from "../rpc/replication.ts";
import { PARTITION_COUNT } from "../rpc/layout_assignment.ts";
import { errorMessage } from "../util/errors.ts";
import type { StoredEntry, Table } from "./table.ts";

/** Entries merged into the replicas per call. */
const HANDOVER_BATCH_ENTRIES = 100;

export interface HandoverResult {
  /** Entries the replicas received and this node no longer has. */
  handedOver: number;
  /**
   * Partitions whose entries stay here until a later pass: a replica could not
   * be reached, or an entry changed while it was handed over.
   */
  partitionsKept: number;
  /** Why the first partition kept could not be handed over, if a replica failed. */
  firstFailure?: string;
}

/** One pass over every table's partitions that this node stores entries of but does not hold. */
export async function handOverPartitions(
  // deno-lint-ignore no-explicit-any
  tables: Table<any>[],
  db: DbStore,
  replication: Replication,
  /** Merges stored entries (as the table stores them) into a replica. */
  putEntries: (node: string, table: string, stored: unknown[]) => Promise<void>,
): Promise<HandoverResult> {
  const result: HandoverResult = { handedOver: 0, partitionsKept: 0 };
  for (const table of tables) {
    const name = table.schema.name;
    for (let p = 0; p < PARTITION_COUNT; p++) {
      if (replication.storesPartition(p)) continue;
      const replicas = [...new Set(replication.writeSets(p).flat())];
      // No layout yet (a new cluster): nowhere to hand over to.
      if (replicas.length === 0) continue;
      try {
        const { handedOver, changed } = await handOverPartition(table, db, p, replicas, putEntries);
        result.handedOver += handedOver;
        if (changed > 0) result.partitionsKept++;
      } catch (e) {
        result.partitionsKept++;
        result.firstFailure ??= `table ${name} partition ${p}: ${errorMessage(e)}`;
      }
    }
  }
  return result;
}

async function handOverPartition(
  table: Table<unknown>,
  db: DbStore,
  partition: number,
  replicas: string[],
  putEntries: (node: string, table: string, stored: unknown[]) => Promise<void>,
): Promise<{ handedOver: number; changed: number }> {
  const name = table.schema.name;
  let handedOver = 0;
  let changed = 0;
  let batch: StoredEntry<unknown>[] = [];
  const flush = async () => {
    // Every replica merges the batch before any copy here goes.
    await Promise.all(replicas.map((node) => putEntries(node, name, batch)));
    for (const stored of batch) {
      if (await table.deleteHandedOver(stored)) handedOver++;
      else changed++;
    }
    batch = [];
  };
  for await (const { value } of db.list<StoredEntry<unknown>>({ prefix: ["t", name, partition] })) {
    batch.push(value);
    if (batch.length >= HANDOVER_BATCH_ENTRIES) await flush();
  }
  if (batch.length > 0) await flush();
  return { handedOver, changed };
}

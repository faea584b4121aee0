/**
 * The block_ref table: partition = block hash, sort key = data id. Its
 * update hook keeps the block manager's reference counts in the same local
 * transaction. A deleted reference is a tombstone, collected once every
 * replica has it.
 */
import type { TableSchema } from "../table/schema.ts";
import { BlockManager } from "../block/block_manager.ts";
import { stableMax } from "../util/crdt.ts";

export interface BlockRef {
  hash: string;
  dataId: string;
  deleted: boolean;
  /** When it was deleted (its version entry's deletion time; absent before 2026-11). */
  deletedMs?: number;
}

export function blockRefSchema(blocks: BlockManager): TableSchema<BlockRef> {
  return {
    name: "block_ref",
    formatVersion: 1,
    partitionKey: (r) => r.hash,
    sortKey: (r) => r.dataId,
    // Deletion wins; two deletions keep one of their times, the same on every replica.
    merge: (a, b) => (a.deleted !== b.deleted ? (a.deleted ? a : b) : stableMax(a, b)),
    isTombstone: (r) => r.deleted,
    tombstoneSinceMs: (r) => r.deletedMs ?? 0,
    lockKey: (r) => BlockManager.lockKey(r.hash),
    async updated(old, next, tx) {
      const wasLive = old !== undefined && !old.deleted;
      const isLive = !next.deleted;
      if (wasLive !== isLive) await blocks.changeRefcount(next.hash, isLive ? 1 : -1, tx);
    },
    async handedOver(ref, tx) {
      if (!ref.deleted) await blocks.changeRefcount(ref.hash, -1, tx);
    },
  };
}

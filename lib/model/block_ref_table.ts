/**
 * The block_ref table: partition = block hash, sort key = data id. Its
 * update hook keeps the block manager's reference counts in the same local
 * transaction.
 */
import type { TableSchema } from "../table/schema.ts";
import { BlockManager } from "../block/block_manager.ts";

export interface BlockRef {
  hash: string;
  dataId: string;
  deleted: boolean;
}

export function blockRefSchema(blocks: BlockManager): TableSchema<BlockRef> {
  return {
    name: "block_ref",
    formatVersion: 1,
    partitionKey: (r) => r.hash,
    sortKey: (r) => r.dataId,
    merge: (a, b) => (a.deleted || !b.deleted ? a : b),
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

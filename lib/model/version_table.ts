/**
 * The version table: partition = data id (one per uploaded object or part),
 * sort key = the block's offset; one entry per block, and a marker once the
 * data is released. Entries only ever become deleted, which releases their
 * block references; a deleted entry is a tombstone, collected once every
 * replica has it.
 */
import type { TableSchema } from "../table/schema.ts";
import { stableMax } from "../util/crdt.ts";

export interface VersionBlock {
  dataId: string;
  offset: number;
  hash: string;
  size: number;
  /**
   * CRC-32 of the block, what a read checks it against (a SHA-256 costs 30
   * times more); entries written before it existed lack it and are checked by
   * their hash.
   */
  crc32?: number;
  deleted: boolean;
  /** When it was deleted (entries deleted before 2026-11 lack it, and count as long deleted). */
  deletedMs?: number;
}

/** Offsets are zero-padded so that string order is numeric order. */
export function offsetSortKey(offset: number): string {
  return offset.toString().padStart(16, "0");
}

/** The offset of a data id's released marker: past every block's, and sorted after them. */
const RELEASED_OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * The entry that marks a data id released (a tombstone like its blocks'):
 * each replica that stores it marks deleted the block entries it holds, and
 * those it receives later (see TableSchema.partitionEnd).
 */
export function releasedMarker(dataId: string, deletedMs: number): VersionBlock {
  return { dataId, offset: RELEASED_OFFSET, hash: "", size: 0, deleted: true, deletedMs };
}

export function isReleasedMarker(v: VersionBlock): boolean {
  return v.offset === RELEASED_OFFSET;
}

export function versionSchema(
  updated?: TableSchema<VersionBlock>["updated"],
): TableSchema<VersionBlock> {
  return {
    name: "version",
    formatVersion: 1,
    partitionKey: (v) => v.dataId,
    sortKey: (v) => offsetSortKey(v.offset),
    // Deletion wins; otherwise both copies describe the same block.
    merge: (
      a,
      b,
    ) => (a.deleted !== b.deleted ? (a.deleted ? a : b) : stableMax(a, b)),
    isTombstone: (v) => v.deleted,
    // Ended as of the marker's time, so that replicas ending a block apart write the same tombstone.
    partitionEnd: {
      sortKey: offsetSortKey(RELEASED_OFFSET),
      end: (v, marker) => (v.deleted ? v : { ...v, deleted: true, deletedMs: marker.deletedMs }),
    },
    tombstoneSinceMs: (v) => v.deletedMs ?? 0,
    updated,
  };
}

import { sha256Hex } from "../util/hash.ts";

/** The partition (0..255) of a partition key: first byte of its SHA-256. */
export function partitionOfKey(partitionKey: string): number {
  return parseInt(sha256Hex(partitionKey).slice(0, 2), 16);
}

/**
 * The size of a key as Deno KV stores it, which it limits to 2,048 bytes:
 * reading a larger one fails (`Key too large for read`) rather than finding
 * nothing. Request input makes such keys (a bucket name in a Host header, an
 * upload id), so the store answers that they are absent: a key too large to
 * be written cannot be there.
 */
import type { DbKey, DbKeyPart } from "./db.ts";

export const KV_KEY_MAX_BYTES = 2048;

const utf8 = new TextEncoder();

/**
 * Bytes of a part in Deno KV's key encoding (FoundationDB's tuple layer:
 * type, value, zero bytes escaped to two). A string's are counted exactly,
 * or at most (each UTF-16 unit is at most 3 bytes of UTF-8, U+0000 2 once
 * escaped) so that usual keys cost no encoding.
 */
function partBytes(part: DbKeyPart, stringAtMost: boolean): number {
  if (typeof part === "string") {
    return stringAtMost ? part.length * 3 + 2 : utf8.encode(part).byteLength + zeroCount(part) + 2;
  }
  if (part instanceof Uint8Array) return part.byteLength + part.filter((b) => b === 0).length + 2;
  if (typeof part === "number") return 9;
  if (typeof part === "bigint") return Math.ceil(part.toString(16).length / 2) + 2;
  return 1;
}

function zeroCount(text: string): number {
  let count = 0;
  for (let i = text.indexOf("\u0000"); i >= 0; i = text.indexOf("\u0000", i + 1)) count++;
  return count;
}

/** Whether `key` is larger than Deno KV allows. */
export function keyTooLarge(key: DbKey): boolean {
  let atMost = 0;
  for (const part of key) atMost += partBytes(part, true);
  if (atMost <= KV_KEY_MAX_BYTES) return false;
  let exact = 0;
  for (const part of key) exact += partBytes(part, false);
  return exact > KV_KEY_MAX_BYTES;
}

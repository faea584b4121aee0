import { OBJECT_KEY_MAX_BYTES } from "./limits.ts";

/**
 * String order by UTF-8 bytes (S3's key order, and Deno KV's), without
 * encoding: UTF-16 code units order the same way except that surrogates
 * (astral characters) must sort after U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca >= 0xd800 && cb >= 0xd800) {
      const surrogateA = ca <= 0xdfff;
      const surrogateB = cb <= 0xdfff;
      if (surrogateA !== surrogateB) return surrogateA ? 1 : -1;
    }
    return ca - cb;
  }
  return a.length - b.length;
}

/** Whether `key` is over S3's 1,024 bytes of UTF-8 (no stored key is). */
export function objectKeyTooLong(key: string): boolean {
  return utf8Prefix(key, OBJECT_KEY_MAX_BYTES) !== key;
}

/** The longest start of `text` that is at most `maxBytes` of UTF-8, cut between characters. */
export function utf8Prefix(text: string, maxBytes: number): string {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most text needs no counting.
  if (text.length * 3 <= maxBytes) return text;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (bytes + size > maxBytes) return text.slice(0, i);
    bytes += size;
    if (pair) i++;
  }
  return text;
}

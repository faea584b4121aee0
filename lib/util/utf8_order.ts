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

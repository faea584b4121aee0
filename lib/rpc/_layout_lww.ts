/**
 * Last-writer-wins registers for the staged changes of the cluster layout.
 *
 * The same registers as `lib/table/crdt.ts` (same shape, same tie-breaking),
 * kept here because `rpc` sits below `table` and layers only look down. Should
 * these primitives move to `lib/util`, both folders can import them from there.
 *
 * @module
 */

/** Last-writer-wins register: the value with the greatest timestamp wins. */
export interface Lww<T> {
  t: number;
  v: T;
}

export function lww<T>(t: number, v: T): Lww<T> {
  return { t, v };
}

/** Merges two registers; equal timestamps are broken by the value's serialization, so merge is commutative. */
export function mergeLww<T>(a: Lww<T>, b: Lww<T>): Lww<T> {
  if (a.t !== b.t) return a.t > b.t ? a : b;
  return stableString(a.v) >= stableString(b.v) ? a : b;
}

/** Merges two maps of registers key by key. */
export function mergeLwwMap<T>(
  a: Record<string, Lww<T>>,
  b: Record<string, Lww<T>>,
): Record<string, Lww<T>> {
  const out: Record<string, Lww<T>> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Object.hasOwn(out, k) ? mergeLww(out[k], v) : v;
  return out;
}

/** A deterministic serialization (sorted object keys) for tie-breaking and digests. */
export function stableString(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return v;
  });
}

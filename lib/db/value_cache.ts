/**
 * The stored values (the encoded bytes, never decoded objects, so callers may
 * change what they read) of keys this node wrote recently, and keys found
 * absent: bounded in bytes, least recently used out.
 *
 * Writes fill it, reads do not: reads that cycle over more keys than it holds
 * (a listing's worth of GETs) would only churn it. A PUT reads its key twice
 * (for its timestamp, then to merge) and a GET often follows a recent PUT.
 *
 * It stays exact because the server process is the only writer of its
 * metadata store: every commit records what it wrote here once durable. A
 * read from the store that was in flight while a commit wrote its key may
 * return the older state, so such a read records nothing.
 */
export class ValueCache {
  readonly #values = new Map<string, Uint8Array | null>();
  #bytes = 0;
  /** Reads from the store in flight, by key id; `overtaken` once a commit wrote the key. */
  readonly #reading = new Map<string, { count: number; overtaken: boolean }>();

  /** Values larger than a 64th of the budget are not kept (they would push out many small ones). */
  constructor(private readonly maxBytes: number) {}

  /** The stored value; null when the key is known absent; undefined when not cached. */
  get(id: string): Uint8Array | null | undefined {
    const value = this.#values.get(id);
    if (value !== undefined) {
      // Most recently used last.
      this.#values.delete(id);
      this.#values.set(id, value);
    }
    return value;
  }

  /**
   * Marks a read from the store starting; call the function returned with
   * what it read (undefined when it failed): an absence is recorded if still right.
   */
  beginRead(id: string): (read: Uint8Array | null | undefined) => void {
    let reading = this.#reading.get(id);
    if (reading === undefined) {
      reading = { count: 0, overtaken: false };
      this.#reading.set(id, reading);
    }
    reading.count++;
    const state = reading;
    return (read) => {
      if (--state.count === 0) this.#reading.delete(id);
      if (read === null && !state.overtaken) this.#put(id, null);
    };
  }

  /** Records a committed write: the key's new stored value, or null when deleted. */
  written(id: string, value: Uint8Array | null): void {
    const reading = this.#reading.get(id);
    if (reading !== undefined) reading.overtaken = true;
    this.#put(id, value);
  }

  #put(id: string, value: Uint8Array | null): void {
    const old = this.#values.get(id);
    if (old !== undefined) {
      this.#bytes -= costOf(id, old);
      this.#values.delete(id);
    }
    const cost = costOf(id, value);
    if (cost > this.maxBytes / 64) return;
    this.#values.set(id, value);
    this.#bytes += cost;
    for (const [oldest, v] of this.#values) {
      if (this.#bytes <= this.maxBytes) break;
      this.#values.delete(oldest);
      this.#bytes -= costOf(oldest, v);
    }
  }
}

/** Bytes an entry holds: its value, its key (two bytes a character) and the map's own share. */
function costOf(id: string, value: Uint8Array | null): number {
  return (value?.byteLength ?? 0) + id.length * 2 + 80;
}

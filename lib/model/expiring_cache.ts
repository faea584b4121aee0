/**
 * Values looked up by key and reused for a while: the request path's access
 * keys and buckets, each otherwise a quorum read in a cluster.
 *
 * `clear` also voids the lookups in flight: a lookup that began before a
 * change may have read the value from before it, and is not kept.
 */
export class ExpiringCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  /** Counts `clear` calls: a lookup is kept only if none came while it ran. */
  #generation = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The value of `key`, from the cache or from `load` (an undefined value is not kept). */
  async get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const now = this.nowMs();
    const cached = this.#entries.get(key);
    if (cached && cached.until > now) return cached.value;
    const generation = this.#generation;
    const value = await load();
    if (value === undefined || generation !== this.#generation) return value;
    if (this.#entries.size >= this.maxEntries) this.#entries.clear();
    this.#entries.set(key, { value, until: now + this.ttlMs });
    return value;
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }
}

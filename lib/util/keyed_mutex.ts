/** Mutual exclusion per string key, for read-modify-write of one metadata entry. */
export class KeyedMutex {
  #tails = new Map<string, Promise<void>>();

  /** Waits for `key` and returns the function that releases it. */
  async acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => release = resolve);
    const tail = previous ? previous.then(() => mine) : mine;
    this.#tails.set(key, tail);
    if (previous) await previous;
    return () => {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /** Acquires several keys in a fixed order, so that two callers never deadlock. */
  async acquireAll(keys: Iterable<string>): Promise<() => void> {
    const sorted = [...new Set(keys)].sort();
    const releases: (() => void)[] = [];
    for (const key of sorted) releases.push(await this.acquire(key));
    return () => releases.reverse().forEach((r) => r());
  }

  get size(): number {
    return this.#tails.size;
  }
}

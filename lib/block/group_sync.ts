/**
 * Group fsync. On ext4 (and most journaling file systems) an fsync commits
 * the journal and flushes the disk cache: a fixed cost of ~2.5 ms of kernel
 * time per call on the development VM, more than writing 1 MiB. Concurrent
 * fsyncs share one journal commit, so callers here join a group: the first
 * caller syncs at once, those arriving meanwhile are synced together next.
 */
export class GroupSync<T> {
  #queued: { target: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #running = false;

  /** `syncOne` makes one target durable; the targets of a group are synced concurrently. */
  constructor(
    private readonly syncOne: (target: T) => Promise<void>,
    private readonly keyOf: (target: T) => unknown = (t) => t,
  ) {}

  /** Resolves once `target` is durable. */
  sync(target: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ target, resolve, reject });
      if (!this.#running) this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queued.length > 0) {
        const group = this.#queued;
        this.#queued = [];
        // Targets with the same key (one directory) are synced once per group.
        const byKey = new Map<unknown, Promise<void>>();
        for (const { target } of group) {
          const key = this.keyOf(target);
          if (!byKey.has(key)) byKey.set(key, this.syncOne(target));
        }
        await Promise.all(group.map(async (waiter) => {
          try {
            await byKey.get(this.keyOf(waiter.target));
            waiter.resolve();
          } catch (e) {
            waiter.reject(e);
          }
        }));
      }
    } finally {
      this.#running = false;
    }
  }
}

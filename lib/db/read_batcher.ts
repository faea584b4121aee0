/**
 * Point reads of Deno KV, gathered into `getMany` batches while the read
 * connections are busy. On its own, a `get` costs the main thread ~19 us (an
 * op, a promise, a wakeup); within a `getMany` of ten, ~7 us a key. Each
 * connection serves one batch at a time (Deno KV serves a connection's
 * requests one by one anyway): a read finding one idle leaves at once, so a
 * lone read waits for nothing; under load, reads queued meanwhile leave
 * together.
 */
import { KV_GET_MANY_MAX } from "../util/limits.ts";

interface QueuedRead {
  key: Deno.KvKey;
  resolve: (value: Uint8Array | null) => void;
  reject: (e: unknown) => void;
}

export class ReadBatcher {
  #queue: QueuedRead[] = [];
  #inFlight = 0;
  #next = 0;

  constructor(private readonly connections: readonly Deno.Kv[]) {}

  /** The stored bytes of `key`, or null when it is absent. */
  get(key: Deno.KvKey): Promise<Uint8Array | null> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ key, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.connections.length) {
      const batch = this.#queue.splice(0, KV_GET_MANY_MAX);
      const kv = this.connections[this.#next++ % this.connections.length];
      this.#inFlight++;
      this.#read(kv, batch);
    }
  }

  async #read(kv: Deno.Kv, batch: QueuedRead[]): Promise<void> {
    let results: PromiseSettledResult<Uint8Array | null>[];
    try {
      const entries = batch.length === 1
        ? [await kv.get<Uint8Array>(batch[0].key)]
        : await kv.getMany<Uint8Array[]>(batch.map((r) => r.key));
      results = entries.map((e) => ({ status: "fulfilled", value: e.value }));
    } catch {
      // One read the engine refuses (a key over its size limit) fails the
      // whole getMany: each read of the batch is then tried alone, so that
      // it fails only its own caller.
      results = await Promise.allSettled(
        batch.map(async (r) => (await kv.get<Uint8Array>(r.key)).value),
      );
    }
    // The next batch leaves before these readers resume.
    this.#inFlight--;
    this.#dispatch();
    batch.forEach((r, i) => {
      const result = results[i];
      if (result.status === "fulfilled") r.resolve(result.value);
      else r.reject(result.reason);
    });
  }
}

/**
 * Hashing of block-sized data, on the calling thread or on worker threads.
 *
 * MD5 and SHA-256 of large objects are most of a request thread's work (MD5
 * runs at ~600 MiB/s, SHA-256 at ~1.7 GiB/s on one core here). The server
 * hashes blocks on a small pool of workers so that the request thread only
 * moves bytes: a block's buffer is transferred to a worker and back (no copy;
 * SharedArrayBuffers were tried, but a worker that seldom collects garbage
 * keeps them alive: +250 MiB RSS with 4 uploads). An object's MD5 is a
 * session on one worker, fed blocks in order; block SHA-256s go to whichever
 * worker has the least queued, so the MD5 of a block and the SHA-256 of the
 * one before run side by side.
 *
 * `inlineHashing` is the same interface on the calling thread (tests, tools).
 */
import { createHash } from "node:crypto";
import { wrapError } from "./errors.ts";

/**
 * An MD5 fed blocks in order. Hashing may move the bytes away: use the ones
 * a call resolves to, not the ones given.
 */
export interface OrderedMd5 {
  /** Adds the next bytes; resolves to them once hashed. */
  update(data: Uint8Array): Promise<Uint8Array>;
  digest(): Promise<Uint8Array>;
  /** Forgets the session (an upload that failed). */
  abandon(): void;
}

export interface BlockHashing {
  /** The SHA-256 of `data` in hex, and the data (see OrderedMd5 on moved bytes). */
  sha256(data: Uint8Array): Promise<{ hex: string; data: Uint8Array }>;
  md5(): OrderedMd5;
  /** Stops the workers; pending hashes fail. */
  close(): void;
}

/** Hashing on the calling thread. */
export const inlineHashing: BlockHashing = {
  sha256: (data) => Promise.resolve({ hex: createHash("sha256").update(data).digest("hex"), data }),
  md5() {
    const hash = createHash("md5");
    return {
      update: (data) => {
        hash.update(data);
        return Promise.resolve(data);
      },
      digest: () => Promise.resolve(new Uint8Array(hash.digest())),
      abandon: () => {},
    };
  },
  close: () => {},
};

// The worker's code, kept as source so that it needs no file of its own next
// to a bundled or compiled executable.
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const sessions = new Map();
self.onmessage = ({ data: m }) => {
  try {
    switch (m.op) {
      case "sha256": {
        const hex = createHash("sha256").update(m.data).digest("hex");
        self.postMessage({ id: m.id, hex, data: m.data }, [m.data.buffer]);
        return;
      }
      case "md5-update": {
        let hash = sessions.get(m.session);
        if (!hash) sessions.set(m.session, hash = createHash("md5"));
        hash.update(m.data);
        self.postMessage({ id: m.id, data: m.data }, [m.data.buffer]);
        return;
      }
      case "md5-digest": {
        const hash = sessions.get(m.session) ?? createHash("md5");
        sessions.delete(m.session);
        self.postMessage({ id: m.id, digest: new Uint8Array(hash.digest()) });
        return;
      }
      case "md5-abandon":
        sessions.delete(m.session);
        return;
    }
  } catch (e) {
    if (m.id !== undefined) self.postMessage({ id: m.id, error: String(e?.message ?? e) });
  }
};
`;

interface Pending {
  resolve: (answer: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

class HashWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Set once the worker died or was stopped: calls fail at once rather than wait forever. */
  failure?: Error;

  constructor(url: string) {
    this.#worker = new Worker(url, { type: "module", name: "remise-hash" });
    this.#worker.onmessage = (e: MessageEvent) => {
      const answer = e.data as { id: number; error?: string };
      const pending = this.#pending.get(answer.id);
      if (!pending) return;
      this.#pending.delete(answer.id);
      if (answer.error !== undefined) pending.reject(new Error(answer.error));
      else pending.resolve(answer as unknown as Record<string, unknown>);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#stop(new Error(`hash worker failed: ${e.message}`));
    };
    this.#worker.onmessageerror = () =>
      this.#stop(new Error("hash worker sent an unreadable answer"));
  }

  get queued(): number {
    return this.#pending.size;
  }

  call(message: Record<string, unknown>, transfer: Transferable[] = []) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.#nextId++;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage({ ...message, id }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        reject(e);
      }
    });
  }

  send(message: Record<string, unknown>) {
    if (!this.failure) this.#worker.postMessage(message);
  }

  terminate() {
    this.#stop(new Error("hashing stopped"));
  }

  #stop(e: Error) {
    this.failure ??= e;
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(this.failure);
    this.#pending.clear();
  }
}

/** Hashing on `count` worker threads. */
export class WorkerHashing implements BlockHashing {
  readonly #workers: HashWorker[];
  readonly #url: string;
  #nextSession = 1;
  #closed = false;

  constructor(count: number) {
    this.#url = URL.createObjectURL(
      new Blob([WORKER_SOURCE], { type: "application/javascript" }),
    );
    this.#workers = Array.from({ length: Math.max(1, count) }, () => new HashWorker(this.#url));
  }

  /** The workers, a new one in place of any that died (the hashes it had fail; later ones go on). */
  #live(): HashWorker[] {
    if (!this.#closed) {
      this.#workers.forEach((w, i) => {
        if (w.failure) this.#workers[i] = new HashWorker(this.#url);
      });
    }
    return this.#workers;
  }

  async sha256(data: Uint8Array): Promise<{ hex: string; data: Uint8Array }> {
    const worker = this.#live().reduce((a, b) => (b.queued < a.queued ? b : a));
    try {
      const sent = movable(data);
      const answer = await worker.call({ op: "sha256", data: sent }, [sent.buffer]);
      return { hex: answer.hex as string, data: answer.data as Uint8Array };
    } catch (e) {
      throw wrapError("Cannot hash a block", e);
    }
  }

  md5(): OrderedMd5 {
    const session = this.#nextSession++;
    const workers = this.#live();
    const worker = workers[session % workers.length];
    return {
      update: async (data) => {
        try {
          const sent = movable(data);
          const answer = await worker.call({ op: "md5-update", session, data: sent }, [
            sent.buffer,
          ]);
          return answer.data as Uint8Array;
        } catch (e) {
          throw wrapError("Cannot compute the MD5 of the data", e);
        }
      },
      digest: async () => {
        try {
          return (await worker.call({ op: "md5-digest", session })).digest as Uint8Array;
        } catch (e) {
          throw wrapError("Cannot compute the MD5 of the data", e);
        }
      },
      abandon: () => worker.send({ op: "md5-abandon", session }),
    };
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    URL.revokeObjectURL(this.#url);
  }
}

/** `data` if it has its buffer to itself, else a copy that does (moving a shared buffer would take the rest away). */
function movable(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = data.buffer instanceof ArrayBuffer && data.byteOffset === 0 &&
    data.byteLength === data.buffer.byteLength;
  // new Uint8Array(view) copies; a Buffer's slice() would be a view of the same memory.
  return whole ? data as Uint8Array<ArrayBuffer> : new Uint8Array(data);
}

/** Stream helpers for the transport tests. */
import { createHash } from "node:crypto";

/** A pseudo-random 1 MiB block per seed, from which test bodies are cut. */
function patternBlock(seed: number): Uint8Array {
  const block = new Uint8Array(1 << 20);
  let s = seed * 2654435761 >>> 0 || 1;
  const words = new Uint32Array(block.buffer);
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  return block;
}

/**
 * A stream of `total` bytes in chunks of `chunkBytes` (not a multiple of the
 * frame size, to exercise splitting), hashed as it is produced.
 */
export function patternStream(
  total: number,
  seed: number,
  opts: { chunkBytes?: number; hash?: boolean } = {},
): {
  stream: ReadableStream<Uint8Array>;
  digest(): string;
  produced(): number;
  cancelled(): boolean;
} {
  const block = patternBlock(seed);
  const chunkBytes = opts.chunkBytes ?? 100_003;
  const hash = opts.hash === false ? undefined : createHash("sha256");
  let produced = 0;
  let offset = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= total) return controller.close();
      const n = Math.min(chunkBytes, total - produced, block.length - offset);
      const chunk = block.slice(offset, offset + n);
      offset = (offset + n) % (block.length - 7); // shifting windows: order errors change the hash
      produced += n;
      hash?.update(chunk);
      controller.enqueue(chunk);
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    digest: () => hash!.digest("hex"),
    produced: () => produced,
    cancelled: () => cancelled,
  };
}

/** Reads a stream to its end; returns the byte count and SHA-256. */
export async function hashStream(
  stream: ReadableStream<Uint8Array>,
  opts: { hash?: boolean } = {},
): Promise<{ bytes: number; sha256: string }> {
  const hash = opts.hash === false ? undefined : createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    hash?.update(chunk);
  }
  return { bytes, sha256: hash ? hash.digest("hex") : "" };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it is true, or fails after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/**
 * Ceilings of the machine measured by the benchmark itself: hashing speed of
 * the runtime (`node:crypto` MD5 and SHA-256, the per-byte work of a PUT) and
 * sequential disk write (with a final fsync) and read in the data directory.
 */
import { createHash } from "node:crypto";

const CHUNK_BYTES = 1024 * 1024;
const MiB = 1024 * 1024;

function randomChunk(): Uint8Array {
  const b = new Uint8Array(CHUNK_BYTES);
  for (let off = 0; off < b.length; off += 65536) {
    crypto.getRandomValues(b.subarray(off, off + 65536));
  }
  return b;
}

/** MiB/s of `node:crypto` `createHash(algorithm)` over `bytes`, fed 1 MiB at a time. */
export function hashRate(algorithm: "md5" | "sha256", bytes: number): number {
  const chunk = randomChunk();
  const h = createHash(algorithm);
  const t0 = performance.now();
  for (let off = 0; off < bytes; off += CHUNK_BYTES) h.update(chunk);
  h.digest();
  return bytes / MiB / ((performance.now() - t0) / 1000);
}

export interface DiskCeiling {
  writeMiBps: number;
  readMiBps: number;
  bytes: number;
  dir: string;
}

/**
 * Writes `bytes` sequentially in 1 MiB writes to a file in `dir`, fsyncs it
 * (the time includes the fsync), then reads it back and removes it. Nothing
 * is dropped from the page cache, so the read may come from memory.
 */
export async function diskRates(dir: string, bytes: number): Promise<DiskCeiling> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/bench-ceiling-${crypto.randomUUID()}.bin`;
  const chunk = randomChunk();
  try {
    const t0 = performance.now();
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    try {
      for (let off = 0; off < bytes; off += CHUNK_BYTES) {
        let w = 0;
        while (w < CHUNK_BYTES) w += await file.write(chunk.subarray(w));
      }
      await file.sync();
    } finally {
      file.close();
    }
    const writeSeconds = (performance.now() - t0) / 1000;

    const t1 = performance.now();
    const reader = await Deno.open(path, { read: true });
    let read = 0;
    try {
      for (;;) {
        const n = await reader.read(chunk);
        if (n === null) break;
        read += n;
      }
    } finally {
      reader.close();
    }
    const readSeconds = (performance.now() - t1) / 1000;
    if (read !== bytes) throw new Error(`disk ceiling: read ${read} bytes of ${bytes}`);
    return {
      writeMiBps: bytes / MiB / writeSeconds,
      readMiBps: bytes / MiB / readSeconds,
      bytes,
      dir,
    };
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

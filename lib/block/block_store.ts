/**
 * Content-addressed blocks on disk: `data_dir/blocks/ab/cd/<sha256 hex>`.
 * Writes are durable before they are acknowledged (temporary file, fsync,
 * rename, fsync of the directory); reads check the content against its hash,
 * or against its CRC-32 when the reader knows it (scrub always uses the hash).
 * This is the adapter over the file system for the block layer.
 */
import { type BlockHashing, inlineHashing } from "../util/block_hashing.ts";
import { wrapError } from "../util/errors.ts";
import { crc32 } from "../util/hash.ts";
import { GroupSync } from "./group_sync.ts";
import type { FreeSpace } from "../util/free_space.ts";

/** What a reader knows of a block besides its hash: enough for a cheap check. */
export interface BlockCheck {
  size: number;
  crc32: number;
}

/** The cheap check of a block a version entry names, when the entry has its CRC-32. */
export function blockCheck(block: { size: number; crc32?: number }): BlockCheck | undefined {
  return block.crc32 === undefined ? undefined : { size: block.size, crc32: block.crc32 };
}

/** Whether `data` passes a block's cheap check. */
export function passesCheck(data: Uint8Array, check: BlockCheck): boolean {
  return data.byteLength === check.size && crc32(data) === check.crc32;
}

/** A block whose content does not match its hash. */
export class CorruptBlockError extends Error {
  constructor(readonly hash: string, readonly path: string) {
    super(`Block ${hash} at ${path} is corrupted: its content does not match its hash`);
    this.name = "CorruptBlockError";
  }
}

export class BlockStore {
  readonly #blocksDir: string;
  readonly #tmpDir: string;
  readonly #knownDirs = new Set<string>();
  readonly #fileSyncs = new GroupSync<Deno.FsFile>((file) => file.sync());
  readonly #dirSyncs = new GroupSync<string>(syncDir);

  private constructor(
    readonly dataDir: string,
    readonly hashing: BlockHashing,
    private readonly space?: FreeSpace,
  ) {
    this.#blocksDir = `${dataDir}/blocks`;
    this.#tmpDir = `${dataDir}/tmp`;
  }

  /**
   * `hashing` checks blocks read back (and is what the layers above hash
   * blocks with); `space` refuses new blocks while the disk keeps its reserve.
   */
  static async open(
    dataDir: string,
    hashing: BlockHashing = inlineHashing,
    space?: FreeSpace,
  ): Promise<BlockStore> {
    const store = new BlockStore(dataDir, hashing, space);
    await Deno.mkdir(store.#blocksDir, { recursive: true });
    // Temporary files left by a crash are never referenced: start clean.
    await Deno.remove(store.#tmpDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(store.#tmpDir, { recursive: true });
    return store;
  }

  /** Where temporary files go (same file system as the blocks; emptied at start). */
  get tmpDir(): string {
    return this.#tmpDir;
  }

  /** Counts `bytes` about to be written to a temporary file; throws OutOfSpaceError within the reserve. */
  claimTemporary(bytes: number): void {
    this.space?.claim(bytes);
  }

  pathOf(hash: string): string {
    return `${this.#blocksDir}/${hash.slice(0, 2)}/${hash.slice(2, 4)}/${hash}`;
  }

  async has(hash: string): Promise<boolean> {
    try {
      await Deno.stat(this.pathOf(hash));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw wrapError(`Cannot check block ${hash}`, e);
    }
  }

  /**
   * Stores `data` under `hash` durably; the caller computed the hash. Throws
   * OutOfSpaceError, writing nothing, while the disk keeps its reserve.
   */
  async write(hash: string, data: Uint8Array): Promise<void> {
    this.space?.claim(data.byteLength);
    const path = this.pathOf(hash);
    const dir = path.slice(0, path.lastIndexOf("/"));
    const tmp = `${this.#tmpDir}/${hash}.${crypto.randomUUID()}`;
    try {
      if (!this.#knownDirs.has(dir)) {
        await Deno.mkdir(dir, { recursive: true });
        this.#knownDirs.add(dir);
      }
      const file = await Deno.open(tmp, { write: true, createNew: true });
      try {
        let written = 0;
        while (written < data.byteLength) written += await file.write(data.subarray(written));
        await this.#fileSyncs.sync(file);
      } finally {
        file.close();
      }
      await Deno.rename(tmp, path);
      await this.#dirSyncs.sync(dir);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      const error = wrapError(`Cannot write block ${hash} to ${path}`, e);
      this.space?.writeFailed(error);
      throw error;
    }
    this.space?.writeSucceeded();
  }

  /**
   * The block's content, checked against its CRC-32 and size when the caller
   * knows them (a read into a buffer of that size), else against its hash;
   * undefined when absent.
   */
  async read(hash: string, check?: BlockCheck): Promise<Uint8Array | undefined> {
    const path = this.pathOf(hash);
    let data: Uint8Array;
    try {
      data = check ? await readExactly(path, check.size) : await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      if (e instanceof ShortFileError) throw new CorruptBlockError(hash, path);
      throw wrapError(`Cannot read block ${hash} from ${path}`, e);
    }
    if (check) {
      if (!passesCheck(data, check)) throw new CorruptBlockError(hash, path);
      return data;
    }
    const checked = await this.hashing.sha256(data);
    if (checked.hex !== hash) throw new CorruptBlockError(hash, path);
    return checked.data;
  }

  async delete(hash: string): Promise<void> {
    try {
      await Deno.remove(this.pathOf(hash));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw wrapError(`Cannot delete block ${hash}`, e);
    }
  }

  /** Every stored block's hash (for scrub and repair). */
  async *list(): AsyncIterableIterator<string> {
    for await (const a of Deno.readDir(this.#blocksDir)) {
      if (!a.isDirectory) continue;
      for await (const b of Deno.readDir(`${this.#blocksDir}/${a.name}`)) {
        if (!b.isDirectory) continue;
        for await (const f of Deno.readDir(`${this.#blocksDir}/${a.name}/${b.name}`)) {
          if (f.isFile && /^[0-9a-f]{64}$/.test(f.name)) yield f.name;
        }
      }
    }
  }
}

/** Makes a directory's entries durable (a file created or renamed in it). */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

class ShortFileError extends Error {}

/**
 * The first `size` bytes of a file, read into one new buffer (a third of the
 * CPU of `Deno.readFile`, which sizes and grows its own); a file shorter than
 * that is a ShortFileError.
 */
async function readExactly(path: string, size: number): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    const data = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const n = await file.read(data.subarray(filled));
      if (n === null) throw new ShortFileError(`${path} has ${filled} of ${size} bytes`);
      filled += n;
    }
    return data;
  } finally {
    file.close();
  }
}

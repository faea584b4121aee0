/**
 * A file in metadata_dir that holds space for the node's next start. remise
 * keeps its reserve (`min_free_space`) free, but other programs on the disk
 * can fill it to the last byte, and SQLite then cannot even open the metadata
 * store (it needs pages for its shared-memory file): a node that does not
 * start serves nothing, and cannot be emptied through S3. At start, a
 * metadata disk with less free than the ballast gets the ballast's space
 * back, as does a running node whose metadata commit failed for want of
 * space (so that deletions can make room); the ballast is made again once
 * the disk has room past the reserve.
 *
 * @module
 */
import { join } from "node:path";
import { formatMeasuredByteSize } from "./byte_size.ts";
import { type DiskReading, readDisk } from "./free_space.ts";
import { errorMessage } from "./errors.ts";
import { log } from "./log.ts";

/** The ballast's size: a start needs ~2 MiB, deletions through S3 the rest. */
export const BALLAST_BYTES = 16 * 1024 * 1024;
const FILE = "ballast";
/** Room past reserve and ballast before the ballast is made again, so that it does not come and go. */
const ROOM_BYTES = 64 * 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;

export class Ballast {
  readonly path: string;

  constructor(
    private readonly metadataDir: string,
    /** min_free_space: a node that keeps no reserve keeps no ballast either. */
    private readonly reserve: number,
    private readonly read: (path: string) => Promise<DiskReading> = readDisk,
  ) {
    this.path = join(metadataDir, FILE);
  }

  /**
   * Before the metadata store opens: gives the ballast's space back when the
   * disk has less free than it holds. Resolves with whether it did.
   */
  async releaseIfFull(): Promise<boolean> {
    const { free } = await this.read(this.metadataDir);
    if (free >= BALLAST_BYTES) return false;
    return await this.#release(
      `the metadata disk had ${formatMeasuredByteSize(free)} free`,
      "so that the node can start",
    );
  }

  /**
   * While the node runs: a metadata commit failed for want of space, which
   * a deletion through S3 would meet too. Resolves with whether it did.
   */
  releaseAfterFailedCommit(): Promise<boolean> {
    this.#releasing ??= this.#release(
      "a metadata commit failed for want of space",
      "so that deletions can make room",
    ).finally(() => this.#releasing = undefined);
    return this.#releasing;
  }

  #releasing: Promise<boolean> | undefined;

  async #release(what: string, why: string): Promise<boolean> {
    try {
      await Deno.remove(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    log(
      "remise::disk",
      "warn",
      `${what}: ${this.path} (${formatMeasuredByteSize(BALLAST_BYTES)}) was removed ${why}. ` +
        "Make room on the disk: the ballast is made again once there is room past min_free_space.",
    );
    return true;
  }

  /**
   * Makes the ballast if it is missing (or cut short by a crash) and the disk
   * has room for it past the reserve. Resolves with whether it is there.
   */
  keep(): Promise<boolean> {
    // One at a time: a slow disk may still be writing the last check's.
    this.#keeping ??= this.#keep().finally(() => this.#keeping = undefined);
    return this.#keeping;
  }

  #keeping: Promise<boolean> | undefined;

  async #keep(): Promise<boolean> {
    if (this.reserve === 0) return false;
    const size = await Deno.stat(this.path).then((s) => s.size, () => 0);
    if (size === BALLAST_BYTES) return true;
    const { free } = await this.read(this.metadataDir);
    if (free + size < this.reserve + BALLAST_BYTES + ROOM_BYTES) return false;
    const partial = `${this.path}.partial`;
    try {
      // Written, not allocated sparse: only written blocks hold space.
      const file = await Deno.open(partial, { write: true, create: true, truncate: true });
      try {
        const chunk = new Uint8Array(CHUNK_BYTES);
        for (let done = 0; done < BALLAST_BYTES; done += CHUNK_BYTES) {
          let written = 0;
          while (written < CHUNK_BYTES) written += await file.write(chunk.subarray(written));
        }
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(partial, this.path);
      return true;
    } catch (e) {
      await Deno.remove(partial).catch(() => {});
      log("remise::disk", "warn", `cannot make ${this.path}: ${errorMessage(e)}`);
      return false;
    }
  }
}

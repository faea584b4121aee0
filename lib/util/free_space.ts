/**
 * Keeps a disk from filling up. Writes of new data stop while less than a
 * reserve (`min_free_space`) is free, so that what frees space still finds
 * room: a DELETE writes metadata (a tombstone, SQLite's journal), and a node
 * whose only disk is full could otherwise not be emptied through S3.
 *
 * Free space is read with statfs at most once a second, without waiting: the
 * bytes claimed since the last reading are subtracted from it, so a burst of
 * writes overshoots the reserve by no more than what was already in flight.
 *
 * @module
 */
import { statfs } from "node:fs/promises";
import { formatByteSize, formatMeasuredByteSize } from "./byte_size.ts";
import { errorMessage } from "./errors.ts";
import { log } from "./log.ts";

/** How long a statfs reading is trusted (with the claims made since subtracted). */
const READING_MAX_AGE_MS = 1_000;
/**
 * Free space past the reserve that shows a disk full at its last write has
 * room again (with a reserve of 0, room for a few blocks).
 */
const ROOM_AGAIN_BYTES = 64 * 1024 * 1024;

/** The free and total bytes of a file system, as an unprivileged writer sees them. */
export interface DiskReading {
  free: number;
  total: number;
}

const OUT_OF_SPACE_WORDS = "Not enough free space";

/** A write refused because its disk keeps its reserve; nothing was written. */
export class OutOfSpaceError extends Error {
  constructor(disk: string, free: number, reserve: number) {
    super(
      `${OUT_OF_SPACE_WORDS} on the ${disk} (${formatMeasuredByteSize(Math.max(0, free))} free, ` +
        `${formatByteSize(reserve)} kept free)`,
    );
    this.name = "OutOfSpaceError";
  }
}

/**
 * Whether an error, local or relayed by a peer as text, says a disk is full:
 * our refusal, the kernel's ENOSPC, or SQLite's SQLITE_FULL.
 */
export function isOutOfSpace(e: unknown): boolean {
  if (e instanceof OutOfSpaceError) return true;
  return isOutOfSpaceMessage(errorMessage(e));
}

/** isOutOfSpace for an error's text (a peer's cause in a quorum's report). */
export function isOutOfSpaceMessage(message: string): boolean {
  return message.includes(OUT_OF_SPACE_WORDS) || message.includes("No space left on device") ||
    message.includes("database or disk is full");
}

/**
 * A warning for `remise status` when a node's disk is under its reserve, so
 * that the operator learns why uploads fail before a client reports it. A
 * node alone refuses uploads; one in a cluster stores nothing new, and the
 * other replicas take its share of the writes.
 */
export function reserveWarning(
  node: string,
  disk: string,
  space: { free: number; reserve?: number } | undefined | null,
  inCluster: boolean,
): string | undefined {
  if (!space?.reserve || space.free >= space.reserve) return undefined;
  const what = disk === "data disk" ? "blocks" : "metadata entries";
  const refused = inCluster
    ? `it stores no new ${what} (writes go to the other replicas, and are refused once ` +
      `too few of them have room)`
    : "it refuses uploads";
  return `${node}: its ${disk} has ${
    formatMeasuredByteSize(Math.max(0, space.free))
  } free, less than ` +
    `its min_free_space (${formatByteSize(space.reserve)}): ${refused} ` +
    `until objects are deleted or space is added.`;
}

/**
 * A warning for `remise status` when a node's disk refused its last write (a
 * file system remounted read-only after an error, a failing disk): the other
 * replicas take the writes meanwhile, so nothing else tells the operator.
 */
export function writeErrorWarning(
  node: string,
  disk: string,
  space: { writeError?: DiskWriteError } | undefined | null,
): string | undefined {
  const failure = space?.writeError;
  if (!failure) return undefined;
  return `${node}: its ${disk} refused a write at ${new Date(failure.atMs).toISOString()} ` +
    `(${failure.message}); until it accepts writes again, they go to the other replicas ` +
    `(where there are), or fail. ` +
    `Check the disk (dmesg, mount options).`;
}

/** What a node's status says of one of its disks (null or undefined: nothing known). */
type DiskState = { free: number; reserve?: number; writeError?: DiskWriteError } | undefined | null;

/** The warnings of `remise status` about a node's data and metadata disks. */
export function diskWarnings(
  node: string,
  data: DiskState,
  metadata: DiskState,
  inCluster: boolean,
): string[] {
  const disks = [["data disk", data], ["metadata disk", metadata]] as const;
  return disks.flatMap(([disk, space]) =>
    [reserveWarning(node, disk, space, inCluster), writeErrorWarning(node, disk, space)]
      .filter((warning) => warning !== undefined)
  );
}

/**
 * Free space under which a disk counts as full when the node cannot start:
 * SQLite needs a few pages even to open its store (its shared-memory file).
 */
const FULL_DISK_BYTES = 4 * 1024 * 1024;

/**
 * `e`, which stopped the node, with what to do when a disk of its own is
 * full: SQLite says "disk I/O error" when it cannot make its shared-memory
 * file, which sounds like a failing disk. remise keeps its reserve free, but
 * other programs on the disk can fill it.
 */
export async function withFullDiskAdvice(
  e: unknown,
  dirs: { key: string; path: string }[],
  read: (path: string) => Promise<DiskReading> = readDisk,
): Promise<unknown> {
  // Directories on one file system are named together, as one disk.
  const disks = new Map<number | string, { names: string[]; free: number }>();
  for (const { key, path } of dirs) {
    const [stat, reading] = await Promise.all([
      Deno.stat(path).catch(() => undefined),
      read(path).catch(() => undefined),
    ]);
    if (reading === undefined || reading.free >= FULL_DISK_BYTES) continue;
    const disk = disks.get(stat?.dev ?? path) ?? { names: [], free: reading.free };
    disk.names.push(`${key} (${path})`);
    disks.set(stat?.dev ?? path, disk);
  }
  if (disks.size === 0) return e;
  const full = [...disks.values()].map(({ names, free }) =>
    `The disk of ${names.join(" and ")} is full (${formatMeasuredByteSize(free)} free)`
  );
  return new Error(
    `${errorMessage(e)}. ${full.join(". ")}: make room on it, then start remise again ` +
      "(remise keeps min_free_space free for itself, but other programs can fill a disk).",
    { cause: e },
  );
}

/** The free and total space of the file system holding `path`. */
export async function readDisk(path: string): Promise<DiskReading> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/** Told whether each write to a disk succeeded (FreeSpace, for `remise status`). */
export interface WriteOutcomes {
  writeFailed(error: unknown): void;
  writeSucceeded(): void;
}

/** The last write a disk refused, when it has accepted none since. */
export interface DiskWriteError {
  message: string;
  atMs: number;
}

export class FreeSpace implements WriteOutcomes {
  #reading: DiskReading | undefined;
  #writeError: DiskWriteError | undefined;
  #readAtMs = 0;
  /** Bytes claimed since the reading was taken. */
  #claimed = 0;
  #refreshing: Promise<void> | undefined;

  constructor(
    /** What the disk holds, for messages: "data disk", "metadata disk". */
    readonly disk: string,
    readonly path: string,
    /** Bytes kept free; 0 refuses nothing. */
    readonly reserve: number,
    private readonly read: (path: string) => Promise<DiskReading> = readDisk,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Reads the disk now (at start, so that the first writes are checked too). */
  async refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    await this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const claimedBefore = this.#claimed;
    const startedMs = this.nowMs();
    try {
      this.#reading = await this.read(this.path);
      // Claims made while statfs ran may or may not be in its reading: kept.
      this.#claimed -= claimedBefore;
      // A write refused for want of space is behind a disk with room again, even
      // before the next write comes: status no longer says it is full.
      if (
        this.#writeError && isOutOfSpaceMessage(this.#writeError.message) &&
        this.free! > this.reserve + ROOM_AGAIN_BYTES
      ) {
        this.#writeError = undefined;
      }
    } catch (e) {
      // Without a reading nothing is refused: the writes then meet the disk itself.
      if (this.#reading !== undefined) {
        log(
          "remise::disk",
          "warn",
          `cannot read the free space of ${this.path}: ${errorMessage(e)}`,
        );
      }
      this.#reading = undefined;
      throw e;
    } finally {
      this.#readAtMs = startedMs;
    }
  }

  /** The free bytes left once the claims since the last reading are written (undefined before one). */
  get free(): number | undefined {
    return this.#reading === undefined ? undefined : this.#reading.free - this.#claimed;
  }

  /** The last reading with the claims since subtracted, the reserve, and a write refused since the last accepted. */
  get space(): (DiskReading & { reserve: number; writeError?: DiskWriteError }) | undefined {
    const free = this.free;
    if (free === undefined) return undefined;
    const space = { free, total: this.#reading!.total, reserve: this.reserve };
    return this.#writeError ? { ...space, writeError: this.#writeError } : space;
  }

  /** A write to the disk failed (not for want of space: claim refuses those). */
  writeFailed(error: unknown): void {
    this.#writeError = { message: errorMessage(error), atMs: this.nowMs() };
  }

  /** A write to the disk succeeded: a refused one is behind it. */
  writeSucceeded(): void {
    this.#writeError = undefined;
  }

  /**
   * Counts `bytes` about to be written; throws OutOfSpaceError, counting
   * nothing, when fewer than the reserve would be left free. A failed or
   * missing reading refuses nothing (the write then meets the disk itself).
   */
  claim(bytes: number): void {
    if (this.reserve === 0) return;
    if (this.nowMs() - this.#readAtMs >= READING_MAX_AGE_MS) {
      this.refresh().catch(() => {}); // logged once, by #refresh
    }
    const free = this.free;
    if (free !== undefined && free - bytes < this.reserve) {
      throw new OutOfSpaceError(this.disk, free, this.reserve);
    }
    this.#claimed += bytes;
  }
}

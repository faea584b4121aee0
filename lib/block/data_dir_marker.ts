/**
 * A marker file in `data_dir` names the metadata store whose blocks it holds,
 * and the metadata store remembers it. A node refuses to start when the two
 * disagree: most often a data disk that was not mounted at boot, so that
 * `data_dir` is an empty directory of the system disk. Started anyway, a node
 * that runs alone would answer reads with errors and write new uploads there,
 * to be hidden once the disk is mounted again; a metadata disk left unmounted
 * would make a fresh store beside blocks it knows nothing about.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { syncDir } from "./block_store.ts";
import type { DbStore } from "../db/db.ts";
import { DirectoriesNotReadyError, errorMessage } from "../util/errors.ts";

/** The marker's name in data_dir. */
export const DATA_DIR_MARKER = "remise-data-dir";
const MARKER_KEY = ["system", "data_dir_marker"];

/**
 * Checks that `dataDir` holds the blocks of the metadata store `db`; on a
 * node's first start (or its first with this check), marks it. Throws a
 * DirectoriesNotReadyError that says what to look at otherwise.
 */
export async function checkDataDirMarker(db: DbStore, dataDir: string): Promise<void> {
  const path = join(dataDir, DATA_DIR_MARKER);
  const recorded = await db.get<string>(MARKER_KEY);
  const found = await readMarker(path);
  if (recorded !== undefined && found === recorded) return;
  if (recorded === undefined && found === undefined) {
    const id = crypto.randomUUID();
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((e) => {
      const message = `Cannot create data_dir "${dataDir}": ${errorMessage(e)}`;
      throw new DirectoriesNotReadyError(message, { cause: e });
    });
    await writeMarker(path, id);
    await db.commit([{ type: "set", key: MARKER_KEY, value: id }]);
    return;
  }
  if (recorded === undefined) {
    throw new DirectoriesNotReadyError(
      `data_dir "${dataDir}" holds the blocks of a remise store whose metadata is not in ` +
        `metadata_dir (it has no record of this data_dir): is the metadata disk mounted? ` +
        `To restore the metadata from a backup, see "Backing up metadata" in the README. ` +
        `To start a new, empty store on this data_dir anyway, delete ${path}.`,
    );
  }
  if (found === undefined) {
    throw new DirectoriesNotReadyError(
      `data_dir "${dataDir}" is not the one this node stored its blocks in (${path} is ` +
        `missing): is its disk mounted? If the data disk was replaced or emptied on purpose ` +
        `(in a cluster, the other nodes hold copies, which this node fetches again as it starts), ` +
        `mark the new one with: printf '%s\\n' ${recorded} > ${path}`,
    );
  }
  throw new DirectoriesNotReadyError(
    `data_dir "${dataDir}" holds the blocks of another remise store (${path} names ` +
      `${found}, this node's metadata ${recorded}): check data_dir and metadata_dir. If both ` +
      `are this node's, and the marker was written over (by a remise started on this data_dir ` +
      `with other metadata), mark it this node's again with: printf '%s\\n' ${recorded} > ${path}`,
  );
}

/** The id a marker names, or undefined when there is none. */
async function readMarker(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw new DirectoriesNotReadyError(`Cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Writes the marker durably (file and directory entry) before the metadata records it. */
async function writeMarker(path: string, id: string): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
  try {
    await file.write(new TextEncoder().encode(`${id}\n`));
    await file.sync();
  } finally {
    file.close();
  }
  await syncDir(dirname(path));
}

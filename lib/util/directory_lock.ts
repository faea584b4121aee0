/**
 * One remise process per directory. Two nodes on the same metadata_dir (a
 * service started twice, a copied configuration) would each believe it is
 * the only writer of the metadata store, and collect blocks the other still
 * references: the second is refused at start. The lock is an advisory
 * `flock` on a file in the directory, released by the kernel when the
 * process ends, even when it is killed.
 */
import { join } from "node:path";
import { DirectoriesNotReadyError, errorMessage } from "./errors.ts";

/** The lock file's name, in each directory a node keeps its state in. */
export const LOCK_FILE = "remise.lock";

/**
 * Locks `dir` (the directory of the configuration key `key`) for this
 * process until the returned file is closed or the process ends.
 */
export async function lockDirectory(
  dir: string,
  key: string,
  configPath: string,
): Promise<Deno.FsFile> {
  const path = join(dir, LOCK_FILE);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (e) {
    throw new DirectoriesNotReadyError(
      `Invalid configuration in ${configPath}: key "${key}": cannot open ${path}: ${
        errorMessage(e)
      }`,
      { cause: e },
    );
  }
  if (!await file.tryLock(true)) {
    file.close();
    throw new DirectoriesNotReadyError(
      `Another remise process is using ${dir} (${key} in ${configPath}): stop it first, ` +
        "or give this node directories of its own",
    );
  }
  return file;
}

/**
 * Locks `dir` as lockDirectory does if it holds anything already; leaves an
 * empty or missing one alone (nothing is written on an empty mount point).
 */
export async function lockDirectoryInUse(
  dir: string,
  key: string,
  configPath: string,
): Promise<Deno.FsFile | undefined> {
  let inUse = false;
  try {
    for await (const _ of Deno.readDir(dir)) {
      inUse = true;
      break;
    }
  } catch (e) {
    // Missing or unreadable: what starts the node after this says so.
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied)) throw e;
  }
  return inUse ? await lockDirectory(dir, key, configPath) : undefined;
}

/**
 * What a failing disk does to a node's block files (`data_dir/blocks/ab/cd/<sha256>`),
 * done on purpose by kill_restart.ts --bit-rot, and the check after it: every
 * file's content still has the hash it is named by, and every block that
 * live metadata names is there.
 */
import { createHash } from "node:crypto";

/** A bit flipped in place, the file cut short, or the file gone. */
export type Damage = "flip" | "truncate" | "delete";

/** Paths of the block files under `dataDir`; files removed during the walk are left out. */
export async function blockFiles(dataDir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string, depth: number) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        const path = `${dir}/${e.name}`;
        if (depth < 2 && e.isDirectory) await walk(path, depth + 1);
        else if (depth === 2 && e.isFile) files.push(path);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  await walk(`${dataDir}/blocks`, 0);
  return files;
}

/**
 * Damages the block file at `path` as `how` says, at a place `random` picks;
 * false when the file was gone already (collected meanwhile).
 */
export async function damageBlock(
  path: string,
  how: Damage,
  random: () => number,
): Promise<boolean> {
  try {
    if (how === "delete") {
      await Deno.remove(path);
      return true;
    }
    const data = await Deno.readFile(path);
    if (data.length === 0) return false;
    const at = Math.floor(random() * data.length);
    if (how === "flip") {
      data[at] ^= 1 << Math.floor(random() * 8);
      await Deno.writeFile(path, data);
    } else {
      await Deno.truncate(path, at);
    }
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

export interface BlockFilesReport {
  checked: number;
  /** Files whose content does not have the hash they are named by. */
  corrupt: string[];
  /** Hashes of live blocks with no file. */
  missing: string[];
}

/** Checks every block file under `dataDir`, and that each of `liveHashes` has one. */
export async function checkBlockFiles(
  dataDir: string,
  liveHashes: Iterable<string>,
): Promise<BlockFilesReport> {
  const report: BlockFilesReport = { checked: 0, corrupt: [], missing: [] };
  const present = new Set<string>();
  for (const path of await blockFiles(dataDir)) {
    const name = path.slice(path.lastIndexOf("/") + 1);
    present.add(name);
    report.checked++;
    const hash = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
    if (hash !== name) report.corrupt.push(path);
  }
  for (const hash of liveHashes) if (!present.has(hash)) report.missing.push(hash);
  return report;
}

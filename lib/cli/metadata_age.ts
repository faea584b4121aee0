/**
 * Metadata restored from an old backup, on one node of a cluster, would bring
 * back what was deleted since: the other replicas dropped those deletions'
 * records once every replica held them (the tombstone delay), and
 * anti-entropy would spread the restored entries. A node records when its
 * metadata was last current, in the store and in a file beside it (a restore
 * puts back the store, not the file); a store older than the file by more
 * than the tombstone delay is refused before the node joins its cluster.
 *
 * @module
 */
import { join } from "node:path";
import type { DbStore } from "../db/db.ts";
import { ConfigError, errorMessage } from "../util/errors.ts";

const CURRENT_AT_KEY = ["system", "metadata_current_at_ms"];
/** The file in metadata_dir that keeps the same time as the store. */
export const CURRENT_AT_FILE = "metadata-current-at";

/**
 * Refuses a metadata store older than `metadataDir`'s record of when it was
 * last current by more than `maxAgeMs`.
 */
export async function checkMetadataAge(
  db: DbStore,
  metadataDir: string,
  maxAgeMs: number,
): Promise<void> {
  const path = join(metadataDir, CURRENT_AT_FILE);
  const stored = await db.get<number>(CURRENT_AT_KEY);
  const filed = await readTime(path);
  if (stored === undefined || filed === undefined || filed - stored <= maxAgeMs) return;
  const iso = (ms: number) => new Date(ms).toISOString();
  throw new ConfigError(
    `metadata_dir "${metadataDir}" holds a metadata store last current at ${iso(stored)}, ` +
      `but this node ran until ${iso(filed)}: it was restored from an older backup. In a ` +
      `cluster, the other nodes no longer remember what was deleted since, and would get it ` +
      `back from this node. Rebuild this node from the others instead: stop it, empty ` +
      `metadata_dir and data_dir, and start it. If every node's metadata was restored from ` +
      `backups of the same time, delete ${path} to start anyway.`,
  );
}

/** Records that the metadata store is current now: the store first, then the file. */
export async function recordMetadataCurrent(
  db: DbStore,
  metadataDir: string,
  nowMs: number,
): Promise<void> {
  await db.commit([{ type: "set", key: CURRENT_AT_KEY, value: nowMs }]);
  const path = join(metadataDir, CURRENT_AT_FILE);
  const temporary = `${path}.tmp`;
  await Deno.writeTextFile(temporary, `${nowMs}\n`);
  await Deno.rename(temporary, path);
}

async function readTime(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(`Cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  const ms = Number(text.trim());
  return Number.isFinite(ms) ? ms : undefined;
}

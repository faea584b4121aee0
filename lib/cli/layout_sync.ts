/**
 * Follows layout changes on this node: when a new version appears, pulls the
 * table entries and blocks this node now holds, then declares the version
 * synced (the cluster retires older versions once every node has); when old
 * versions are retired, hands over the blocks and table entries this node no
 * longer keeps.
 */
import { currentVersion } from "../rpc/layout.ts";
import type { AntiEntropyPass } from "../table/anti_entropy.ts";
import type { System } from "../rpc/system.ts";
import type { TableSync } from "../table/table_sync.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { NodeServices } from "./node_services.ts";
import { HANDOVER_RETRY_MS, HandoverSchedule } from "./handover_schedule.ts";

/** How often the layout is checked for a change. */
const LAYOUT_SYNC_CHECK_MS = 2_000;
/** How often the resync queue is checked while waiting for the blocks queued to be fetched. */
const RESYNC_DRAIN_POLL_MS = 1_000;

/**
 * Whether a pass brought this node every acknowledged write, even if it
 * could not reach every replica (one down for good, being replaced): it must
 * have gone through every partition, and for each, the replicas it synced
 * with, itself included, must hold a read quorum of every active layout
 * version's set, which meets each write quorum of that set.
 */
export function syncedEnough(
  layout: { versions: readonly { partitions: readonly string[][] }[] },
  self: string,
  pass: Pick<AntiEntropyPass, "partitions" | "partitionsSynced" | "unsynced">,
  writeQuorum: (setSize: number) => number,
): boolean {
  const missed = new Map<number, Set<string>>();
  for (const { partition, node } of pass.unsynced) {
    const nodes = missed.get(partition) ?? new Set<string>();
    missed.set(partition, nodes.add(node));
  }
  // A pass cut short (the node stopping) left partitions out.
  if (pass.partitionsSynced + missed.size < pass.partitions) return false;
  for (const [partition, nodes] of missed) {
    for (const version of layout.versions) {
      const set = version.partitions[partition] ?? [];
      const reached = set.filter((id) => id === self || !nodes.has(id)).length;
      if (set.length > 0 && reached < set.length - writeQuorum(set.length) + 1) return false;
    }
  }
  return true;
}

export function startLayoutSync(
  system: System,
  tableSync: TableSync,
  services: NodeServices,
  writeQuorum: (setSize: number) => number,
): () => void {
  let running = false;
  let knownVersions = system.layout.versions.map((v) => v.version).join(",");
  // Soon after a start, a handover an earlier run left unfinished goes on.
  const schedule = new HandoverSchedule();
  tableSync.onEntriesNotHeld(() => schedule.entriesNotHeldArrived());
  // A handover that fails does not hold up the sync of a new layout version.
  const handOver = async () => {
    const passEnded = schedule.passStarted();
    try {
      const { handedOver, partitionsKept, firstFailure } = await tableSync.handOver();
      if (handedOver > 0) {
        log(
          "remise::rpc",
          "info",
          `handed over ${handedOver} table entries of partitions this node no longer holds`,
        );
      }
      if (firstFailure !== undefined) {
        log(
          "remise::rpc",
          "info",
          `the entries of ${partitionsKept} partitions this node no longer holds stay here ` +
            `for now (${firstFailure}); next try in ${HANDOVER_RETRY_MS / 1000} s`,
        );
      }
      passEnded(partitionsKept);
    } catch (e) {
      passEnded(undefined);
      log("remise::rpc", "warn", `table handover failed: ${errorMessage(e)}`);
    }
  };
  const check = async () => {
    const versions = system.layout.versions.map((v) => v.version).join(",");
    const changed = versions !== knownVersions;
    knownVersions = versions;
    if (changed) {
      await services.queueBlocksToMove();
      schedule.layoutChanged();
    }
    if (schedule.isDue()) await handOver();
    const current = currentVersion(system.layout)?.version ?? 0;
    if (current === 0 || current <= system.syncedLayoutVersion) return;
    log("remise::rpc", "info", `syncing the data of layout version ${current}`);
    const pass = await tableSync.worker.runOnce();
    if (!syncedEnough(system.layout, system.nodeId, pass, writeQuorum)) {
      // Too few replicas could be compared: try again at the next check.
      log(
        "remise::rpc",
        "info",
        `layout version ${current}: ${
          new Set(pass.unsynced.map((u) => u.partition)).size
        } partitions to sync again`,
      );
      return;
    }
    await services.queueBlocksToMove();
    // The blocks queued until now; those of writes made since reach this node as they are made.
    const queuedMs = services.resyncQueue.nowMs();
    while (!(await services.resyncQueue.doneUpTo(queuedMs))) {
      if ((currentVersion(system.layout)?.version ?? 0) !== current) return;
      await new Promise((r) => setTimeout(r, RESYNC_DRAIN_POLL_MS));
    }
    if ((currentVersion(system.layout)?.version ?? 0) !== current) return;
    await system.setSyncedLayoutVersion(current);
    log("remise::rpc", "info", `this node has all the data of layout version ${current}`);
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    check().catch((e) => log("remise::rpc", "warn", `layout sync failed: ${errorMessage(e)}`))
      .finally(() => running = false);
  }, LAYOUT_SYNC_CHECK_MS);
  return () => clearInterval(timer);
}

/**
 * The background work of a node: block resync, scrub, garbage collection,
 * and the repairs an operator can start, all listed by `remise worker list`.
 */
import type { KvStore } from "../db/kv_store.ts";
import type { ValuePick } from "../db/db.ts";
import { BlockManager } from "../block/block_manager.ts";
import { ResyncQueue, ResyncWorker } from "../block/resync.ts";
import { ScrubWorker } from "../block/scrub.ts";
import type { Store } from "../model/store.ts";
import { PeriodicWorker, WorkerRegistry } from "../util/worker.ts";
import {
  ABANDONED_UPLOAD_AGE_MS,
  ABANDONED_UPLOAD_INTERVAL_MS,
  AGE_DELETIONS_FIRST_RUN_DELAY_MS,
  BLOCK_GC_INTERVAL_MS,
  ENDED_UPLOAD_CLEAR_AGE_MS,
  INTERRUPTED_UPLOAD_FIRST_RUN_DELAY_MS,
  INTERRUPTED_UPLOAD_INTERVAL_MS,
  LIFECYCLE_INTERVAL_MS,
} from "../util/limits.ts";
import { applyLifecycle } from "../model/lifecycle.ts";
import type { Bucket } from "../model/bucket_table.ts";
import { abortAbandonedUploads } from "../model/abandoned_uploads.ts";
import { abortCutOffUploads, releaseInterruptedUploads } from "../model/interrupted_uploads.ts";
import { clearEndedUploads } from "../model/ended_uploads.ts";
import type { MultipartUpload } from "../model/mpu_table.ts";
import { isSingleUploadInProgress, type ObjectEntry } from "../model/object_table.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { BlockRef } from "../model/block_ref_table.ts";
import { collectTombstones } from "../table/tombstone_gc.ts";
import { untrustedClock } from "../rpc/clock_trust.ts";
import type { VersionBlock } from "../model/version_table.ts";

import type { RepairKind } from "../api/admin/maintenance_routes.ts";

export interface NodeServices {
  registry: WorkerRegistry;
  resyncQueue: ResyncQueue;
  /** Queues every local block and every referenced block for a resync check. */
  queueAllBlocks(): Promise<string>;
  /**
   * Queues the blocks a layout change moves: those here that this node no
   * longer holds, and those it holds now that are not here. Unlike
   * `queueAllBlocks`, it reads no block file (corruption is the scrub's).
   */
  queueBlocksToMove(): Promise<string>;
  /** Queues every block when data_dir holds none while blocks are referenced (a replaced disk). */
  refillEmptyDataDir(): Promise<void>;
  /** Starts a repair in the background; returns what was started. */
  repair(kind: RepairKind): Promise<string>;
  stop(): Promise<void>;
}

/** Every entry of a table stored on this node (only `pick` of each, if given). */
async function* localEntries<T>(
  db: KvStore,
  table: string,
  pick?: ValuePick,
): AsyncIterable<T> {
  const entries = db.list<{ v: number; entry: T }>(
    { prefix: ["t", table] },
    pick ? { pick: { entry: pick } } : {},
  );
  for await (const { value } of entries) yield value.entry;
}

/** What the search for abandoned uploads reads of an object entry (not its data). */
const UPLOAD_STATES: ValuePick = {
  bucketId: true,
  key: true,
  versions: {
    uuid: true,
    timestampMs: true,
    versioned: true,
    state: { state: true, multipart: true, coordinator: true },
  },
};

/**
 * Why this node's clock may not decide what is old enough to delete now
 * (see clock_trust.ts), logged with what waits for it; undefined when it may.
 */
function clockDistrusted(store: Store, waiting: string): string | undefined {
  const distrust = untrustedClock(store.replication);
  if (distrust) log("remise::model", "warn", `${waiting}: ${distrust}`);
  return distrust;
}

export function startNodeServices(
  store: Store,
  db: KvStore,
  options: {
    /** Every live bucket (whose lifecycle rules apply). */
    buckets: () => Promise<Bucket[]>;
    antiEntropy?: () => Promise<string>;
    /** Collect tombstones every replica has (nodes of a cluster); delay and interval in ms. */
    tombstones?: { delayMs: number; intervalMs: number };
  },
): NodeServices {
  const blocks = store.blocks;
  const registry = new WorkerRegistry();
  const resyncQueue = new ResyncQueue(db, store.nowMs);
  const lock = (hash: string) => store.mutex.acquire(BlockManager.lockKey(hash));
  const resync = registry.register(
    new ResyncWorker(resyncQueue, {
      store: blocks.store,
      refcount: (hash) => blocks.refcount(hash),
      unreferenced: (hash) => blocks.trackUnrecorded(hash).then(() => {}),
      shouldStore: (hash) => blocks.shouldStore(hash),
      fetchFromPeers: (hash) => blocks.fetchFromPeers(hash),
      offloadToPeers: (hash, data) => blocks.offloadToPeers(hash, data),
      lock,
      nowMs: store.nowMs,
    }),
  );
  // A block that became referenced is fetched if it is not here; one just
  // written here needs nothing (corruption is found by reads and scrub).
  blocks.onBadLocalCopy = (hash) => {
    resyncQueue.enqueue(hash).catch((e) =>
      log("remise::block", "warn", `cannot queue block ${hash}: ${errorMessage(e)}`)
    );
  };
  blocks.onReferenced = (hash) => {
    blocks.store.has(hash).then((present) => present ? undefined : resyncQueue.enqueue(hash)).catch(
      (e) => log("remise::block", "warn", `cannot queue block ${hash}: ${errorMessage(e)}`),
    );
  };
  const scrub = registry.register(
    new ScrubWorker({ store: blocks.store, queue: resyncQueue, db, lock, nowMs: store.nowMs }),
  );
  const gc = registry.register(
    new PeriodicWorker("block garbage collection", BLOCK_GC_INTERVAL_MS, async (signal) => {
      const deleted = await blocks.collectGarbage(signal);
      return `${deleted} blocks deleted in the last run`;
    }),
  );
  const abandoned = registry.register(
    new PeriodicWorker("abandoned upload collection", ABANDONED_UPLOAD_INTERVAL_MS, async () => {
      // One scan of the node's object entries finds the few uploads in progress.
      const uploading: ObjectEntry[] = [];
      for await (const entry of localEntries<ObjectEntry>(db, "object", UPLOAD_STATES)) {
        if (entry.versions.some(isSingleUploadInProgress)) uploading.push(entry);
      }
      // Those of processes known to have ended first (another node's restart, or removal).
      const cutOff = await abortCutOffUploads(store, uploading);
      const distrust = clockDistrusted(store, "abandoned uploads are not aborted");
      const aborted = distrust
        ? 0
        : await abortAbandonedUploads(store, uploading, ABANDONED_UPLOAD_AGE_MS);
      const cleared = await clearEndedUploads(
        store,
        localEntries<MultipartUpload>(db, "mpu"),
        ENDED_UPLOAD_CLEAR_AGE_MS,
      );
      return `${cutOff.aborted} cut-off and ${aborted} abandoned uploads aborted, ${cleared} ` +
        `ended multipart uploads cleared in the last run` + (distrust ? `; ${distrust}` : "");
    }, { firstRunDelayMs: AGE_DELETIONS_FIRST_RUN_DELAY_MS }),
  );
  // Uploads left "uploading" by processes that ended (this node's earlier
  // ones above all): looked for in every local entry once after the start,
  // then those still waiting for a replica (the hourly collection looks again).
  let cutOffUploadsWaiting: ObjectEntry[] | undefined;
  const interrupted = registry.register(
    new PeriodicWorker(
      "interrupted upload collection",
      INTERRUPTED_UPLOAD_INTERVAL_MS,
      async () => {
        const released = await releaseInterruptedUploads(store);
        const cutOff = await abortCutOffUploads(
          store,
          cutOffUploadsWaiting ?? localEntries<ObjectEntry>(db, "object", UPLOAD_STATES),
        );
        cutOffUploadsWaiting = cutOff.waiting;
        // Releases of replaced objects' data that a stop or a missing quorum cut short.
        const resumed = await store.releases.resume();
        return `${released} interrupted uploads released, ${cutOff.aborted} cut-off uploads aborted, ` +
          `${resumed} releases of replaced objects' data taken up again in the last run`;
      },
      { firstRunDelayMs: INTERRUPTED_UPLOAD_FIRST_RUN_DELAY_MS },
    ),
  );
  const lifecycle = registry.register(
    new PeriodicWorker("lifecycle", LIFECYCLE_INTERVAL_MS, async () => {
      // A new cluster has no layout to read buckets from until its operator applies one.
      if (store.replication.readSet(0).length === 0) return "waiting for the cluster's layout";
      const distrust = clockDistrusted(store, "lifecycle rules are not applied");
      if (distrust) return `not applied: ${distrust}`;
      const done = await applyLifecycle(store, await options.buckets());
      return `last run: ${done.expired} objects expired, ${done.versionsDeleted} versions deleted, ` +
        `${done.aborted} multipart uploads aborted`;
    }, {
      // Which node applies a bucket's rules depends on which peers are up, which a node
      // that just started does not know yet (it takes each for down until it answers).
      firstRunDelayMs: AGE_DELETIONS_FIRST_RUN_DELAY_MS,
    }),
  );
  const workers = [resync, scrub, gc, abandoned, interrupted, lifecycle];
  if (options.tombstones) {
    const { delayMs, intervalMs } = options.tombstones;
    // Most runs find nothing new: the total keeps earlier runs' work in sight.
    let removedSinceStart = 0;
    workers.push(registry.register(
      new PeriodicWorker("tombstone collection", intervalMs, async (signal) => {
        // Their age is the margin for a node that was away, or a metadata backup restored.
        const distrust = clockDistrusted(store, "tombstones are not collected");
        if (distrust) return `not collected: ${distrust}`;
        const removed = await collectTombstones(store.tables, db, store.replication, {
          delayMs,
          nowMs: store.nowMs,
          signal,
        });
        removedSinceStart += removed;
        return `${removed} tombstones removed in the last run, ${removedSinceStart} since start`;
      }, { firstRunDelayMs: Math.min(intervalMs, AGE_DELETIONS_FIRST_RUN_DELAY_MS) }),
    ));
  }
  for (const w of workers) w.start();

  const background = (what: string, fn: () => Promise<string>) => {
    fn().then(
      (result) => log("remise::repair", "info", `repair ${what} finished: ${result}`),
      (e) => log("remise::repair", "error", `repair ${what} failed: ${errorMessage(e)}`),
    );
  };

  /**
   * A data_dir without a single block file while blocks are referenced (a
   * data disk replaced and marked again) has every block queued at start: the
   * copies come back from the other nodes now, not when read or scrubbed.
   */
  async function refillEmptyDataDir(): Promise<void> {
    for await (const _ of blocks.store.list()) return;
    for await (const _ of db.list({ prefix: ["block", "rc"] }, { limit: 1 })) {
      log(
        "remise::block",
        "warn",
        `data_dir holds no blocks: fetching every block from the other nodes`,
      );
      log("remise::block", "info", await queueAllBlocks());
      return;
    }
  }

  /** The hashes of the blocks this node has a reference count for. */
  async function* referencedBlocks(): AsyncIterableIterator<string> {
    for await (const { key } of db.list({ prefix: ["block", "rc"] })) yield key[2] as string;
  }

  async function queueAllBlocks(): Promise<string> {
    await resyncQueue.enqueueAll(blocks.store);
    const referenced = await resyncQueue.enqueueAll(referencedBlocks());
    return `every local block and ${referenced} referenced blocks queued for resync`;
  }

  async function queueBlocksToMove(): Promise<string> {
    const leaving = await resyncQueue.enqueueAll(async function* () {
      for await (const hash of blocks.store.list()) if (!blocks.shouldStore(hash)) yield hash;
    }());
    const missing = await resyncQueue.enqueueAll(async function* () {
      for await (const hash of referencedBlocks()) {
        if (blocks.shouldStore(hash) && !(await blocks.store.has(hash))) yield hash;
      }
    }());
    return `${leaving} blocks to hand over and ${missing} to fetch queued for resync`;
  }

  return {
    registry,
    resyncQueue,
    queueAllBlocks,
    queueBlocksToMove,
    refillEmptyDataDir,
    repair(kind) {
      return Promise.resolve(startRepair(kind));
    },
    async stop() {
      await registry.stopAll();
    },
  };

  function startRepair(kind: RepairKind): string {
    switch (kind) {
      case "tables":
        if (!options.antiEntropy) {
          return "This node runs alone: its tables have no other replica to compare with.";
        }
        background("tables", options.antiEntropy);
        return "Comparing every table partition with the other replicas (see `remise worker list`).";
      case "blocks":
        background("blocks", queueAllBlocks);
        return "Queued every block for a check: missing blocks are fetched, misplaced ones handed over.";
      case "scrub":
        scrub.startPass();
        return "Scrub started: every block is read and checked against its hash.";
      case "versions":
        background("versions", async () => {
          const count = await store.rederiveBlockRefs(localEntries<VersionBlock>(db, "version"));
          return `${count} version entries checked`;
        });
        return "Re-deriving the block references of every version entry on this node.";
      case "block-refs":
        background("block-refs", async () => {
          // A reference count is the number of live block_ref entries of the block.
          const counts = new Map<string, number>();
          for await (const r of localEntries<BlockRef>(db, "block_ref")) {
            counts.set(r.hash, (counts.get(r.hash) ?? 0) + (r.deleted ? 0 : 1));
          }
          let fixed = 0;
          for (const [hash, count] of counts) {
            if (await blocks.setRefcount(hash, count)) fixed++;
          }
          return `${counts.size} blocks checked, ${fixed} reference counts corrected`;
        });
        return "Recounting the references of every block on this node.";
    }
  }
}

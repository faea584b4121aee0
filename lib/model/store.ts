/**
 * The store's data: every table wired to its hooks, and the block manager.
 * Hooks propagate deletions downwards: an object version that disappears
 * releases its data, released data marks its blocks' version entries deleted,
 * and those release their block references.
 */
import type { FreeSpace } from "../util/free_space.ts";
import type { DbStore } from "../db/db.ts";
import { BlockManager } from "../block/block_manager.ts";
import { BlockBufferPool } from "../block/buffer_pool.ts";
import { DataJournal } from "./data_journal.ts";
import { ReleaseQueue, type VersionKey } from "./release_queue.ts";
import { KeyCommitLocks } from "./key_commit_locks.ts";
import type { BlockStore } from "../block/block_store.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { Semaphore } from "../util/semaphore.ts";
import { Table } from "../table/table.ts";
import { type Bucket, bucketSchema } from "./bucket_table.ts";
import { type BucketAlias, bucketAliasSchema } from "./bucket_alias_table.ts";
import { type AccessKey, keySchema } from "./key_table.ts";
import {
  isSingleUploadInProgress,
  type ObjectEntry,
  objectSchema,
  type ObjectVersion,
} from "./object_table.ts";
import {
  isReleasedMarker,
  releasedMarker,
  type VersionBlock,
  versionSchema,
} from "./version_table.ts";
import { type BlockRef, blockRefSchema } from "./block_ref_table.ts";
import { mpuSchema, type MultipartUpload, uploadDataIds } from "./mpu_table.ts";
import {
  BLOCK_BUFFER_POOL_BYTES,
  BLOCK_GC_DELAY_MS,
  BLOCKS_IN_FLIGHT_PER_NODE,
  RELEASE_CHECK_RETRY_DELAYS_MS,
  RELEASE_SETTLE_MS,
} from "../util/limits.ts";
import { LocalReplication, replicasOf, type Replication } from "../rpc/replication.ts";
import { MerkleIndex } from "../table/merkle.ts";
import type { LocalTransaction } from "../table/schema.ts";
import { lwwAfter } from "../util/crdt.ts";
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";

/** A version whose data is no longer needed: its upload was aborted, or it was deleted by id. */
function isReleased(v: ObjectVersion): boolean {
  return v.state.state === "aborted" || v.state.state === "deleted";
}

/** The block reference a version entry stands for, deleted with it. */
export function blockRefOf(v: VersionBlock): BlockRef {
  const ref: BlockRef = { hash: v.hash, dataId: v.dataId, deleted: v.deleted };
  return v.deletedMs === undefined ? ref : { ...ref, deletedMs: v.deletedMs };
}

export interface StoreOptions {
  nowMs?: () => number;
  blockSize: number;
  gcDelayMs?: number;
  /** Where entries and blocks live; a store that runs alone by default. */
  replication?: Replication;
  /** Keep per-partition Merkle summaries for anti-entropy (nodes of a cluster). */
  antiEntropy?: boolean;
  /** The metadata disk's reserve: new entries are refused below it (see Table). */
  metadataSpace?: FreeSpace;
}

export class Store {
  readonly mutex = new KeyedMutex();
  /** Commits of an object's key, one at a time from their last check to their write. */
  readonly keyCommits: KeyCommitLocks;
  /** Blocks being stored at once by all uploads together: bounds the memory uploads hold. */
  readonly blocksInFlight = new Semaphore(BLOCKS_IN_FLIGHT_PER_NODE);
  readonly nowMs: () => number;
  readonly blockSize: number;
  /** Buffers of uploads' blocks, reused (see BlockBufferPool). */
  readonly blockBuffers: BlockBufferPool;
  /** The data this node writes for uploads it coordinates (see DataJournal). */
  readonly journal: DataJournal;
  /** Releases of replaced and deleted objects' data, after their answer (see ReleaseQueue). */
  readonly releases: ReleaseQueue;
  readonly blocks: BlockManager;
  readonly buckets: Table<Bucket>;
  readonly aliases: Table<BucketAlias>;
  readonly keys: Table<AccessKey>;
  readonly objects: Table<ObjectEntry>;
  readonly versions: Table<VersionBlock>;
  readonly blockRefs: Table<BlockRef>;
  readonly uploads: Table<MultipartUpload>;
  readonly replication: Replication;
  readonly merkle?: MerkleIndex;

  constructor(readonly db: DbStore, blockStore: BlockStore, options: StoreOptions) {
    this.nowMs = options.nowMs ?? Date.now;
    const replication = this.replication = options.replication ?? new LocalReplication();
    this.journal = new DataJournal(db, this.nowMs, replication.run);
    this.releases = new ReleaseQueue(
      db,
      (version, of, fresh) => this.#releaseVersion(version, of, fresh),
      replication instanceof LocalReplication ? 0 : RELEASE_SETTLE_MS,
    );
    this.blockSize = options.blockSize;
    this.blockBuffers = new BlockBufferPool(options.blockSize, BLOCK_BUFFER_POOL_BYTES);
    const merkle = this.merkle = options.antiEntropy ? new MerkleIndex(db, this.mutex) : undefined;
    this.blocks = new BlockManager(
      blockStore,
      db,
      this.mutex,
      this.nowMs,
      options.gcDelayMs ?? BLOCK_GC_DELAY_MS,
      replication,
      this.blockBuffers,
    );
    const tableArgs = [db, this.mutex, replication, merkle, options.metadataSpace] as const;
    this.buckets = new Table(bucketSchema, ...tableArgs);
    this.aliases = new Table(bucketAliasSchema, ...tableArgs);
    this.keys = new Table(keySchema, ...tableArgs);
    this.blockRefs = new Table(blockRefSchema(this.blocks), ...tableArgs);
    // The block references of one transaction's version entries are written
    // together once it commits: concurrent writes, so that their commits group.
    // Every replica writes those of deletions; the writer of new version
    // entries writes their references itself (`recordBlocks`).
    const refsOf = new WeakMap<LocalTransaction, BlockRef[]>();
    this.versions = new Table(
      versionSchema((old, next, tx) => {
        const wasLive = old !== undefined && !old.deleted;
        if (wasLive === !next.deleted) return;
        if (!next.deleted && tx.writerDerives) return;
        let refs = refsOf.get(tx);
        if (refs === undefined) {
          refsOf.set(tx, refs = []);
          const written = refs;
          tx.afterCommit(() => this.blockRefs.insertMany(written));
        }
        refs.push(blockRefOf(next));
      }),
      ...tableArgs,
    );
    this.uploads = new Table(mpuSchema(), ...tableArgs);
    this.objects = new Table(
      objectSchema((old, next, tx) => {
        const live = new Map(next.versions.map((v) => [v.uuid, v]));
        for (const version of old?.versions ?? []) {
          const now = live.get(version.uuid);
          // A PutObject in progress that a newer version replaced goes on:
          // completed, it is newer still and takes its place again; failed,
          // it releases its data itself (putObject).
          if (now === undefined && isSingleUploadInProgress(version)) continue;
          if (now === undefined || (isReleased(now) && !isReleased(version))) {
            this.#release(tx, version, next);
          }
        }
        for (const version of next.versions) {
          const before = old?.versions.find((v) => v.uuid === version.uuid);
          if (isReleased(version) && before === undefined) this.#release(tx, version, next);
        }
      }),
      ...tableArgs,
    );
    const objects = this.objects;
    this.keyCommits = new KeyCommitLocks(replication, (bucketId) => objects.partitionOf(bucketId));
  }

  /** Every table, for anti-entropy and repairs. */
  // deno-lint-ignore no-explicit-any
  get tables(): Table<any>[] {
    return [
      this.buckets,
      this.aliases,
      this.keys,
      this.objects,
      this.versions,
      this.blockRefs,
      this.uploads,
    ];
  }

  /**
   * Records new blocks of data: their version entries, then their block
   * references, each at a write quorum. Only the writer writes the
   * references (the replicas of the version entries leave them to it): a
   * version entry that a failure leaves without them belongs to data that
   * nothing acknowledged, which is released, and a block without a live
   * reference is only collected a grace delay after it was stored.
   */
  async recordBlocks(entries: VersionBlock[]): Promise<void> {
    await this.versions.insertMany(entries, { writerDerives: true });
    await this.blockRefs.insertMany(entries.map(blockRefOf));
  }

  /**
   * Marks every block of a data id deleted, releasing its references, then
   * marks the data id released. Every replica up is read: a block entry that
   * a write cut short left on a replica a quorum read skips would otherwise
   * stay live, and spread. The marker ends the entries of replicas that were
   * down, when it reaches them, and those that arrive after it.
   */
  async releaseData(dataId: string): Promise<void> {
    const batch: VersionBlock[] = [];
    for await (const block of this.versions.scan(dataId, { everyReplicaUp: true })) {
      if (block.deleted) continue;
      batch.push({ ...block, deleted: true, deletedMs: this.nowMs() });
      if (batch.length >= 100) await this.versions.insertMany(batch.splice(0));
    }
    batch.push(releasedMarker(dataId, this.nowMs()));
    await this.versions.insertMany(batch);
  }

  /**
   * Writes again the block reference of each of `entries` (this node's
   * version entries), which follow their version entries (`repair versions`);
   * released markers stand for no block. Resolves with how many were written.
   */
  async rederiveBlockRefs(entries: AsyncIterable<VersionBlock>): Promise<number> {
    let count = 0;
    for await (const v of entries) {
      if (isReleasedMarker(v)) continue;
      await this.blockRefs.insert(blockRefOf(v));
      count++;
    }
    return count;
  }

  /**
   * Releases the data of a failed upload, which nothing names; resolves with
   * whether all of it was released (a failure is logged: the upload's notes
   * keep the rest for the journal's settling).
   */
  async releaseFailedUploadData(dataIds: string[]): Promise<boolean> {
    try {
      for (const dataId of dataIds) await this.releaseData(dataId);
      return true;
    } catch (e) {
      log("remise::model", "warn", `data of a failed upload kept for now: ${errorMessage(e)}`);
      return false;
    }
  }

  /**
   * Releases the data of an upload's parts, but not of those the object it
   * completed into holds: a part recorded late, as the upload completes or
   * after, must not take the completed object's data with it.
   */
  async releaseParts(upload: MultipartUpload, dataIds: string[]): Promise<void> {
    await this.releaseUnheld(await this.uploadVersion(upload), dataIds);
  }

  /** Releases the data of parts that `version`, the upload's object version as read, does not hold. */
  async releaseUnheld(version: ObjectVersion | undefined, dataIds: string[]): Promise<void> {
    const state = version?.state;
    const held = new Set(
      state?.state === "complete" && state.data.type === "parts"
        ? state.data.parts.map((p) => p.dataId)
        : [],
    );
    for (const dataId of dataIds) if (!held.has(dataId)) await this.releaseData(dataId);
  }

  /** The object version a multipart upload makes, as a quorum reads it; absent once gone. */
  async uploadVersion(upload: MultipartUpload): Promise<ObjectVersion | undefined> {
    const entry = await this.objects.get(upload.bucketId, upload.key);
    return entry?.versions.find((v) => v.uuid === upload.uploadId);
  }

  /**
   * Clears an ended upload's entry, once its parts are released or held by
   * its object: the entry becomes a tombstone without parts, removed at once
   * on a node that runs alone, else once every replica has it.
   */
  async clearUpload(upload: MultipartUpload): Promise<void> {
    const now = this.nowMs();
    const deleted = lwwAfter(upload.deleted, now, true);
    await this.uploads.insert({ ...upload, parts: {}, deleted, clearedMs: now });
  }

  /**
   * Releases what a version that is gone or aborted held, once `tx` commits:
   * its data after the answer where the release can be noted (see
   * ReleaseQueue), and an upload's end before it, so that a part recorded
   * from then on finds its upload ended and releases its own data
   * (recordPart).
   */
  #release(tx: LocalTransaction, version: ObjectVersion, of: VersionKey): void {
    if (!this.releases.note(tx, version, { bucketId: of.bucketId, key: of.key })) {
      tx.afterCommit(() => this.#releaseVersion(version));
    } else if (version.state.state !== "complete" && !isSingleUploadInProgress(version)) {
      tx.afterCommit(async () => void await this.endUpload(version.uuid));
    }
  }

  /**
   * Marks a multipart upload ended, if it has an entry; resolves with the
   * entry as it is once marked, holding every part recorded before: a part
   * recorded later finds the mark and releases its own data.
   */
  async endUpload(uploadId: string): Promise<MultipartUpload | undefined> {
    const end = (upload: MultipartUpload | undefined) =>
      !upload || upload.deleted.v
        ? undefined
        : { ...upload, deleted: lwwAfter(upload.deleted, this.nowMs(), true) };
    // Alone, read and marked in one step: a cleared entry is removed at once
    // here, and a mark made from a read before the clear would bring it back.
    if (await this.uploads.updateIfAlone(uploadId, "", end)) {
      return await this.uploads.get(uploadId);
    }
    const upload = await this.uploads.get(uploadId);
    const ended = end(upload);
    if (ended === undefined) return upload;
    await this.uploads.insert(ended);
    return await this.uploads.get(uploadId);
  }

  /**
   * Throws unless what replaced or deleted `version`, a complete version of
   * `of`, is held by a write quorum of the key's replicas: a copy there,
   * merged with the version, drops it or ends it. Only then does every
   * quorum read see the version gone. A write that failed may have reached
   * fewer replicas and spread later: meanwhile reads through the others
   * still give the version, and its data must be there (else they fail
   * with 500); the release is noted and tried again.
   */
  async #checkReplaced(of: VersionKey, version: ObjectVersion, fresh: boolean): Promise<void> {
    // Only a release's first try waits: one taken up again (every minute) would hold the queue.
    const delays = fresh ? RELEASE_CHECK_RETRY_DELAYS_MS : [];
    for (let attempt = 0;; attempt++) {
      const shortfall = await this.#replacedShortfall(of, version);
      if (shortfall === undefined) return;
      const delayMs = delays[attempt];
      if (delayMs === undefined) throw new Error(shortfall);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /** Why `version` may not be released yet (see #checkReplaced); undefined when it may. */
  async #replacedShortfall(of: VersionKey, version: ObjectVersion): Promise<string | undefined> {
    const partition = this.objects.partitionOf(of.bucketId);
    const copies = await this.objects.copiesOnReplicas(of.bucketId, of.key);
    // A replica without the entry may never have had it; when none has it
    // any more, the deletion was collected everywhere (on a node alone, at once).
    const collected = copies.size === replicasOf(this.replication, partition).length &&
      [...copies.values()].every((copy) => copy === undefined);
    if (collected) return undefined;
    const alone: ObjectEntry = { bucketId: of.bucketId, key: of.key, versions: [version] };
    const replaced = (copy: ObjectEntry | undefined) =>
      copy !== undefined &&
      !this.objects.schema.merge(copy, alone).versions.some((v) =>
        v.uuid === version.uuid && v.state.state === "complete"
      );
    for (const set of this.replication.writeSets(partition)) {
      const holding = set.filter((node) => replaced(copies.get(node))).length;
      const needed = this.replication.writeQuorum(set.length);
      if (holding < needed) {
        return `version ${version.uuid} of ${of.key} is still current on some replicas: what ` +
          `replaced it is on ${holding} of the ${needed} needed (a failed write may spread yet)`;
      }
    }
    return undefined;
  }

  /** Releases what a version that is gone or aborted held. */
  async #releaseVersion(version: ObjectVersion, of?: VersionKey, fresh = true): Promise<void> {
    const state = version.state;
    if (state.state === "complete") {
      if (of !== undefined) await this.#checkReplaced(of, version, fresh);
      if (state.data.type === "parts") {
        for (const part of state.data.parts) await this.releaseData(part.dataId);
      }
      return;
    }
    // Uploading, aborted, or deleted where this node never saw it complete: a
    // single upload's data id is the version's uuid;
    // a multipart upload's parts are listed in its mpu entry.
    await this.releaseData(version.uuid);
    const upload = await this.endUpload(version.uuid);
    if (upload === undefined || upload.clearedMs !== undefined) return;
    for (const dataId of uploadDataIds(upload)) await this.releaseData(dataId);
    await this.clearUpload(upload);
  }
}

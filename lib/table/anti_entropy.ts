/**
 * Anti-entropy: two replicas of a partition compare their Merkle summaries
 * (see merkle.ts) and exchange only the entries that differ, in both
 * directions. Entries are CRDTs, so after each side has merged the other's
 * differing entries both hold the same merged entries, whatever happened in
 * between.
 *
 * The exchange is transport-agnostic: a `PartitionPeer` is the local replica
 * (answered from the local store and Merkle index) or a remote one (each
 * method an RPC, which carries the timeout).
 */
import { errorMessage } from "../util/errors.ts";
import {
  ANTI_ENTROPY_BATCH_ENTRIES,
  ANTI_ENTROPY_DIGESTS_PER_CALL,
  ANTI_ENTROPY_INTERVAL_MS,
  ANTI_ENTROPY_LEAVES_CONCURRENCY,
  ANTI_ENTROPY_PARTITIONS_CONCURRENCY,
} from "../util/limits.ts";
import { log } from "../util/log.ts";
import { isOutOfSpace } from "../util/free_space.ts";
import { equalDigests, LEAF_COUNT, type LeafItem, type MerkleIndex } from "./merkle.ts";

const LOG_MODULE = "remise::table::anti_entropy";

/** What one replica of a partition answers. */
export interface PartitionPeer {
  partitionDigest(table: string, partition: number): Promise<Uint8Array>;
  /**
   * The digests of `partitions`, in their order, in one exchange; undefined
   * when the replica cannot give them together (a remise from before this
   * call), whose partitions are then compared one by one.
   */
  partitionDigests?(table: string, partitions: number[]): Promise<Uint8Array[] | undefined>;
  /** The 256 leaf digests, all zero for an empty leaf. */
  leafDigests(table: string, partition: number): Promise<Uint8Array[]>;
  leafItems(table: string, partition: number, leaf: number): Promise<LeafItem[]>;
  /**
   * The stored values (`{ v, entry }`) of these entries; an entry that no
   * longer exists is `undefined` or left out.
   */
  getEntries(table: string, keys: { pk: string; sk: string }[]): Promise<unknown[]>;
  /** Merges these stored values (as `getEntries` returns them) into the replica. */
  putEntries(table: string, entries: unknown[]): Promise<void>;
}

/**
 * The local replica as a `PartitionPeer`: summaries from the Merkle index,
 * entries from the caller (the table's stored values, and a merge of incoming
 * ones through the table's usual update path, which records them in the index).
 */
export function indexedPartitionPeer(
  index: MerkleIndex,
  entries: Pick<PartitionPeer, "getEntries" | "putEntries">,
): PartitionPeer {
  return {
    partitionDigest: (table, partition) => index.partitionDigest(table, partition),
    partitionDigests: (table, partitions) => index.partitionDigests(table, partitions),
    leafDigests: (table, partition) => index.leafDigests(table, partition),
    leafItems: async (table, partition, leaf) => {
      const items: LeafItem[] = [];
      for await (const item of index.leafItems(table, partition, leaf)) items.push(item);
      return items;
    },
    getEntries: (table, keys) => entries.getEntries(table, keys),
    putEntries: (table, stored) => entries.putEntries(table, stored),
  };
}

export interface SyncResult {
  /** Leaves whose item lists were compared (those whose digests differed). */
  leavesCompared: number;
  /** Entries sent from `local` to `remote`. */
  entriesSent: number;
  /** Entries received from `remote` into `local`. */
  entriesReceived: number;
}

/** Runs `fn` on every item with at most `concurrency` calls in flight; rejects with the first error. */
async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < items.length && !failed && !stop()) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane);
  const results = await Promise.allSettled(lanes);
  const rejected = results.find((r) => r.status === "rejected");
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
}

/** Copies the entries under `keys` from one replica to the other, in batches; returns how many were copied. */
async function copyEntries(
  from: PartitionPeer,
  to: PartitionPeer,
  table: string,
  keys: { pk: string; sk: string }[],
): Promise<number> {
  let copied = 0;
  for (let i = 0; i < keys.length; i += ANTI_ENTROPY_BATCH_ENTRIES) {
    const entries = (await from.getEntries(table, keys.slice(i, i + ANTI_ENTROPY_BATCH_ENTRIES)))
      .filter((e) => e !== undefined);
    if (entries.length === 0) continue;
    await to.putEntries(table, entries);
    copied += entries.length;
  }
  return copied;
}

function itemId(item: { pk: string; sk: string }): string {
  return JSON.stringify([item.pk, item.sk]);
}

/** Keys of the items of `from` that `to` lacks or holds with another hash. */
function differingKeys(from: LeafItem[], to: LeafItem[]): { pk: string; sk: string }[] {
  const toById = new Map(to.map((item) => [itemId(item), item.hash]));
  return from
    .filter((item) => !equalDigests(toById.get(itemId(item)), item.hash))
    .map(({ pk, sk }) => ({ pk, sk }));
}

function checkLeafDigests(leaves: Uint8Array[], side: string): void {
  if (!Array.isArray(leaves) || leaves.length !== LEAF_COUNT) {
    throw new Error(
      `The ${side} replica answered ${leaves?.length} leaf digests, not ${LEAF_COUNT}`,
    );
  }
}

/**
 * Brings two replicas of one partition of `table` to the same entries:
 * compares partition digests, then leaf digests, then the item lists of the
 * differing leaves, and copies each differing entry both ways: first the
 * remote's into `local`, then those of `local` that still differ into the
 * remote (an entry changed on one side only is then copied once when the
 * remote's is the newer, twice when the local one is).
 */
export async function syncPartition(
  local: PartitionPeer,
  remote: PartitionPeer,
  table: string,
  partition: number,
): Promise<SyncResult> {
  const result: SyncResult = { leavesCompared: 0, entriesSent: 0, entriesReceived: 0 };
  const [localRoot, remoteRoot] = await Promise.all([
    local.partitionDigest(table, partition),
    remote.partitionDigest(table, partition),
  ]);
  if (equalDigests(localRoot, remoteRoot)) return result;
  const [localLeaves, remoteLeaves] = await Promise.all([
    local.leafDigests(table, partition),
    remote.leafDigests(table, partition),
  ]);
  checkLeafDigests(localLeaves, "local");
  checkLeafDigests(remoteLeaves, "remote");
  const differing: number[] = [];
  for (let leaf = 0; leaf < LEAF_COUNT; leaf++) {
    if (!equalDigests(localLeaves[leaf], remoteLeaves[leaf])) differing.push(leaf);
  }
  await forEachBounded(differing, ANTI_ENTROPY_LEAVES_CONCURRENCY, async (leaf) => {
    const [localBefore, remoteItems] = await Promise.all([
      local.leafItems(table, partition, leaf),
      remote.leafItems(table, partition, leaf),
    ]);
    const toPull = differingKeys(remoteItems, localBefore);
    const received = await copyEntries(remote, local, table, toPull);
    // A pulled entry may now equal the remote's (the remote's was newer): list again so
    // that only the entries still different are pushed.
    const localAfter = received > 0 ? await local.leafItems(table, partition, leaf) : localBefore;
    const sent = await copyEntries(local, remote, table, differingKeys(localAfter, remoteItems));
    result.leavesCompared++;
    result.entriesReceived += received;
    result.entriesSent += sent;
  });
  return result;
}

/**
 * Which partitions of a table already agree with another replica, asked once
 * a pass for all the partitions the two share (ANTI_ENTROPY_DIGESTS_PER_CALL
 * a call): an idle cluster's pass is then a few exchanges, where one per
 * partition and table made thousands.
 */
class AgreeingPartitions {
  readonly #asked = new Map<string, Promise<Set<number> | undefined>>();

  constructor(
    private readonly local: PartitionPeer,
    private readonly peer: (nodeId: string) => PartitionPeer,
    private readonly shared: (nodeId: string) => number[],
  ) {}

  /** Whether both replicas had equal digests of the partition when first asked this pass. */
  async has(other: string, table: string, partition: number): Promise<boolean> {
    const id = `${other}\u0000${table}`;
    let agreeing = this.#asked.get(id);
    if (agreeing === undefined) {
      agreeing = this.#ask(this.peer(other), table, this.shared(other));
      this.#asked.set(id, agreeing);
    }
    return (await agreeing)?.has(partition) ?? false;
  }

  /** undefined when a side cannot answer for many partitions at once. */
  async #ask(
    remote: PartitionPeer,
    table: string,
    partitions: number[],
  ): Promise<Set<number> | undefined> {
    const local = this.local;
    if (!local.partitionDigests || !remote.partitionDigests) return undefined;
    const agreeing = new Set<number>();
    for (let i = 0; i < partitions.length; i += ANTI_ENTROPY_DIGESTS_PER_CALL) {
      const asked = partitions.slice(i, i + ANTI_ENTROPY_DIGESTS_PER_CALL);
      const [mine, theirs] = await Promise.all([
        local.partitionDigests(table, asked),
        remote.partitionDigests(table, asked),
      ]);
      if (mine === undefined || theirs === undefined) return undefined;
      if (!Array.isArray(theirs) || theirs.length !== asked.length) {
        throw new Error(
          `The remote replica answered ${theirs?.length} partition digests, not ${asked.length}`,
        );
      }
      asked.forEach((partition, j) => {
        if (equalDigests(mine[j], theirs[j])) agreeing.add(partition);
      });
    }
    return agreeing;
  }
}

export interface AntiEntropyWorkerOptions {
  /** This node's id, left out of `replicasOf`'s answer. */
  nodeId: string;
  /** Names of the tables to sync. */
  tables: readonly string[];
  /** This node's replica. */
  local: PartitionPeer;
  /** Partitions this node stores now (from the current layout). */
  partitions(): number[];
  /** Nodes storing a partition (this node may be among them). */
  replicasOf(partition: number): string[];
  /** The replica on another node. */
  peer(nodeId: string): PartitionPeer;
  /** Time between passes, jittered by ±25%; ANTI_ENTROPY_INTERVAL_MS by default. */
  intervalMs?: number;
  /** Partitions synced at once; ANTI_ENTROPY_PARTITIONS_CONCURRENCY by default. */
  partitionsConcurrency?: number;
  now?: () => number;
  random?: () => number;
}

/** What `remise worker list` shows. */
export interface AntiEntropyStatus {
  name: "anti-entropy";
  state: "idle" | "running";
  /** Clock time at which the last pass ended. */
  lastRunMs: number | undefined;
  lastRunDurationMs: number | undefined;
  /** Since start: partitions whose every table was synced with every other replica. */
  partitionsSynced: number;
  /** Since start: entries sent plus entries received. */
  entriesExchanged: number;
  /** Since start: failed (partition, table, replica) syncs. */
  errors: number;
  /** The last failed sync's message; cleared by a pass without failures. */
  lastError: string | undefined;
}

/** The outcome of one pass over the stored partitions. */
export interface AntiEntropyPass {
  partitions: number;
  partitionsSynced: number;
  leavesCompared: number;
  entriesSent: number;
  entriesReceived: number;
  /** One message per failed (partition, table, replica) sync. */
  errors: string[];
  /** The replicas of each partition that some table could not be synced with (failed, or skipped). */
  unsynced: { partition: number; node: string }[];
}

export interface RunOnceOptions {
  /** Called after each partition, for progress display. */
  onProgress?(done: number, total: number): void;
}

/**
 * Periodically syncs every partition this node stores with its other
 * replicas. A replica that fails once is skipped for the rest of the pass, so
 * a node that is down costs one timeout per pass, not one per partition.
 */
export class AntiEntropyWorker {
  readonly #options: AntiEntropyWorkerOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  /** Bumped by start and stop, so that a timer of an earlier start schedules nothing. */
  #epoch = 0;
  #stopping = false;
  #running = 0;
  /** The pass in progress or queued last; passes run one after the other. */
  #tail: Promise<unknown> = Promise.resolve();
  #status: Omit<AntiEntropyStatus, "state"> = {
    name: "anti-entropy",
    lastRunMs: undefined,
    lastRunDurationMs: undefined,
    partitionsSynced: 0,
    entriesExchanged: 0,
    errors: 0,
    lastError: undefined,
  };

  constructor(options: AntiEntropyWorkerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  status(): AntiEntropyStatus {
    return { ...this.#status, state: this.#running > 0 ? "running" : "idle" };
  }

  /** Starts the periodic passes; the first comes after a random part of the interval. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stopping = false;
    this.#epoch++;
    this.#schedule(this.#epoch, this.#interval() * this.#random());
  }

  /** Stops scheduling, ends the current pass after its partitions in flight, and waits for it. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#stopping = true;
    this.#epoch++;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#tail.catch(() => {});
  }

  /** One full pass (after the one in progress, if any): for `remise repair tables`. */
  runOnce(options: RunOnceOptions = {}): Promise<AntiEntropyPass> {
    const pass = this.#tail.catch(() => {}).then(() => this.#pass(options));
    this.#tail = pass;
    return pass;
  }

  #interval(): number {
    return this.#options.intervalMs ?? ANTI_ENTROPY_INTERVAL_MS;
  }

  #schedule(epoch: number, delayMs: number): void {
    if (epoch !== this.#epoch) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.runOnce()
        .catch((e) => log(LOG_MODULE, "error", `Anti-entropy pass failed: ${errorMessage(e)}`))
        .finally(() => this.#schedule(epoch, this.#interval() * (0.75 + 0.5 * this.#random())));
    }, delayMs);
  }

  async #pass(options: RunOnceOptions): Promise<AntiEntropyPass> {
    const { nodeId, tables, local } = this.#options;
    const started = this.#now();
    this.#running++;
    const pass: AntiEntropyPass = {
      partitions: 0,
      partitionsSynced: 0,
      leavesCompared: 0,
      entriesSent: 0,
      entriesReceived: 0,
      errors: [],
      unsynced: [],
    };
    const failedPeers = new Set<string>();
    let fullDiskReported = false;
    try {
      const partitions = [...new Set(this.#options.partitions())];
      pass.partitions = partitions.length;
      const othersOf = new Map(partitions.map((partition) => [
        partition,
        [...new Set(this.#options.replicasOf(partition))].filter((id) => id !== nodeId),
      ]));
      const agreeing = new AgreeingPartitions(
        local,
        (other) => this.#options.peer(other),
        (other) => partitions.filter((partition) => othersOf.get(partition)!.includes(other)),
      );
      let done = 0;
      const concurrency = this.#options.partitionsConcurrency ??
        ANTI_ENTROPY_PARTITIONS_CONCURRENCY;
      await forEachBounded(partitions, concurrency, async (partition) => {
        let complete = true;
        for (const other of othersOf.get(partition)!) {
          let synced = true;
          for (const table of tables) {
            if (failedPeers.has(other) || this.#stopping) {
              synced = false;
              break;
            }
            try {
              if (await agreeing.has(other, table, partition)) continue;
              const r = await syncPartition(local, this.#options.peer(other), table, partition);
              pass.leavesCompared += r.leavesCompared;
              pass.entriesSent += r.entriesSent;
              pass.entriesReceived += r.entriesReceived;
              this.#status.entriesExchanged += r.entriesSent + r.entriesReceived;
            } catch (e) {
              synced = false;
              // A full disk (here or the peer's) refuses new entries only: the
              // other partitions, whose deletions make room, are still synced
              // with that peer, and the refusal is reported once a pass.
              const fullDisk = isOutOfSpace(e);
              if (!fullDisk) failedPeers.add(other);
              const message =
                `Cannot sync partition ${partition} of table ${table} with node ${other}: ${
                  errorMessage(e)
                }`;
              if (!fullDisk || !fullDiskReported) {
                log(LOG_MODULE, "warn", message);
                pass.errors.push(message);
              }
              fullDiskReported ||= fullDisk;
              this.#status.errors++;
              this.#status.lastError = message;
            }
          }
          if (!synced) {
            complete = false;
            pass.unsynced.push({ partition, node: other });
          }
        }
        if (complete) {
          pass.partitionsSynced++;
          this.#status.partitionsSynced++;
        }
        options.onProgress?.(++done, partitions.length);
      }, () => this.#stopping);
      if (pass.errors.length === 0) this.#status.lastError = undefined;
      return pass;
    } finally {
      this.#running--;
      const ended = this.#now();
      this.#status.lastRunMs = ended;
      this.#status.lastRunDurationMs = ended - started;
    }
  }
}

/**
 * Blocks and their reference counts. A block is written once per content
 * (deduplicated by hash); the `block_ref` table's update hook changes its
 * reference count in the same local transaction. A block whose count has
 * stayed at zero for `gcDelayMs` is deleted by the garbage collector.
 *
 * Keys: `["block", "rc", hash]` -> Refcount, and `["block", "gc", sinceMs,
 * hash]` -> null for every block whose count is zero (the collector's queue).
 */
import type { DbKey, DbStore } from "../db/db.ts";
import type { KeyedMutex } from "../util/keyed_mutex.ts";
import type { LocalTransaction } from "../table/schema.ts";
import { DbTransaction } from "../table/transaction.ts";
import { type BlockCheck, type BlockStore, passesCheck } from "./block_store.ts";
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import { replicasOf, type Replication } from "../rpc/replication.ts";
import { QuorumError, quorumRead, quorumWrite } from "../rpc/quorum.ts";
import type { RpcMessage } from "../net/transport.ts";
import { AnswerRace } from "../rpc/answer_race.ts";
import { partitionOfKey } from "../table/partition.ts";
import { readBounded, readInto } from "../util/read_bounded.ts";
import { BLOCK_PUSH_BACKLOG_PER_PEER_BYTES, DEFAULT_BLOCK_SIZE_BYTES } from "../util/limits.ts";
import { BlockBufferPool } from "./buffer_pool.ts";
import { shortNodeId } from "../net/node_id.ts";
import { PushBacklog, PushSkippedError } from "./push_backlog.ts";

interface Refcount {
  count: number;
  /** When the count last became zero; null while referenced. */
  zeroSinceMs: number | null;
}

/** A block that is referenced but cannot be found. */
export class MissingBlockError extends Error {
  constructor(readonly hash: string, detail?: string) {
    super(
      detail
        ? `Block ${hash} cannot be read: ${detail}`
        : `Block ${hash} is missing from this node`,
    );
    this.name = "MissingBlockError";
  }
}

const rcKey = (hash: string): DbKey => ["block", "rc", hash];
const gcKey = (sinceMs: number, hash: string): DbKey => ["block", "gc", sinceMs, hash];

/** Largest block a peer may send: the largest block_size allowed. */
const BLOCK_TRANSFER_MAX_BYTES = 64 * 1024 * 1024;

function readAll(stream: ReadableStream<Uint8Array> | undefined, max: number): Promise<Uint8Array> {
  if (!stream) return Promise.reject(new Error("the message carries no block data"));
  return readBounded(stream, max, () => new Error(`block data over ${max} bytes`));
}

function streamOf(data: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(data);
      controller.close();
    },
  });
}

/** Blocks the collector reads and deletes at a time. */
const GC_BATCH_BLOCKS = 1000;

export class BlockManager {
  /** Uploads' block pushes to each peer (see push_backlog.ts); its metrics are on /metrics. */
  readonly pushes = new PushBacklog(BLOCK_PUSH_BACKLOG_PER_PEER_BYTES);
  /** Called after a block's reference count became positive (the block may need fetching). */
  onReferenced: (hash: string) => void = () => {};
  /** Called when this node should hold a block but could not read a good copy of it. */
  onBadLocalCopy: (hash: string) => void = () => {};

  constructor(
    readonly store: BlockStore,
    private readonly db: DbStore,
    private readonly mutex: KeyedMutex,
    private readonly nowMs: () => number,
    private readonly gcDelayMs: number,
    private readonly replication: Replication,
    /** Buffers of full blocks, shared with the node's uploads. */
    readonly buffers = new BlockBufferPool(DEFAULT_BLOCK_SIZE_BYTES, 0),
  ) {
    replication.register("block/put", async (_from, m) => {
      const { hash, check } = m.body as { hash: string; check?: BlockCheck };
      // A sender that knows the block's CRC-32 (an upload) has it checked, as
      // reads check blocks; otherwise (repairs) the hash is computed.
      if (check) return await this.#putChecked(hash, check, m.stream);
      const hashed = await this.store.hashing.sha256( // may move the bytes
        await readAll(m.stream, BLOCK_TRANSFER_MAX_BYTES),
      );
      if (hashed.hex !== hash) throw new Error(`block ${hash} arrived corrupted`);
      await this.putLocal(hash, hashed.data);
      return { body: null };
    });
    replication.register("block/get", async (from, m) => {
      const { hash, check } = m.body as { hash: string; check?: BlockCheck };
      let data: Uint8Array | undefined;
      try {
        data = await this.store.read(hash, check);
      } catch (e) {
        // The peer reads another copy; this one is repaired as a read here would have it.
        log(
          "remise::block",
          "warn",
          `block ${hash} asked by ${shortNodeId(from)}: ${errorMessage(e)}`,
        );
        if (this.shouldStore(hash)) this.onBadLocalCopy(hash);
        throw e;
      }
      if (data === undefined) {
        if (this.shouldStore(hash)) this.onBadLocalCopy(hash);
        throw new MissingBlockError(hash);
      }
      return { body: { size: data.byteLength }, stream: streamOf(data) };
    });
    replication.register("block/has", async (_from, m) => {
      const { hash } = m.body as { hash: string };
      return { body: { has: await this.store.has(hash) } };
    });
  }

  /**
   * Stores a block an upload pushed, received into a buffer of its announced
   * size: a pooled one for a full block, given back once its file is written
   * (peers receive every upload's blocks, and a buffer per block made their
   * memory grow with the blocks in flight).
   */
  async #putChecked(
    hash: string,
    check: BlockCheck,
    stream: ReadableStream<Uint8Array> | undefined,
  ): Promise<RpcMessage> {
    if (!stream) throw new Error("the message carries no block data");
    if (!(check.size >= 0 && check.size <= BLOCK_TRANSFER_MAX_BYTES)) {
      throw new Error(`block ${hash} announced with a size of ${check.size} bytes`);
    }
    const pooled = check.size === this.buffers.blockSize;
    const data = pooled ? this.buffers.take() : new Uint8Array(check.size);
    try {
      await readInto(stream, data, (received) =>
        new Error(
          `block ${hash} arrived corrupted: not the ${check.size} bytes announced (${received} received)`,
        ));
      if (!passesCheck(data, check)) throw new Error(`block ${hash} arrived corrupted`);
      await this.putLocal(hash, data);
      return { body: null };
    } finally {
      if (pooled) this.buffers.give(data);
    }
  }

  /** The replicas of a block: those of its hash's partition. */
  partitionOf(hash: string): number {
    return partitionOfKey(hash);
  }

  /**
   * Stores a block on its replicas; resolves once a write quorum has it
   * durably. `onAllStored` is called once every replica has it or was skipped
   * (push_backlog.ts): only then is `data` read by nobody (a failed call may
   * still be sending it).
   */
  async putBlock(
    hash: string,
    data: Uint8Array,
    onAllStored?: () => void,
    check?: BlockCheck,
  ): Promise<void> {
    const calls: Promise<void>[] = [];
    // A push held back by a replica's backlog is skipped once the quorum is settled.
    const settled = Promise.withResolvers<void>();
    const written = quorumWrite(
      `store block ${hash.slice(0, 16)}`,
      this.replication.writeSets(this.partitionOf(hash)),
      (n) => this.replication.writeQuorum(n),
      (node) => {
        const call = node === this.replication.nodeId
          ? this.putLocal(hash, data)
          : this.pushes.push(node, data.byteLength, settled.promise, async () => {
            await this.replication.call(node, "block/put", {
              body: check ? { hash, check } : { hash },
              stream: streamOf(data),
            }, { priority: "normal" });
          });
        calls.push(call);
        return call;
      },
    );
    try {
      await written;
    } finally {
      settled.resolve();
    }
    // quorumWrite called every replica before it resolved.
    if (onAllStored) {
      const released = calls.map((call) =>
        call.catch((e) => {
          if (!(e instanceof PushSkippedError)) throw e;
        })
      );
      Promise.all(released).then(onAllStored, () => {});
    }
  }

  /**
   * A block's content, checked against its CRC-32 and size when the caller
   * knows them (see VersionBlock), else its hash: from this node when it has a good
   * copy, else from the nearest replica that has one (and the local copy is
   * queued for repair).
   */
  async getBlock(hash: string, check?: BlockCheck): Promise<Uint8Array> {
    let localError: unknown;
    try {
      const local = await this.store.read(hash, check);
      if (local !== undefined) return local;
    } catch (e) {
      localError = e;
    }
    if (this.replication.storesPartition(this.partitionOf(hash))) this.onBadLocalCopy(hash);
    try {
      return await this.fetchFromPeers(hash, check);
    } catch (e) {
      if (localError === undefined) throw e;
      throw new MissingBlockError(
        hash,
        `this node: ${errorMessage(localError)}; ${errorMessage(e)}`,
      );
    }
  }

  /**
   * A verified copy of a block (see getBlock) from the nearest other replica
   * that has one. A replica that has not started to answer within the read
   * hedge delay (hung, or cut off while its connection still looks open) no
   * longer holds the read up: the next ones are asked too, and the first to
   * answer sends the block (the others are cancelled).
   */
  async fetchFromPeers(hash: string, check?: BlockCheck): Promise<Uint8Array> {
    const candidates = new Set(replicasOf(this.replication, this.partitionOf(hash)));
    candidates.delete(this.replication.nodeId);
    let left = this.replication.byProximity([...candidates]);
    const errors: string[] = [];
    while (left.length > 0) {
      const answering = new AnswerRace();
      let first: { node: string; value: RpcMessage };
      try {
        [first] = await quorumRead(
          `read block ${hash.slice(0, 16)}`,
          left,
          1,
          this.replication.readHedgeMs(left.slice(0, 1)),
          (node) =>
            answering.ask(
              node,
              (signal) =>
                this.replication.call(node, "block/get", { body: { hash, check } }, {
                  priority: "normal",
                  signal,
                }),
            ),
        );
      } catch (e) {
        if (!(e instanceof QuorumError)) throw e;
        for (const c of e.causes) errors.push(`${shortNodeId(c.node)}: ${c.error}`);
        break;
      }
      answering.keepOnly(first.node);
      try {
        return await this.#checkedCopy(hash, check, first.value);
      } catch (e) {
        errors.push(`${shortNodeId(first.node)}: ${errorMessage(e)}`);
      }
      left = left.filter((node) => node !== first.node);
    }
    throw new MissingBlockError(hash, errors.length ? errors.join("; ") : "no other replica");
  }

  /** The block a replica's answer carries, checked against `check` (else its hash). */
  async #checkedCopy(hash: string, check: BlockCheck | undefined, answer: RpcMessage) {
    if (check) {
      if (!answer.stream) throw new Error("the answer carries no block data");
      const received = new Uint8Array(check.size);
      await readInto(
        answer.stream,
        received,
        (n) =>
          new Error(
            `the copy received is corrupted: not the ${check.size} bytes expected (${n} received)`,
          ),
      );
      if (!passesCheck(received, check)) throw new Error("the copy received is corrupted");
      return received;
    }
    const checked = await this.store.hashing.sha256(
      await readAll(answer.stream, BLOCK_TRANSFER_MAX_BYTES),
    );
    if (checked.hex !== hash) throw new Error("the copy received is corrupted");
    return checked.data;
  }

  /** Whether this node is among the replicas of the block in some active layout version. */
  shouldStore(hash: string): boolean {
    return this.replication.storesPartition(this.partitionOf(hash));
  }

  /** Makes sure every other replica of the block has it; true when they all do. */
  async offloadToPeers(hash: string, data: Uint8Array): Promise<boolean> {
    const nodes = new Set(this.replication.writeSets(this.partitionOf(hash)).flat());
    nodes.delete(this.replication.nodeId);
    if (nodes.size === 0) return false;
    for (const node of nodes) {
      if (!(await this.nodeHas(node, hash))) await this.sendTo(node, hash, data);
    }
    return true;
  }

  /** Whether a node has the block (for offloading). */
  async nodeHas(node: string, hash: string): Promise<boolean> {
    if (node === this.replication.nodeId) return await this.store.has(hash);
    const answer = await this.replication.call(node, "block/has", { body: { hash } }, {
      priority: "normal",
    });
    return (answer.body as { has: boolean }).has;
  }

  /** Sends a block to one node. */
  async sendTo(node: string, hash: string, data: Uint8Array): Promise<void> {
    if (node === this.replication.nodeId) return await this.putLocal(hash, data);
    await this.replication.call(node, "block/put", { body: { hash }, stream: streamOf(data) }, {
      priority: "background",
    });
  }

  /** The lock protecting a block's file and count; the block_ref table locks it too. */
  static lockKey(hash: string): string {
    return `block\u0000${hash}`;
  }

  /** Stores a block durably on this node; an unreferenced block is collected after the GC delay. */
  async putLocal(hash: string, data: Uint8Array): Promise<void> {
    const release = await this.mutex.acquire(BlockManager.lockKey(hash));
    let releaseLater = false;
    try {
      const tx = new DbTransaction(this.db);
      const rc = await tx.get<Refcount>(rcKey(hash));
      // A block with no record is new (or a file a crash left unrecorded, which
      // the write replaces): only a recorded one is looked for first, since a
      // failed look (an exception) costs more than the read of the record.
      if (rc === undefined || !(await this.store.has(hash))) await this.store.write(hash, data);
      if (rc === undefined) {
        // A new block: answer once its file is durable. Its grace-period record
        // follows under the lock, so no reference is counted before it; no
        // collection can take the block meanwhile (it is in no queue yet).
        this.#setCount(tx, hash, rc, 0);
        releaseLater = true;
        tx.commit().catch((e) =>
          log("remise::block", "warn", `cannot record new block ${hash}: ${errorMessage(e)}`)
        ).finally(release);
      } else if (rc.count === 0) {
        // Restart the grace period, so a concurrent collection cannot take a
        // block that is about to be referenced.
        this.#setCount(tx, hash, rc, 0);
        await tx.commit();
      }
    } finally {
      if (!releaseLater) release();
    }
  }

  /**
   * Puts a block file that has no reference record (a node stopped between
   * storing a new block and recording it) in the collector's queue; true when
   * it did. `remise repair blocks` reaches every local file this way.
   */
  async trackUnrecorded(hash: string): Promise<boolean> {
    const release = await this.mutex.acquire(BlockManager.lockKey(hash));
    try {
      const tx = new DbTransaction(this.db);
      if (await tx.get<Refcount>(rcKey(hash)) !== undefined) return false;
      if (!(await this.store.has(hash))) return false;
      this.#setCount(tx, hash, undefined, 0);
      await tx.commit();
      return true;
    } finally {
      release();
    }
  }

  /** Changes a block's reference count; the caller holds `lockKey(hash)`. */
  async changeRefcount(hash: string, delta: number, tx: LocalTransaction): Promise<void> {
    const rc = await tx.get<Refcount>(rcKey(hash));
    const count = Math.max(0, (rc?.count ?? 0) + delta);
    this.#setCount(tx, hash, rc, count);
    if ((rc?.count ?? 0) === 0 && count > 0) {
      tx.afterCommit(() => Promise.resolve(this.onReferenced(hash)));
    }
  }

  /** Sets a block's reference count to `count` if it differs (repair); true when changed. */
  async setRefcount(hash: string, count: number): Promise<boolean> {
    const release = await this.mutex.acquire(BlockManager.lockKey(hash));
    try {
      const tx = new DbTransaction(this.db);
      const rc = await tx.get<Refcount>(rcKey(hash));
      if ((rc?.count ?? 0) === count) return false;
      this.#setCount(tx, hash, rc, count);
      await tx.commit();
      return true;
    } finally {
      release();
    }
  }

  async refcount(hash: string): Promise<number> {
    return (await this.db.get<Refcount>(rcKey(hash)))?.count ?? 0;
  }

  /** Deletes blocks unreferenced for longer than the delay; returns how many. */
  async collectGarbage(signal?: AbortSignal): Promise<number> {
    const before = this.nowMs() - this.gcDelayMs;
    let deleted = 0;
    // A full batch is followed by the next at once: a mass deletion frees more than a batch
    // between two runs. A batch that deletes nothing (entries changed since) ends the run.
    for (;;) {
      const batch = await this.#collectBatch(before);
      deleted += batch.deleted;
      if (batch.due < GC_BATCH_BLOCKS || batch.deleted === 0 || signal?.aborted) break;
    }
    if (deleted > 0) log("remise::block", "debug", `garbage collection deleted ${deleted} blocks`);
    return deleted;
  }

  /** Deletes up to a batch of the blocks unreferenced since before `before`. */
  async #collectBatch(before: number): Promise<{ due: number; deleted: number }> {
    let deleted = 0;
    const due: string[] = [];
    for await (
      const { key } of this.db.list({ prefix: ["block", "gc"], end: ["block", "gc", before + 1] }, {
        limit: GC_BATCH_BLOCKS,
      })
    ) {
      due.push(key[3] as string);
    }
    for (const hash of due) {
      const release = await this.mutex.acquire(BlockManager.lockKey(hash));
      try {
        const rc = await this.db.get<Refcount>(rcKey(hash));
        if (
          rc !== undefined && (rc.count > 0 || rc.zeroSinceMs === null || rc.zeroSinceMs > before)
        ) continue;
        await this.store.delete(hash);
        const mutations = [{ type: "delete" as const, key: rcKey(hash) }];
        if (rc?.zeroSinceMs != null) {
          mutations.push({ type: "delete", key: gcKey(rc.zeroSinceMs, hash) });
        }
        await this.db.commit(mutations);
        deleted++;
      } finally {
        release();
      }
    }
    return { due: due.length, deleted };
  }

  #setCount(tx: LocalTransaction, hash: string, old: Refcount | undefined, count: number): void {
    if (old?.zeroSinceMs != null) tx.delete(gcKey(old.zeroSinceMs, hash));
    const zeroSinceMs = count === 0 ? this.nowMs() : null;
    tx.set(rcKey(hash), { count, zeroSinceMs } satisfies Refcount);
    if (zeroSinceMs !== null) tx.set(gcKey(zeroSinceMs, hash), null);
  }
}

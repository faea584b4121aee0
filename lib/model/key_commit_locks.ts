/**
 * The locks that make conditional writes of an object's key atomic.
 *
 * Every commit of a key through this node holds this node's lock of the key
 * from its last check of the key's current object to its write. A
 * conditional commit (If-Match, If-None-Match) holds the key's lock on a
 * majority of its bucket's replicas as well: two majorities share a node, so
 * conditional writes of one key through any nodes take turns, whatever each
 * node believes of the others; each one's check reads a quorum, which meets
 * the quorum the one before it wrote.
 *
 * The locks are taken in the replicas' layout order, one at a time, so no
 * two writers wait for each other; a replica seen down, or that does not
 * grant the lock within LOCK_WAIT_MS, is passed over for the next one. A
 * write that cannot gather a majority fails (503) rather than go on
 * unserialized. A replica grants its lock as a lease: released by the
 * holder, or by itself once it sees the holder down, or after LEASE_MS. A
 * replica running a remise from before these locks (a rolling upgrade)
 * counts as granted.
 *
 * A replica may end a lease while its holder still means to write: it sees
 * the holder down when the holder's process stalled (a long pause of the
 * machine) or its link dropped. So a conditional write confirms, just before
 * it writes, that a majority still holds its locks (one more round trip); if
 * not, it fails with nothing written, where it would have written over what
 * the next holder wrote meanwhile. It confirms again once written: a stall
 * between the first confirmation and the write's landing (seen in a chaos
 * run) would let the next holder write in between, and two writes from one
 * base both be acknowledged. The second one fails then (503), its outcome
 * unknown to its client, as any write cut off.
 */
import { KeyedMutex } from "../util/keyed_mutex.ts";
import type { Replication } from "../rpc/replication.ts";
import { QuorumError } from "../rpc/quorum.ts";
import { isUnknownPath } from "../net/transport.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

const LOCK_PATH = "objects/key-lock";
const UNLOCK_PATH = "objects/key-unlock";
const HELD_PATH = "objects/key-lock-held";
/** How long a conditional write waits for a replica's lock before passing it over. */
const LOCK_WAIT_MS = 5_000;
/** How long a replica keeps a lock for a holder that never releases it. */
const LEASE_MS = 30_000;
/** How often a replica looks for holders of its locks that went down. */
const HOLDER_CHECK_MS = 1_000;

/** What the locks need of the cluster. */
export type LockReplication = Pick<
  Replication,
  "nodeId" | "readSet" | "isUp" | "call" | "register"
>;

interface LockBody {
  lease: string;
  name: string;
}

interface Lease {
  /** The node whose conditional write holds the lock. */
  holder: string;
  release?: () => void;
  timer?: ReturnType<typeof setTimeout>;
  /** The holder gave up before the lock was granted: release it once it is. */
  cancelled: boolean;
}

/** A key's locks held for a commit. */
export interface HeldKeyLock {
  /**
   * Resolves if a majority of the key's replicas still hold the lock; else a
   * QuorumError, which says that the write may have landed when `written`.
   */
  confirm(written?: boolean): Promise<void>;
  release(): void;
}

/** A lock taken on one replica: `lease` names it on another node, for `confirm`. */
interface ReplicaLock {
  node: string;
  lease?: string;
  release: () => void;
}

/** Releases `locks` in the reverse of the order they were taken. */
function releaseAll(locks: ReplicaLock[]): void {
  for (const lock of locks.toReversed()) lock.release();
}

export class KeyCommitLocks {
  readonly #local = new KeyedMutex();
  /** Locks this node holds for other nodes' conditional writes, by lease id. */
  readonly #leases = new Map<string, Lease>();
  #holderWatch: ReturnType<typeof setInterval> | undefined;

  readonly #leaseMs: number;

  constructor(
    private readonly replication: LockReplication,
    private readonly partitionOf: (bucketId: string) => number,
    options: { leaseMs?: number } = {},
  ) {
    this.#leaseMs = options.leaseMs ?? LEASE_MS;
    replication.register(LOCK_PATH, (from, m) => this.#grant(from, m.body as LockBody));
    replication.register(UNLOCK_PATH, (_from, m) => {
      this.#end((m.body as Pick<LockBody, "lease">).lease);
      return Promise.resolve({ body: null });
    });
    replication.register(HELD_PATH, (_from, m) => {
      const lease = this.#leases.get((m.body as Pick<LockBody, "lease">).lease);
      return Promise.resolve({ body: { held: lease?.release !== undefined } });
    });
  }

  /**
   * Waits for the key's lock (and, when `conditional`, a majority of its
   * replicas') and returns it held.
   */
  async acquire(bucketId: string, key: string, conditional: boolean): Promise<HeldKeyLock> {
    const name = `${bucketId}\0${key}`;
    const replicas = conditional ? this.replication.readSet(this.partitionOf(bucketId)) : [];
    if (replicas.length <= 1) {
      const release = await this.#local.acquire(name);
      return { confirm: () => Promise.resolve(), release };
    }
    // This node's lock comes at its place among the replicas; first when it is none of them
    // (only this node's own writes wait for it then).
    const own = replicas.includes(this.replication.nodeId)
      ? []
      : [{ node: this.replication.nodeId, release: await this.#local.acquire(name) }];
    const needed = Math.floor(replicas.length / 2) + 1;
    const locks = await this.#lockMajority(replicas, needed, name, own);
    return {
      confirm: (written = false) =>
        this.#confirm(locks.filter((l) => replicas.includes(l.node)), needed, written),
      release: () => releaseAll(locks),
    };
  }

  /** Adds the key's lock on `needed` of `replicas`, in their order, to `locks`. */
  async #lockMajority(
    replicas: string[],
    needed: number,
    name: string,
    locks: ReplicaLock[],
  ): Promise<ReplicaLock[]> {
    let granted = 0;
    const refusals: { node: string; error: string }[] = [];
    for (const [i, node] of replicas.entries()) {
      if (granted >= needed || granted + replicas.length - i < needed) break;
      if (node === this.replication.nodeId) {
        locks.push({ node, release: await this.#local.acquire(name) });
        granted++;
      } else if (!this.replication.isUp(node)) {
        refusals.push({ node, error: "seen down" });
      } else {
        const lock = await this.#lockAt(node, name).catch((e) => {
          refusals.push({ node, error: errorMessage(e) });
          return undefined;
        });
        if (lock) {
          locks.push(lock);
          granted++;
        }
      }
    }
    if (granted < needed) {
      releaseAll(locks);
      throw new QuorumError("lock the key for a conditional write", needed, granted, refusals);
    }
    return locks;
  }

  /** The key's lock on another replica. */
  async #lockAt(node: string, name: string): Promise<ReplicaLock> {
    const lease = crypto.randomUUID();
    try {
      await this.replication.call(node, LOCK_PATH, { body: { lease, name } satisfies LockBody }, {
        priority: "high",
        timeoutMs: LOCK_WAIT_MS,
      });
    } catch (e) {
      // A replica from before these locks: its part cannot be had; counted as granted.
      if (isUnknownPath(e, LOCK_PATH)) {
        return { node, release: () => {} };
      }
      // Granted later, it is released at once.
      this.#sendUnlock(node, lease);
      throw e;
    }
    return { node, lease, release: () => this.#sendUnlock(node, lease) };
  }

  /**
   * Resolves if `needed` of the replicas' `locks` are still held: this
   * node's own always are; another replica's lease, if that replica says so.
   */
  async #confirm(locks: ReplicaLock[], needed: number, written: boolean): Promise<void> {
    const causes: { node: string; error: string }[] = [];
    const held = await Promise.all(locks.map(async ({ node, lease }) => {
      if (lease === undefined) return true;
      try {
        const answer = await this.replication.call(node, HELD_PATH, { body: { lease } }, {
          priority: "high",
          timeoutMs: LOCK_WAIT_MS,
        });
        if ((answer.body as { held?: boolean })?.held === true) return true;
        causes.push({ node, error: "it ended the lease (it saw this node down)" });
      } catch (e) {
        // A replica from before this check granted the lock, which it keeps as it did.
        if (isUnknownPath(e, HELD_PATH)) return true;
        causes.push({ node, error: errorMessage(e) });
      }
      return false;
    }));
    const count = held.filter(Boolean).length;
    if (count < needed) {
      const what = written
        ? "keep the key's lock to the end of a conditional write, which may have landed"
        : "keep the key's lock for a conditional write";
      throw new QuorumError(what, needed, count, causes);
    }
  }

  /** Leases still held for other nodes (for tests). */
  get leasesHeld(): number {
    return this.#leases.size;
  }

  async #grant(holder: string, body: LockBody): Promise<{ body: null }> {
    if (typeof body?.lease !== "string" || typeof body.name !== "string") {
      throw new Error("A key lock request needs a lease and a name");
    }
    const lease: Lease = { holder, cancelled: false };
    this.#leases.set(body.lease, lease);
    this.#watchHolders();
    const release = await this.#local.acquire(body.name);
    lease.release = release;
    if (lease.cancelled) {
      this.#end(body.lease);
    } else {
      const timer = lease.timer = setTimeout(() => {
        log("remise::objects", "warn", "a key lock's holder never released it: released");
        this.#end(body.lease);
      }, this.#leaseMs);
      Deno.unrefTimer(timer);
    }
    return { body: null };
  }

  /**
   * While leases are held, ends each whose holder this node sees down (its
   * process died, or it was cut off): its write will not go on, and the key's
   * other writes need not wait out the lease.
   */
  #watchHolders(): void {
    if (this.#holderWatch !== undefined) return;
    this.#holderWatch = setInterval(() => {
      for (const [id, lease] of this.#leases) {
        if (lease.release && !this.replication.isUp(lease.holder)) {
          log("remise::objects", "info", "a key lock's holder is down: released");
          this.#end(id);
        }
      }
      if (this.#leases.size === 0) {
        clearInterval(this.#holderWatch);
        this.#holderWatch = undefined;
      }
    }, HOLDER_CHECK_MS);
    Deno.unrefTimer(this.#holderWatch);
  }

  #end(id: string): void {
    const lease = this.#leases.get(id);
    if (!lease) return;
    if (!lease.release) {
      lease.cancelled = true;
      return;
    }
    clearTimeout(lease.timer);
    this.#leases.delete(id);
    lease.release();
  }

  /**
   * Not awaited: the write is done; a lost unlock costs the key's next writer
   * until the replica sees this node down, or LEASE_MS.
   */
  #sendUnlock(node: string, lease: string): void {
    this.replication.call(node, UNLOCK_PATH, { body: { lease } }, { priority: "high" }).catch(
      (e) => log("remise::objects", "debug", `unlocking a key: ${errorMessage(e)}`),
    );
  }
}

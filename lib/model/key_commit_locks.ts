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
 */
import { KeyedMutex } from "../util/keyed_mutex.ts";
import type { Replication } from "../rpc/replication.ts";
import { QuorumError } from "../rpc/quorum.ts";
import { isUnknownPath } from "../net/transport.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

const LOCK_PATH = "objects/key-lock";
const UNLOCK_PATH = "objects/key-unlock";
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
  }

  /**
   * Waits for the key's lock (and, when `conditional`, a majority of its
   * replicas') and returns the function that releases it.
   */
  async acquire(bucketId: string, key: string, conditional: boolean): Promise<() => void> {
    const name = `${bucketId}\0${key}`;
    const replicas = conditional ? this.replication.readSet(this.partitionOf(bucketId)) : [];
    if (replicas.length <= 1) return await this.#local.acquire(name);
    // This node's lock comes at its place among the replicas; first when it is none of them
    // (only this node's own writes wait for it then).
    const releases = replicas.includes(this.replication.nodeId)
      ? []
      : [await this.#local.acquire(name)];
    return await this.#lockMajority(replicas, name, releases);
  }

  /** Adds the key's lock on a majority of `replicas`, in their order, to `releases`. */
  async #lockMajority(
    replicas: string[],
    name: string,
    releases: (() => void)[],
  ): Promise<() => void> {
    const releaseAll = () => releases.reverse().forEach((release) => release());
    const needed = Math.floor(replicas.length / 2) + 1;
    let granted = 0;
    const refusals: { node: string; error: string }[] = [];
    for (const [i, node] of replicas.entries()) {
      if (granted >= needed || granted + replicas.length - i < needed) break;
      if (node === this.replication.nodeId) {
        releases.push(await this.#local.acquire(name));
        granted++;
      } else if (!this.replication.isUp(node)) {
        refusals.push({ node, error: "seen down" });
      } else {
        const release = await this.#lockAt(node, name).catch((e) => {
          refusals.push({ node, error: errorMessage(e) });
          return undefined;
        });
        if (release) {
          releases.push(release);
          granted++;
        }
      }
    }
    if (granted < needed) {
      releaseAll();
      throw new QuorumError("lock the key for a conditional write", needed, granted, refusals);
    }
    return releaseAll;
  }

  /** The key's lock on another replica, and the function that releases it. */
  async #lockAt(node: string, name: string): Promise<() => void> {
    const lease = crypto.randomUUID();
    try {
      await this.replication.call(node, LOCK_PATH, { body: { lease, name } satisfies LockBody }, {
        priority: "high",
        timeoutMs: LOCK_WAIT_MS,
      });
    } catch (e) {
      // A replica from before these locks: its part cannot be had; counted as granted.
      if (isUnknownPath(e, LOCK_PATH)) {
        return () => {};
      }
      // Granted later, it is released at once.
      this.#sendUnlock(node, lease);
      throw e;
    }
    return () => this.#sendUnlock(node, lease);
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

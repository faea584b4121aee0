import assert from "node:assert/strict";
import { KeyCommitLocks, type LockReplication } from "./key_commit_locks.ts";
import { RpcError, type RpcMessage } from "../net/transport.ts";
import type { SystemHandler } from "../rpc/system.ts";
import { QuorumError } from "../rpc/quorum.ts";

/**
 * Nodes a, b, c of one partition (in that layout order) whose calls reach
 * each other's handlers in memory; a node in `down` is seen down and its
 * calls fail, and with `callTimeoutMs` a call gives up after that long
 * while its handler goes on (as an RPC timeout).
 */
function cluster(options: { leaseMs?: number } = {}) {
  const handlers = new Map<string, Map<string, SystemHandler>>();
  const down = new Set<string>();
  const net = { down, callTimeoutMs: undefined as number | undefined };
  const replicationOf = (nodeId: string): LockReplication => {
    const mine = new Map<string, SystemHandler>();
    handlers.set(nodeId, mine);
    return {
      nodeId,
      readSet: () => ["a", "b", "c"],
      isUp: (node) => node === nodeId || !down.has(node),
      register: (path, handler) => {
        mine.set(path, handler);
      },
      call: (node, path, message): Promise<RpcMessage> => {
        if (down.has(node)) return Promise.reject(new Error(`${node} is down`));
        const handler = handlers.get(node)!.get(path);
        // What an RPC to a path the node does not serve fails with.
        if (!handler) return Promise.reject(new RpcError("remote", `Unknown RPC path "${path}"`));
        const served = handler(nodeId, message);
        if (net.callTimeoutMs === undefined) return served;
        return Promise.race([
          served,
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error("timed out")), net.callTimeoutMs)
          ),
        ]);
      },
    };
  };
  const locks = Object.fromEntries(
    ["a", "b", "c"].map((id) => [id, new KeyCommitLocks(replicationOf(id), () => 0, options)]),
  ) as Record<"a" | "b" | "c", KeyCommitLocks>;
  return { locks, net, handlers };
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const settled = await Promise.race([promise.then(() => true, () => true), late]);
  clearTimeout(timer);
  return settled;
}

Deno.test("conditional commits of a key through different nodes take turns at the leader", async () => {
  const { locks } = cluster();
  const releaseB = await locks.b.acquire("bkt", "k", true);
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 50), false, "c waits for b");
  const other = await locks.c.acquire("bkt", "other key", true);
  other();
  releaseB();
  const releaseC = await c;
  const a = locks.a.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(a, 50), false, "the leader's own commit waits for c's");
  releaseC();
  (await a)();
  assert.equal(locks.a.leasesHeld, 0);
});

Deno.test("unconditional commits wait only for their own node's commits of the key", async () => {
  const { locks } = cluster();
  const conditional = await locks.b.acquire("bkt", "k", true);
  const elsewhere = locks.c.acquire("bkt", "k", false);
  assert.equal(await settlesWithin(elsewhere, 50), true);
  (await elsewhere)();
  const here = locks.b.acquire("bkt", "k", false);
  assert.equal(await settlesWithin(here, 50), false);
  conditional();
  (await here)();
});

Deno.test("a leader seen down passes the lock to the next replica up", async () => {
  const { locks, net } = cluster();
  net.down.add("a");
  const releaseC = await locks.c.acquire("bkt", "k", true);
  const b = locks.b.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(b, 50), false, "b leads, and waits for c's lease");
  releaseC();
  (await b)();
});

Deno.test("a leader that does not answer fails the conditional commit with a 503's error", async () => {
  const { locks, net } = cluster();
  const holdsA = await locks.a.acquire("bkt", "k", true);
  net.callTimeoutMs = 30;
  await assert.rejects(locks.b.acquire("bkt", "k", true), QuorumError);
  net.callTimeoutMs = undefined;
  holdsA();
  // b gave up: the lease granted once a released is given back at once.
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 200), true, "c is not held up by b's lease");
  (await c)();
  assert.equal(locks.a.leasesHeld, 0);
});

Deno.test("a lease whose holder never releases it ends by itself", async () => {
  const { locks } = cluster({ leaseMs: 40 });
  await locks.b.acquire("bkt", "k", true); // never released, as by a node that died
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 500), true);
  (await c)();
});

Deno.test("a leader from before these locks is not asked: its node's own lock holds", async () => {
  const { locks, handlers } = cluster();
  handlers.get("a")!.clear(); // a runs an older remise
  const releaseB = await locks.b.acquire("bkt", "k", true);
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 50), true);
  (await c)();
  releaseB();
});

Deno.test("a lease whose holder goes down ends without waiting out the lease", async () => {
  const { locks, net } = cluster();
  await locks.b.acquire("bkt", "k", true); // b then dies, or is cut off
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 200), false);
  net.down.add("b");
  assert.equal(await settlesWithin(c, 2_500), true, "released within a check of the holders");
  (await c)();
  assert.equal(locks.a.leasesHeld, 0);
});

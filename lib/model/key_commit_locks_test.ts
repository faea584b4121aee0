import assert from "node:assert/strict";
import { KeyCommitLocks, type LockReplication } from "./key_commit_locks.ts";
import { RpcError, type RpcMessage, unknownPathMessage } from "../net/transport.ts";
import type { SystemHandler } from "../rpc/system.ts";
import { QuorumError } from "../rpc/quorum.ts";

type Node = "a" | "b" | "c";

/**
 * Nodes a, b, c of one partition (in that layout order) whose calls reach
 * each other's handlers in memory. A node in `down` is down: its calls fail
 * and every node sees it down. `seenDown` adds what one node believes of
 * others, whatever they are. With `callTimeoutMs` a call gives up after that
 * long while its handler goes on (as an RPC timeout).
 */
function cluster(options: { leaseMs?: number } = {}) {
  const handlers = new Map<string, Map<string, SystemHandler>>();
  const net = {
    down: new Set<string>(),
    seenDown: new Map<string, Set<string>>(),
    callTimeoutMs: undefined as number | undefined,
  };
  const replicationOf = (nodeId: string): LockReplication => {
    const mine = new Map<string, SystemHandler>();
    handlers.set(nodeId, mine);
    return {
      nodeId,
      readSet: () => ["a", "b", "c"],
      isUp: (node) =>
        node === nodeId || !net.down.has(node) && !net.seenDown.get(nodeId)?.has(node),
      register: (path, handler) => {
        mine.set(path, handler);
      },
      call: (node, path, message): Promise<RpcMessage> => {
        if (net.down.has(node)) return Promise.reject(new Error(`${node} is down`));
        const handler = handlers.get(node)!.get(path);
        // What an RPC to a path the node does not serve fails with.
        if (!handler) return Promise.reject(new RpcError("remote", unknownPathMessage(path)));
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
  ) as Record<Node, KeyCommitLocks>;
  const leases = () => Object.values(locks).reduce((n, l) => n + l.leasesHeld, 0);
  return { locks, net, handlers, leases };
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const settled = await Promise.race([promise.then(() => true, () => true), late]);
  clearTimeout(timer);
  return settled;
}

/** Lets the unlocks sent (not awaited) arrive. */
const unlocksArrive = () => new Promise((resolve) => setTimeout(resolve, 10));

Deno.test("conditional commits of a key through different nodes take turns", async () => {
  const { locks, leases } = cluster();
  for (const [first, second] of [["b", "c"], ["c", "a"], ["a", "b"]] as [Node, Node][]) {
    const held = await locks[first].acquire("bkt", "k", true);
    const next = locks[second].acquire("bkt", "k", true);
    assert.equal(await settlesWithin(next, 50), false, `${second} waits for ${first}`);
    const other = await locks[second].acquire("bkt", "other key", true);
    other.release();
    held.release();
    (await next).release();
  }
  await unlocksArrive();
  assert.equal(leases(), 0);
});

Deno.test("unconditional commits wait only for their own node's commits of the key", async () => {
  const { locks } = cluster();
  const conditional = await locks.b.acquire("bkt", "k", true); // holds a's and b's locks
  const elsewhere = locks.c.acquire("bkt", "k", false);
  assert.equal(await settlesWithin(elsewhere, 50), true);
  (await elsewhere).release();
  const here = locks.b.acquire("bkt", "k", false);
  assert.equal(await settlesWithin(here, 50), false);
  conditional.release();
  (await here).release();
});

Deno.test("a replica seen down is passed over: the two others still make writers take turns", async () => {
  const { locks, net } = cluster();
  net.down.add("a");
  const heldByC = await locks.c.acquire("bkt", "k", true);
  const b = locks.b.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(b, 50), false, "b waits for c");
  heldByC.release();
  (await b).release();
});

Deno.test("nodes that disagree on who is up still take turns, or fail", async () => {
  // c comes back from a cut: it sees a and b down, which still see it down.
  const { locks, net } = cluster();
  net.seenDown.set("c", new Set(["a", "b"]));
  net.seenDown.set("a", new Set(["c"]));
  net.seenDown.set("b", new Set(["c"]));
  const heldByA = await locks.a.acquire("bkt", "k", true);
  await assert.rejects(locks.c.acquire("bkt", "k", true), QuorumError, "c alone is no majority");
  // c now sees a and b again, before they see c: it waits for a's turn all the same.
  net.seenDown.delete("c");
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 50), false);
  heldByA.release();
  (await c).release();
});

Deno.test("a replica that does not answer is passed over; without a majority, a 503's error", async () => {
  const { locks, net, leases } = cluster();
  const holdsA = await locks.a.acquire("bkt", "k", false); // a's own write holds a's lock
  net.callTimeoutMs = 30;
  const held = await locks.b.acquire("bkt", "k", true); // a passed over: b and c
  held.release();
  net.down.add("c");
  await assert.rejects(locks.b.acquire("bkt", "k", true), QuorumError);
  net.callTimeoutMs = undefined;
  holdsA.release();
  // The leases a granted after b gave up are given back at once.
  await unlocksArrive();
  net.down.delete("c");
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 200), true, "c is not held up by b's leases");
  (await c).release();
  await unlocksArrive();
  assert.equal(leases(), 0);
});

Deno.test("a lease whose holder never releases it ends by itself", async () => {
  const { locks, net } = cluster({ leaseMs: 40 });
  await locks.b.acquire("bkt", "k", true); // holds a's and b's locks, and never lets go
  net.seenDown.set("c", new Set(["b"])); // c no longer reaches b; a still sees it up
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 20), false);
  assert.equal(await settlesWithin(c, 500), true, "a's lease ended: a and c make a majority");
  (await c).release();
});

Deno.test("a replica from before these locks counts as granted", async () => {
  const { locks, handlers } = cluster();
  handlers.get("a")!.clear(); // a runs an older remise
  const heldByB = await locks.b.acquire("bkt", "k", true);
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 50), false, "c waits for b's lock");
  heldByB.release();
  (await c).release();
});

Deno.test("a lease whose holder goes down ends without waiting out the lease", async () => {
  const { locks, net } = cluster();
  await locks.b.acquire("bkt", "k", true); // holds a's and b's locks; b then dies
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 200), false);
  net.down.add("b");
  assert.equal(await settlesWithin(c, 2_500), true, "a's lease ends within a check");
  (await c).release();
});

Deno.test("a holder whose lease a replica ended learns it before its write", async () => {
  const { locks, net } = cluster();
  const held = await locks.b.acquire("bkt", "k", true); // a's lease and b's own lock
  await held.confirm();
  // b stalls (a long pause): a and c see it down while it still means to write.
  net.seenDown.set("a", new Set(["b"]));
  net.seenDown.set("c", new Set(["b"]));
  const c = locks.c.acquire("bkt", "k", true);
  assert.equal(await settlesWithin(c, 2_500), true, "a ended b's lease: a and c make a majority");
  await assert.rejects(held.confirm(), QuorumError, "b must not write now");
  // Asked once written, the answer says that the write may have landed.
  await assert.rejects(held.confirm(true), /to the end of a conditional write, which may have/);
  (await c).release();
  held.release();
});

Deno.test("a replica from before the confirmation keeps the lease it granted", async () => {
  const { locks, handlers } = cluster();
  handlers.get("a")!.delete("objects/key-lock-held");
  const held = await locks.b.acquire("bkt", "k", true);
  await held.confirm();
  held.release();
});

Deno.test("a replica that no longer answers does not confirm the lease it granted", async () => {
  const { locks, net } = cluster();
  const held = await locks.b.acquire("bkt", "k", true); // a's lease and b's own lock
  net.down.add("a");
  await assert.rejects(held.confirm(), QuorumError);
  held.release();
});

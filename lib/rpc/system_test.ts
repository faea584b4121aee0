import assert from "node:assert/strict";
import { MemoryNetwork } from "../net/memory_transport.ts";
import { isUnknownPath } from "../net/transport.ts";
import { KvStore } from "../db/kv_store.ts";
import { FORGET_AFTER_MS, PING_INTERVAL_MS, System } from "./system.ts";
import { applyStaged, stageRole } from "./layout.ts";
import { ClusterReplication } from "./replication.ts";

const TB = 1_000_000_000_000;
const IDS = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("a node gone and out of the layout is forgotten, and gossip does not bring it back; it is met again when it pings, with a new process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-system-test-" });
  const network = new MemoryNetwork();
  let offsetMs = 0;
  const nowMs = () => Date.now() + offsetMs;
  const dbs: KvStore[] = [];
  const systems: System[] = [];
  const open = async (i: number) => {
    const db = await KvStore.open(`${dir}/${i}-${dbs.length}`);
    dbs.push(db);
    const system = await System.open({
      transport: network.transport(IDS[i], `node${i}:3901`),
      db,
      publicAddr: `node${i}:3901`,
      bootstrapPeers: i === 0 ? [] : ["node0:3901"],
      replicationFactor: 1,
      version: "test",
      hostname: `node${i}`,
      diskSpace: () => Promise.resolve({}),
      nowMs,
    });
    await system.start();
    systems.push(system);
    return system;
  };
  const known = (s: System) => s.peers().map((p) => p.id);
  try {
    const [a, b] = [await open(0), await open(1)];
    let c = await open(2);
    await until(
      "every node knows every other",
      () => [a, b, c].every((s) => s.peers().filter((p) => p.up).length === 3),
    );
    // Nodes a and b hold the data; c had no role (or had one and was removed).
    await a.updateLayout((l) => {
      const staged = stageRole(l, IDS[0], { zone: "z1", capacity: TB, tags: [] }, nowMs());
      return applyStaged(
        stageRole(staged, IDS[1], { zone: "z2", capacity: TB, tags: [] }, 1),
        1,
        0,
      );
    });
    // What a's replication tells of c's process (see abortCutOffUploads).
    const fromA = new ClusterReplication(a, "consistent");
    assert.equal(fromA.runOf(IDS[2]), c.run);
    assert.equal(fromA.runOf(IDS[0]), a.run);
    assert.deepEqual([IDS[0], IDS[1], IDS[2]].map((id) => fromA.hasRole(id)), [true, true, false]);
    // A path b does not serve is told from other failures: callers of newer paths fall back.
    const unknown = await fromA.call(IDS[1], "sync/none", { body: {} }).catch((e) => e);
    assert.ok(isUnknownPath(unknown, "sync/none"), String(unknown));
    assert.ok(!isUnknownPath(unknown, "sync/no"));
    const firstRun = c.run;
    await c.stop();
    await until("c is seen down", () => [a, b].every((s) => s.peer(IDS[2])?.up === false));
    assert.equal(fromA.runOf(IDS[2]), undefined, "a node down runs nothing known");
    // Down for a while, but not long enough.
    offsetMs = FORGET_AFTER_MS / 2;
    await new Promise((r) => setTimeout(r, 3 * PING_INTERVAL_MS));
    assert.ok(known(a).includes(IDS[2]) && known(b).includes(IDS[2]));

    offsetMs = FORGET_AFTER_MS + 1_000;
    await until("a and b forget c", () => [a, b].every((s) => !known(s).includes(IDS[2])));
    // Some ping intervals later, neither learnt it again from the other.
    await new Promise((r) => setTimeout(r, 3 * PING_INTERVAL_MS));
    assert.deepEqual([known(a), known(b)], [[IDS[0], IDS[1]], [IDS[1], IDS[0]]]);

    // The node comes back: its own ping makes it known again.
    c = await open(2);
    await until("c is back", () => [a, b].every((s) => s.peer(IDS[2])?.up === true));
    await until("a knows c's new process", () => fromA.runOf(IDS[2]) === c.run);
    assert.notEqual(c.run, firstRun);
  } finally {
    for (const s of systems) await s.stop();
    for (const db of dbs) db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a starting node waits to see a majority of the layout's nodes up, a bounded time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-system-test-" });
  const network = new MemoryNetwork();
  const dbs = await Promise.all([0, 1, 2].map((i) => KvStore.open(`${dir}/${i}`)));
  const open = async (i: number) => {
    const system = await System.open({
      transport: network.transport(IDS[i], `node${i}:3901`),
      db: dbs[i],
      publicAddr: `node${i}:3901`,
      bootstrapPeers: [0, 1, 2].filter((j) => j !== i).map((j) => `node${j}:3901`),
      replicationFactor: 3,
      version: "test",
      hostname: `node${i}`,
      diskSpace: () => Promise.resolve({}),
      nowMs: Date.now,
    });
    await system.start();
    return system;
  };
  const upCount = (s: System) => s.peers().filter((p) => p.up).length;
  let systems: System[] = [];
  try {
    systems = [await open(0), await open(1), await open(2)];
    const [a, b, c] = systems;
    assert.equal(await a.majorityUp(0), true, "no layout: nothing to wait for");
    await a.updateLayout((l) => {
      let staged = l;
      for (const [i, id] of IDS.entries()) {
        staged = stageRole(staged, id, { zone: `z${i}`, capacity: TB, tags: [] }, Date.now());
      }
      return applyStaged(staged, 1, 0);
    });
    await until(
      "every node has the layout",
      () => systems.every((s) => s.layout.versions.length > 0),
    );
    // a restarts while c is down: it waits until it sees b.
    await c.stop();
    await a.stop();
    systems = [b, await open(0)];
    const restarted = systems[1];
    assert.equal(await restarted.majorityUp(5_000), true);
    assert.ok(upCount(restarted) >= 2, "a majority is up when it says so");
    // Alone, it waits no longer than it was told to.
    await b.stop();
    await until("b is seen down", () => restarted.peer(IDS[1])?.up === false);
    const started = Date.now();
    assert.equal(await restarted.majorityUp(200), false);
    assert.ok(Date.now() - started >= 200);
  } finally {
    for (const s of systems) await s.stop();
    for (const db of dbs) db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

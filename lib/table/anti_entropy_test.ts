import assert from "node:assert/strict";
import {
  AntiEntropyWorker,
  type AntiEntropyWorkerOptions,
  type PartitionPeer,
  syncPartition,
} from "./anti_entropy.ts";
import { partitionOf, type TestEntry, TestReplica, withReplicas } from "./_merkle_test_replica.ts";
import { seededRandom } from "../util/seeded_random.ts";
import { ANTI_ENTROPY_DIGESTS_PER_CALL } from "../util/limits.ts";

const TABLE = "object";

function entry(pk: string, sk: string, t: number, value: string, tags: string[] = []): TestEntry {
  return { pk, sk, t, value, tags };
}

async function mergeAll(r: TestReplica, table: string, entries: TestEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 200) await r.merge(table, entries.slice(i, i + 200));
}

/** Every stored entry of a table on a replica, keyed by storage key. */
/** Node a's worker over `partitions`, its one other replica (b) answering through `remote`. */
function workerOfTwo(
  a: TestReplica,
  remote: PartitionPeer,
  partitions: number[],
  options: Partial<AntiEntropyWorkerOptions> = {},
): AntiEntropyWorker {
  return new AntiEntropyWorker({
    nodeId: "a",
    tables: [TABLE],
    local: a.peer(),
    partitions: () => partitions,
    replicasOf: () => ["a", "b"],
    peer: () => remote,
    ...options,
  });
}

async function dump(r: TestReplica, table: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for await (const { key, value } of r.db.list({ prefix: ["t", table] })) {
    out.set(JSON.stringify(key), value);
  }
  return out;
}

Deno.test("syncPartition transfers only the entries that differ, both ways", () =>
  withReplicas(2, async (a, b) => {
    const pk = "bucket-1";
    const partition = partitionOf(pk);
    const common = Array.from({ length: 10_000 }, (_, i) => entry(pk, `key-${i}`, 1, `v${i}`));
    await Promise.all([mergeAll(a, TABLE, common), mergeAll(b, TABLE, common)]);
    const equalBefore = await syncPartition(a.peer(), b.peer(), TABLE, partition);
    assert.deepEqual(equalBefore, { leavesCompared: 0, entriesSent: 0, entriesReceived: 0 });

    // a: 5 new entries and 3 newer writes; b: 4 new entries and 2 tag additions.
    await a.merge(TABLE, [
      ...Array.from({ length: 5 }, (_, i) => entry(pk, `only-a-${i}`, 2, "a")),
      ...[10, 20, 30].map((i) => entry(pk, `key-${i}`, 5, "newer")),
    ]);
    await b.merge(TABLE, [
      ...Array.from({ length: 4 }, (_, i) => entry(pk, `only-b-${i}`, 2, "b")),
      ...[40, 50].map((i) => entry(pk, `key-${i}`, 1, `v${i}`, ["tagged"])),
    ]);
    // And one entry changed on both sides: each keeps something of its own.
    await a.merge(TABLE, [entry(pk, "key-60", 3, "from a")]);
    await b.merge(TABLE, [entry(pk, "key-60", 1, "v60", ["from b"])]);

    const result = await syncPartition(a.peer(), b.peer(), TABLE, partition);
    // Received: b's 4 new, 2 tagged, key-60, and b's older copies of the 3 a changed (b's
    // side cannot be known to be older before merging). Sent: a's 5 new, 3 newer, key-60
    // merged; not the 2 tagged entries, equal to b's once merged.
    assert.equal(result.entriesReceived, 10);
    assert.equal(result.entriesSent, 9);
    assert.ok(
      result.leavesCompared >= 1 && result.leavesCompared <= 15,
      `${result.leavesCompared}`,
    );
    assert.equal(b.received, 9);
    assert.equal(a.received, 10);

    assert.deepEqual(
      await a.index.partitionDigest(TABLE, partition),
      await b.index.partitionDigest(TABLE, partition),
    );
    const [dumpA, dumpB] = [await dump(a, TABLE), await dump(b, TABLE)];
    assert.equal(dumpA.size, 10_009);
    assert.deepEqual(dumpA, dumpB);
    assert.deepEqual(
      (await a.get(TABLE, pk, "key-60"))?.entry,
      entry(pk, "key-60", 3, "from a", ["from b"]),
    );

    const again = await syncPartition(b.peer(), a.peer(), TABLE, partition);
    assert.deepEqual(again, { leavesCompared: 0, entriesSent: 0, entriesReceived: 0 });
  }));

Deno.test("syncPartition fills an empty replica and skips entries deleted meanwhile", () =>
  withReplicas(2, async (a, b) => {
    const pk = "bucket-2";
    const partition = partitionOf(pk);
    await mergeAll(a, TABLE, Array.from({ length: 300 }, (_, i) => entry(pk, `k${i}`, 1, "x")));
    // A peer whose entry vanished between listing and fetching.
    const vanishing: PartitionPeer = {
      ...a.peer(),
      getEntries: async (table, keys) =>
        (await a.peer().getEntries(table, keys)).map((
          e,
          i,
        ) => (keys[i].sk === "k7" ? undefined : e)),
    };
    const result = await syncPartition(b.peer(), vanishing, TABLE, partition);
    assert.equal(result.entriesReceived, 299);
    assert.equal(result.entriesSent, 0);
    assert.equal(await b.get(TABLE, pk, "k7"), undefined);
    await syncPartition(b.peer(), a.peer(), TABLE, partition);
    assert.deepEqual(await dump(a, TABLE), await dump(b, TABLE));
  }));

Deno.test("AntiEntropyWorker converges three replicas over every partition and table", () =>
  withReplicas(3, async (a, b, c) => {
    const tables = [TABLE, "bucket"];
    const replicas: Record<string, TestReplica> = { a, b, c };
    const random = seededRandom(42);
    const pks = Array.from({ length: 40 }, (_, i) => `pk-${i}`);
    const common: TestEntry[] = pks.flatMap((pk) =>
      Array.from({ length: 10 }, (_, i) => entry(pk, `s${i}`, 1, "base"))
    );
    for (const r of [a, b, c]) for (const table of tables) await mergeAll(r, table, common);
    // Random divergence: each replica misses writes the others got.
    for (const [name, r] of Object.entries(replicas)) {
      for (const table of tables) {
        const writes = Array.from({ length: 60 }, () => {
          const pk = pks[Math.floor(random() * pks.length)];
          const sk = `s${Math.floor(random() * 20)}`;
          return entry(pk, sk, 1 + Math.floor(random() * 3), `${name}${Math.floor(random() * 5)}`, [
            name,
          ]);
        });
        await mergeAll(r, table, writes);
      }
    }
    const partitions = [...new Set(pks.map(partitionOf))];
    const worker = (self: string) =>
      new AntiEntropyWorker({
        nodeId: self,
        tables,
        local: replicas[self].peer(),
        partitions: () => partitions,
        replicasOf: () => ["a", "b", "c"],
        peer: (id) => replicas[id].peer(),
        now: () => 1_000,
      });
    const workerA = worker("a");
    const progress: number[] = [];
    const pass = await workerA.runOnce({ onProgress: (done) => progress.push(done) });
    assert.equal(pass.partitions, partitions.length);
    assert.equal(pass.partitionsSynced, partitions.length);
    assert.deepEqual(pass.errors, []);
    assert.deepEqual(pass.unsynced, []);
    assert.ok(pass.entriesSent > 0 && pass.entriesReceived > 0);
    assert.deepEqual(progress, partitions.map((_, i) => i + 1));
    // After a's pass, b may still miss what only c had; b's pass fixes that.
    await worker("b").runOnce();
    for (const table of tables) {
      const dumpA = await dump(a, table);
      assert.deepEqual(await dump(b, table), dumpA);
      assert.deepEqual(await dump(c, table), dumpA);
      for (const p of partitions) {
        const digest = await a.index.partitionDigest(table, p);
        assert.deepEqual(await b.index.partitionDigest(table, p), digest);
        assert.deepEqual(await c.index.partitionDigest(table, p), digest);
      }
    }
    const status = workerA.status();
    assert.equal(status.name, "anti-entropy");
    assert.equal(status.state, "idle");
    assert.equal(status.lastRunMs, 1_000);
    assert.equal(status.partitionsSynced, partitions.length);
    assert.equal(status.entriesExchanged, pass.entriesSent + pass.entriesReceived);
    assert.equal(status.errors, 0);
    const quiet = await workerA.runOnce();
    assert.equal(quiet.entriesSent + quiet.entriesReceived + quiet.leavesCompared, 0);
  }));

Deno.test("AntiEntropyWorker skips a failing replica for the rest of the pass, and forgets the failure once a pass has none", () =>
  withReplicas(2, async (a, b) => {
    const pks = Array.from({ length: 12 }, (_, i) => `pk-${i}`);
    await mergeAll(a, TABLE, pks.map((pk) => entry(pk, "", 1, "a")));
    const partitions = [...new Set(pks.map(partitionOf))];
    let brokenCalls = 0;
    const refuse = () => {
      brokenCalls++;
      return Promise.reject(new Error("connection refused"));
    };
    const broken: PartitionPeer = {
      ...b.peer(),
      partitionDigest: refuse,
      partitionDigests: refuse,
    };
    const worker = new AntiEntropyWorker({
      nodeId: "a",
      tables: [TABLE],
      local: a.peer(),
      partitions: () => partitions,
      replicasOf: () => ["a", "b", "c"],
      // c stands for a replica that refuses, then comes back (with b's entries, for the test).
      peer: (id) => (id === "b" || cBack ? b.peer() : broken),
      partitionsConcurrency: 1,
    });
    let cBack = false;
    const pass = await worker.runOnce();
    assert.equal(brokenCalls, 1);
    assert.equal(pass.errors.length, 1);
    assert.match(pass.errors[0], /with node c: connection refused/);
    assert.equal(pass.partitionsSynced, 0);
    // Every partition names c, and only c, as not synced: a layout change may do without it.
    assert.deepEqual(pass.unsynced, partitions.map((partition) => ({ partition, node: "c" })));
    assert.equal(pass.entriesSent, pks.length, "the healthy replica is still synced");
    assert.equal(worker.status().errors, 1);
    assert.match(worker.status().lastError ?? "", /connection refused/);
    cBack = true;
    assert.deepEqual((await worker.runOnce()).errors, []);
    assert.equal(worker.status().errors, 1, "the failure stays counted");
    assert.equal(worker.status().lastError, undefined, "and is not shown as current");
  }));

Deno.test("AntiEntropyWorker goes on with a replica whose disk is full, and reports it once", () =>
  withReplicas(2, async (a, b) => {
    const pks = Array.from({ length: 12 }, (_, i) => `pk-${i}`);
    await mergeAll(a, TABLE, pks.map((pk) => entry(pk, "", 1, "a")));
    const partitions = [...new Set(pks.map(partitionOf))];
    let refused = 0;
    const full: PartitionPeer = {
      ...b.peer(),
      // As a peer relays a refusal: its text.
      putEntries: (...args) => {
        if (refused++ % 2 === 0) {
          return Promise.reject(
            new Error(
              "table/object/apply: Not enough free space on the metadata disk (1 MiB free)",
            ),
          );
        }
        return b.peer().putEntries(...args);
      },
    };
    const worker = workerOfTwo(a, full, partitions, { partitionsConcurrency: 1 });
    const pass = await worker.runOnce();
    assert.equal(refused, partitions.length, "every partition was tried");
    assert.equal(pass.partitionsSynced, Math.floor(partitions.length / 2));
    assert.equal(pass.errors.length, 1);
    assert.match(pass.errors[0], /Not enough free space/);
    assert.equal(worker.status().errors, Math.ceil(partitions.length / 2));
  }));

Deno.test("AntiEntropyWorker runs by itself once started and stops cleanly", () =>
  withReplicas(2, async (a, b) => {
    const pk = "bucket-3";
    await a.merge(TABLE, [entry(pk, "x", 1, "1")]);
    const worker = workerOfTwo(a, b.peer(), [partitionOf(pk)], { intervalMs: 20 });
    worker.start();
    const deadline = Date.now() + 5_000;
    while (worker.status().partitionsSynced < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await worker.stop();
    assert.ok(worker.status().partitionsSynced >= 2, "passes ran periodically");
    assert.equal(worker.status().state, "idle");
    assert.deepEqual((await b.get(TABLE, pk, "x"))?.entry, entry(pk, "x", 1, "1"));
    assert.equal(worker.status().entriesExchanged, 1);
  }));

Deno.test("AntiEntropyWorker asks a replica for the digests of all their partitions at once, and compares one by one only those that differ", () =>
  withReplicas(2, async (a, b) => {
    const tables = [TABLE, "bucket"];
    const pks = Array.from({ length: 300 }, (_, i) => `pk-${i}`);
    const partitions = [...new Set(pks.map(partitionOf))];
    assert.ok(partitions.length > ANTI_ENTROPY_DIGESTS_PER_CALL);
    for (const r of [a, b]) {
      for (const table of tables) await mergeAll(r, table, pks.map((pk) => entry(pk, "", 1, "v")));
    }
    await a.merge("bucket", [entry("pk-7", "", 2, "newer")]);
    const calls = { batched: [] as number[][], single: [] as string[] };
    const counted = (peer: PartitionPeer): PartitionPeer => ({
      ...peer,
      partitionDigest: (table, partition) => {
        calls.single.push(`${table}/${partition}`);
        return peer.partitionDigest(table, partition);
      },
      partitionDigests: (table, asked) => {
        calls.batched.push(asked);
        return peer.partitionDigests!(table, asked);
      },
    });
    const worker = (remote: PartitionPeer) => workerOfTwo(a, remote, partitions, { tables });
    const pass = await worker(counted(b.peer())).runOnce();
    assert.equal(pass.partitionsSynced, partitions.length);
    assert.equal(pass.entriesSent, 1);
    // Once a table, in calls of at most ANTI_ENTROPY_DIGESTS_PER_CALL partitions.
    assert.deepEqual(calls.batched.flat(), [...partitions, ...partitions]);
    assert.ok(calls.batched.every((asked) => asked.length <= ANTI_ENTROPY_DIGESTS_PER_CALL));
    assert.deepEqual(calls.single, [`bucket/${partitionOf("pk-7")}`]);
    assert.deepEqual((await b.get("bucket", "pk-7", ""))?.entry, entry("pk-7", "", 2, "newer"));

    // A replica that cannot answer for many partitions (an older remise) is asked for each.
    calls.batched = [];
    calls.single = [];
    await a.merge(TABLE, [entry("pk-3", "", 2, "newer")]);
    const older: PartitionPeer = {
      ...counted(b.peer()),
      partitionDigests: () => Promise.resolve(undefined),
    };
    const fallback = await worker(older).runOnce();
    assert.equal(fallback.partitionsSynced, partitions.length);
    assert.equal(fallback.entriesSent, 1);
    assert.equal(calls.single.length, partitions.length * tables.length);
    assert.deepEqual((await b.get(TABLE, "pk-3", ""))?.entry, entry("pk-3", "", 2, "newer"));
  }));

Deno.test("AntiEntropyWorker refuses a replica that answers the wrong number of partition digests", () =>
  withReplicas(2, async (a, b) => {
    const pks = Array.from({ length: 12 }, (_, i) => `pk-${i}`);
    await mergeAll(a, TABLE, pks.map((pk) => entry(pk, "", 1, "a")));
    const partitions = [...new Set(pks.map(partitionOf))];
    const short: PartitionPeer = {
      ...b.peer(),
      partitionDigests: async (table, asked) =>
        (await b.peer().partitionDigests!(table, asked))!.slice(1),
    };
    const worker = workerOfTwo(a, short, partitions, { partitionsConcurrency: 1 });
    const pass = await worker.runOnce();
    assert.equal(pass.errors.length, 1);
    assert.match(
      pass.errors[0],
      new RegExp(`answered ${partitions.length - 1} partition digests, not ${partitions.length}`),
    );
    assert.equal(pass.partitionsSynced, 0);
    assert.equal(pass.entriesSent, 0, "nothing was exchanged with it");
  }));

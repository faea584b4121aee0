import assert from "node:assert/strict";
import { BlockStore, CorruptBlockError } from "./block_store.ts";
import { type ResyncEnvironment, ResyncQueue, ResyncWorker } from "./resync.ts";
import { KvStore } from "../db/kv_store.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { sha256Hex } from "../util/hash.ts";
import { RESYNC_DISK_PAUSE_MS, RESYNC_RETRY_MIN_MS } from "../util/limits.ts";
import { setLogFilter } from "../util/log.ts";
import { sleep } from "../util/worker.ts";

setLogFilter("error");

interface Fixture {
  dir: string;
  store: BlockStore;
  db: KvStore;
  queue: ResyncQueue;
  worker: ResyncWorker;
  clock: { now: number };
  /** Blocks the peers have. */
  peers: Map<string, Uint8Array>;
  refcounts: Map<string, number>;
  /** Hashes this node should not store (the layout moved them). */
  notHere: Set<string>;
  /** Blocks handed over; `offloadWorks` false makes offloading fail. */
  offloaded: Map<string, Uint8Array>;
  offloadWorks: boolean;
  fetches: string[];
  env: ResyncEnvironment;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "remise_resync_" });
  const store = await BlockStore.open(`${dir}/data`);
  const db = await KvStore.open(`${dir}/meta.kv`);
  const clock = { now: 1_000_000 };
  const mutex = new KeyedMutex();
  const f = {
    dir,
    store,
    db,
    clock,
    peers: new Map<string, Uint8Array>(),
    refcounts: new Map<string, number>(),
    notHere: new Set<string>(),
    offloaded: new Map<string, Uint8Array>(),
    offloadWorks: true,
    fetches: [] as string[],
  } as Fixture;
  f.env = {
    store,
    refcount: (hash) => Promise.resolve(f.refcounts.get(hash) ?? 0),
    shouldStore: (hash) => !f.notHere.has(hash),
    fetchFromPeers: (hash) => {
      f.fetches.push(hash);
      const data = f.peers.get(hash);
      return data
        ? Promise.resolve(data.slice())
        : Promise.reject(new Error(`no replica has block ${hash}`));
    },
    offloadToPeers: (hash, data) => {
      if (!f.offloadWorks) return Promise.resolve(false);
      f.offloaded.set(hash, data);
      return Promise.resolve(true);
    },
    lock: (hash) => mutex.acquire(`block\u0000${hash}`),
    nowMs: () => clock.now,
  };
  f.queue = new ResyncQueue(db, () => clock.now);
  f.worker = new ResyncWorker(f.queue, f.env);
  f.close = async () => {
    await f.worker.stop(1_000);
    db.close();
    await Deno.remove(dir, { recursive: true });
  };
  return f;
}

function block(text: string): { hash: string; data: Uint8Array } {
  const data = new TextEncoder().encode(text);
  return { hash: sha256Hex(data), data };
}

async function queueKeys(db: KvStore): Promise<unknown[][]> {
  const keys: unknown[][] = [];
  for await (const { key } of db.list({ prefix: ["resync", "q"] })) keys.push([key[2], key[3]]);
  return keys;
}

Deno.test("resync fetches a missing referenced block and stores it", async () => {
  const f = await fixture();
  try {
    const b = block("missing block");
    f.refcounts.set(b.hash, 1);
    f.peers.set(b.hash, b.data);
    await f.queue.enqueue(b.hash);
    assert.equal(await f.queue.length(), 1);
    assert.equal(await f.worker.processDue(), 1);
    assert.deepEqual(await f.store.read(b.hash), b.data);
    assert.equal(await f.queue.length(), 0);
    assert.deepEqual(await f.queue.errors(), []);
  } finally {
    await f.close();
  }
});

Deno.test("resync moves a corrupted file aside and fetches a correct copy", async () => {
  const f = await fixture();
  try {
    const b = block("will be corrupted");
    f.refcounts.set(b.hash, 1);
    f.peers.set(b.hash, b.data);
    await f.store.write(b.hash, b.data);
    await Deno.writeFile(f.store.pathOf(b.hash), new TextEncoder().encode("will be corruptеd"));
    await assert.rejects(() => f.store.read(b.hash), CorruptBlockError);
    await f.queue.enqueue(b.hash);
    assert.equal(await f.worker.processDue(), 1);
    assert.deepEqual(await f.store.read(b.hash), b.data);
    const aside = [...Deno.readDirSync(`${f.store.dataDir}/corrupt`)].map((e) => e.name);
    assert.equal(aside.length, 1);
    assert.ok(aside[0].startsWith(b.hash));
  } finally {
    await f.close();
  }
});

Deno.test("resync leaves a present block alone and does nothing for an unreferenced one", async () => {
  const f = await fixture();
  try {
    const present = block("present");
    const unreferenced = block("unreferenced");
    f.refcounts.set(present.hash, 2);
    await f.store.write(present.hash, present.data);
    await f.queue.enqueueMany([present.hash, unreferenced.hash]);
    assert.equal(await f.worker.processDue(), 2);
    assert.deepEqual(f.fetches, []);
    assert.equal(await f.store.has(present.hash), true);
    assert.equal(await f.store.has(unreferenced.hash), false);
    assert.equal(await f.queue.length(), 0);
  } finally {
    await f.close();
  }
});

Deno.test("a block not to be stored here is offloaded then deleted, and kept while offloading fails", async () => {
  const f = await fixture();
  try {
    const b = block("moved away");
    f.refcounts.set(b.hash, 1);
    f.notHere.add(b.hash);
    await f.store.write(b.hash, b.data);

    f.offloadWorks = false;
    await f.queue.enqueue(b.hash);
    assert.equal(await f.worker.processDue(), 1);
    assert.equal(await f.store.has(b.hash), true, "not deleted when offloading failed");
    const [error] = await f.queue.errors();
    assert.equal(error.hash, b.hash);
    assert.match(error.lastError, /Cannot hand block/);

    f.offloadWorks = true;
    f.clock.now += RESYNC_RETRY_MIN_MS;
    assert.equal(await f.worker.processDue(), 1);
    assert.deepEqual(f.offloaded.get(b.hash), b.data);
    assert.equal(await f.store.has(b.hash), false);
    assert.deepEqual(await f.queue.errors(), []);
    assert.equal(await f.queue.length(), 0);
  } finally {
    await f.close();
  }
});

Deno.test("failures back off exponentially, show in errors() and clear after success", async () => {
  const f = await fixture();
  try {
    const b = block("nobody has it yet");
    f.refcounts.set(b.hash, 1);
    const t0 = f.clock.now;
    await f.queue.enqueue(b.hash);
    assert.equal(await f.worker.processDue(), 1);
    let [error] = await f.queue.errors();
    assert.deepEqual(
      { attempts: error.attempts, lastTryMs: error.lastTryMs, nextTryMs: error.nextTryMs },
      { attempts: 1, lastTryMs: t0, nextTryMs: t0 + RESYNC_RETRY_MIN_MS },
    );
    assert.match(error.lastError, /no replica has block/);

    assert.equal(await f.worker.processDue(), 0, "not retried before its time");
    f.clock.now = t0 + RESYNC_RETRY_MIN_MS;
    assert.equal(await f.worker.processDue(), 1);
    [error] = await f.queue.errors();
    assert.equal(error.attempts, 2);
    assert.equal(error.nextTryMs, f.clock.now + 2 * RESYNC_RETRY_MIN_MS);

    f.clock.now += RESYNC_RETRY_MIN_MS;
    assert.equal(await f.worker.processDue(), 0);
    f.peers.set(b.hash, b.data);
    f.clock.now += RESYNC_RETRY_MIN_MS;
    assert.equal(await f.worker.processDue(), 1);
    assert.deepEqual(await f.store.read(b.hash), b.data);
    assert.deepEqual(await f.queue.errors(), []);
    assert.equal(await f.queue.length(), 0);
    assert.deepEqual(f.fetches.length, 3);
  } finally {
    await f.close();
  }
});

Deno.test("a data disk that refuses blocks pauses resync instead of fetching every block for nothing", async () => {
  const f = await fixture();
  const write = f.store.write.bind(f.store);
  try {
    const blocks = ["a", "b", "c", "d", "e"].map((t) => block(`refused ${t}`));
    for (const b of blocks) {
      f.refcounts.set(b.hash, 1);
      f.peers.set(b.hash, b.data);
      await f.queue.enqueue(b.hash);
    }
    f.store.write = () => Promise.reject(new Error("Read-only file system (os error 30)"));
    const first = await f.worker.processDue();
    assert.ok(first >= 1 && first <= 2, `stopped after the blocks in flight (${first})`);
    assert.equal(f.fetches.length, first);
    f.clock.now += RESYNC_DISK_PAUSE_MS - 1;
    assert.equal(await f.worker.processDue(), 0, "nothing fetched while paused");
    assert.equal(f.fetches.length, first);
    const [error] = await f.queue.errors();
    assert.match(error.lastError, /Read-only file system/);

    f.store.write = write;
    f.clock.now += 1;
    assert.equal(await f.worker.processDue(), blocks.length);
    for (const b of blocks) assert.deepEqual(await f.store.read(b.hash), b.data);
    assert.deepEqual(await f.queue.errors(), []);
  } finally {
    f.store.write = write;
    await f.close();
  }
});

Deno.test("clearError forgets the record but keeps the block queued", async () => {
  const f = await fixture();
  try {
    const b = block("error to clear");
    f.refcounts.set(b.hash, 1);
    await f.queue.enqueue(b.hash);
    await f.worker.processDue();
    assert.equal((await f.queue.errors()).length, 1);
    await f.queue.clearError(b.hash);
    assert.deepEqual(await f.queue.errors(), []);
    assert.equal(await f.queue.length(), 1);
  } finally {
    await f.close();
  }
});

Deno.test("the queue is ordered by due time and holds each hash once", async () => {
  const f = await fixture();
  try {
    const [a, b, c] = ["a", "b", "c"].map((t) => block(t).hash);
    const t0 = f.clock.now;
    await f.queue.enqueue(a, 5_000);
    await f.queue.enqueue(b, 1_000);
    await f.queue.enqueue(c);
    await f.queue.enqueue(a, 10_000); // already queued sooner: stays
    await f.queue.enqueue(c, 3_000);
    assert.equal(await f.queue.length(), 3);
    assert.deepEqual(await queueKeys(f.db), [[t0, c], [t0 + 1_000, b], [t0 + 5_000, a]]);
    assert.deepEqual((await f.queue.due()).map((i) => i.hash), [c]);
    assert.equal(await f.queue.nextDueMs(), t0);

    await f.queue.enqueue(a, 500); // queued later: moved sooner
    assert.deepEqual(await queueKeys(f.db), [[t0, c], [t0 + 500, a], [t0 + 1_000, b]]);
    f.clock.now = t0 + 1_000;
    assert.deepEqual((await f.queue.due()).map((i) => i.hash), [c, a, b]);
    assert.equal(await f.queue.length(), 3);
  } finally {
    await f.close();
  }
});

Deno.test("an enqueue while the block is being resynced queues it again afterwards", async () => {
  const f = await fixture();
  try {
    const b = block("in flight");
    f.refcounts.set(b.hash, 1);
    f.peers.set(b.hash, b.data);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    const fetch = f.env.fetchFromPeers;
    f.env.fetchFromPeers = async (hash) => {
      await gate;
      return await fetch(hash);
    };
    await f.queue.enqueue(b.hash);
    const processing = f.worker.processDue();
    while (f.fetches.length === 0 && f.queue.inFlight === 0) await sleep(1);
    await f.queue.enqueue(b.hash, 0);
    release();
    assert.equal(await processing, 1);
    assert.equal(await f.queue.length(), 1, "queued again");
    assert.equal(await f.worker.processDue(), 1);
    assert.equal(await f.queue.length(), 0);
  } finally {
    await f.close();
  }
});

Deno.test("enqueueAll queues every local block; the running worker picks them up and stops promptly", async () => {
  const f = await fixture();
  try {
    const blocks = Array.from({ length: 5 }, (_, i) => block(`local ${i}`));
    for (const b of blocks) {
      await f.store.write(b.hash, b.data);
      f.refcounts.set(b.hash, 1);
    }
    f.notHere.add(blocks[0].hash);
    assert.equal(await f.queue.enqueueAll(f.store), 5);
    assert.equal(await f.queue.length(), 5);
    f.worker.start();
    const start = Date.now();
    while ((await f.queue.length()) > 0) {
      assert.ok(Date.now() - start < 5_000, "the worker empties the queue");
      await sleep(10);
    }
    assert.equal(await f.store.has(blocks[0].hash), false);
    assert.ok(f.offloaded.has(blocks[0].hash));
    const stopped = Date.now();
    assert.equal(await f.worker.stop(1_000), true);
    assert.ok(Date.now() - stopped < 1_000);
    const status = f.worker.status();
    assert.equal(status.name, "block resync");
    assert.equal(status.state, "stopped");
  } finally {
    await f.close();
  }
});

Deno.test("doneUpTo: the blocks queued by a time are fetched, later ones do not count, a failure does", async () => {
  const f = await fixture();
  try {
    const [first, later, missing] = ["queued first", "queued later", "nowhere"].map(block);
    for (const b of [first, later, missing]) f.refcounts.set(b.hash, 1);
    f.peers.set(first.hash, first.data);
    f.peers.set(later.hash, later.data);
    await f.queue.enqueue(first.hash);
    const queuedMs = f.queue.nowMs();
    f.clock.now += 1;
    await f.queue.enqueue(later.hash); // a block of a write made since
    assert.equal(await f.queue.doneUpTo(queuedMs), false);
    const [item] = await f.queue.due(1);
    assert.equal(item.hash, first.hash);
    assert.ok(await f.queue.claim(item));
    assert.equal(await f.queue.doneUpTo(queuedMs), false, "being fetched is not done");
    await f.queue.succeed(item);
    assert.equal(await f.queue.doneUpTo(queuedMs), true, "the later block still queued");
    await f.queue.enqueue(missing.hash);
    assert.equal(await f.worker.processDue(), 2);
    assert.equal(await f.queue.doneUpTo(queuedMs), false, "a block that could not be fetched");
  } finally {
    await f.close();
  }
});

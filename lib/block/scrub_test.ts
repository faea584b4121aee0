import assert from "node:assert/strict";
import { BlockStore } from "./block_store.ts";
import { ResyncQueue, ResyncWorker } from "./resync.ts";
import { ScrubWorker } from "./scrub.ts";
import { KvStore } from "../db/kv_store.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { sha256Hex } from "../util/hash.ts";
import { setLogFilter } from "../util/log.ts";
import { sleep } from "../util/worker.ts";

setLogFilter("error");

async function fixture(blockCount: number) {
  const dir = await Deno.makeTempDir({ prefix: "remise_scrub_" });
  const store = await BlockStore.open(`${dir}/data`);
  const db = await KvStore.open(`${dir}/meta.kv`);
  const clock = { now: 5_000_000 };
  const mutex = new KeyedMutex();
  const lock = (hash: string) => mutex.acquire(`block\u0000${hash}`);
  const nowMs = () => clock.now;
  const queue = new ResyncQueue(db, nowMs);
  const blocks = Array.from({ length: blockCount }, (_, i) => {
    const data = new TextEncoder().encode(`scrubbed block ${i} `.repeat(100));
    return { hash: sha256Hex(data), data };
  });
  for (const b of blocks) await store.write(b.hash, b.data);
  const peers = new Map(blocks.map((b) => [b.hash, b.data]));
  const resync = new ResyncWorker(queue, {
    store,
    refcount: () => Promise.resolve(1),
    shouldStore: () => true,
    fetchFromPeers: (hash) => {
      const data = peers.get(hash);
      return data ? Promise.resolve(data.slice()) : Promise.reject(new Error("no copy"));
    },
    offloadToPeers: () => Promise.resolve(true),
    lock,
    nowMs,
  });
  const workers: ScrubWorker[] = [];
  const scrubber = (options: ConstructorParameters<typeof ScrubWorker>[1] = {}) => {
    const w = new ScrubWorker({ store, queue, db, lock, nowMs }, {
      diskTimeFraction: 1,
      ...options,
    });
    workers.push(w);
    return w;
  };
  const corrupt = (hash: string) => {
    const bytes = Deno.readFileSync(store.pathOf(hash));
    bytes[7] ^= 0x20;
    Deno.writeFileSync(store.pathOf(hash), bytes);
  };
  const close = async () => {
    for (const w of workers) await w.stop(1_000);
    await resync.stop(1_000);
    db.close();
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, store, db, queue, resync, clock, blocks, scrubber, corrupt, close };
}

Deno.test("scrub finds a corrupted file, moves it aside and queues it; resync restores a correct copy", async () => {
  const f = await fixture(6);
  try {
    const bad = f.blocks[2];
    f.corrupt(bad.hash);
    const scrub = f.scrubber();
    const result = await scrub.runOnce();
    assert.deepEqual(
      {
        checked: result.checked,
        corrupt: result.corrupt,
        unreadable: result.unreadable,
        completed: result.completed,
      },
      { checked: 6, corrupt: 1, unreadable: 0, completed: true },
    );
    assert.equal(await f.store.has(bad.hash), false, "the bad file is no longer in place");
    const aside = [...Deno.readDirSync(`${f.store.dataDir}/corrupt`)].map((e) => e.name);
    assert.equal(aside.length, 1);
    assert.ok(aside[0].startsWith(bad.hash));
    assert.deepEqual((await f.queue.due()).map((i) => i.hash), [bad.hash], "queued with no delay");

    assert.equal(await f.resync.processDue(), 1);
    assert.deepEqual(await f.store.read(bad.hash), bad.data);
    assert.equal(await f.queue.length(), 0);

    const again = await scrub.runOnce();
    assert.equal(again.checked, 6);
    assert.equal(again.corrupt, 0);
    assert.deepEqual(await scrub.lastPass(), again);
    assert.match(scrub.status().progress ?? "", /6 blocks checked, 0 corrupt/);
  } finally {
    await f.close();
  }
});

Deno.test("a scrub pass cut short by its signal says so; a second pass at once is refused", async () => {
  const f = await fixture(20);
  try {
    const scrub = f.scrubber({ diskTimeFraction: 0.5, stepMs: 1 });
    const controller = new AbortController();
    const running = scrub.runOnce(controller.signal);
    assert.equal(scrub.scrubbing, true);
    await assert.rejects(() => scrub.runOnce(), /already running/);
    assert.equal(scrub.startPass(), false);
    controller.abort();
    const result = await running;
    assert.equal(result.completed, false);
    assert.ok(result.checked < 20);
    assert.equal(scrub.scrubbing, false);
  } finally {
    await f.close();
  }
});

Deno.test("the background scrub waits for its interval, runs a pass on request, and stops promptly", async () => {
  const f = await fixture(4);
  try {
    f.corrupt(f.blocks[0].hash);
    const scrub = f.scrubber();
    scrub.start();
    await sleep(50);
    assert.equal(
      await scrub.lastPass(),
      undefined,
      "no pass at first start: the interval counts from now",
    );
    assert.equal(scrub.startPass(), true);
    const start = Date.now();
    while ((await scrub.lastPass()) === undefined) {
      assert.ok(Date.now() - start < 5_000, "the requested pass finishes");
      await sleep(10);
    }
    const last = (await scrub.lastPass())!;
    assert.equal(last.checked, 4);
    assert.equal(last.corrupt, 1);
    assert.equal(await f.queue.length(), 1);
    assert.match(scrub.status().progress ?? "", /last pass .*4 blocks checked, 1 corrupt/);
    const stopped = Date.now();
    assert.equal(await scrub.stop(1_000), true);
    assert.ok(Date.now() - stopped < 1_000);
    assert.equal(scrub.status().state, "stopped");

    // The next background pass is due one interval after the last one.
    const next = f.scrubber({ intervalMs: 1_000 });
    f.clock.now += 1_000;
    next.start();
    const t = Date.now();
    while ((await next.lastPass())?.startedMs !== f.clock.now) {
      assert.ok(Date.now() - t < 5_000, "the periodic pass runs");
      await sleep(10);
    }
  } finally {
    await f.close();
  }
});

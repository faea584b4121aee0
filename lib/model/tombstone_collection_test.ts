import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { deleteObject } from "./objects.ts";
import { Store } from "./store.ts";
import { Twins } from "./_test_replications.ts";
import { collectTombstones } from "../table/tombstone_gc.ts";

Deno.test("a tombstone collection pass stops at once when the node stops, and collects when it runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-tombstone-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication: new Twins(),
    });
    // In a cluster, a deletion is written as a tombstone.
    for (const key of ["a", "b", "c"]) assert.ok(await deleteObject(store, "bucket-id", key));
    const later = { delayMs: 0, nowMs: () => Date.now() + 1_000 };
    const stopped = AbortSignal.abort();
    assert.equal(
      await collectTombstones(store.tables, db, store.replication, { ...later, signal: stopped }),
      0,
    );
    assert.equal(await collectTombstones(store.tables, db, store.replication, later), 3);
    assert.equal(await collectTombstones(store.tables, db, store.replication, later), 0);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

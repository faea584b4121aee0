/**
 * Released data stays released: a block entry that a write cut short left
 * on a replica down during the release comes back by anti-entropy, and the
 * released marker ends it, whichever of the two reaches a node first.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { ReplicaDown } from "./_test_replications.ts";
import { Store } from "./store.ts";
import { releasedMarker, type VersionBlock } from "./version_table.ts";

const DATA_ID = "released-data";
const HASHES = ["a", "b", "c"].map((c) => c.repeat(64));

/** A node of a cluster whose other replica is down, and seen so: its tombstones are kept. */
class ReplicaSeenDown extends ReplicaDown {
  override isUp(node: string): boolean {
    return node !== "down";
  }
}

async function withNode(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-released-marker-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication: new ReplicaSeenDown(),
    });
    await fn(store);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function block(index: number): VersionBlock {
  return { dataId: DATA_ID, offset: index * 1024, hash: HASHES[index], size: 1024, deleted: false };
}

/** Each block's state on this node: its entry (live or deleted) and its block reference. */
async function states(store: Store): Promise<string[]> {
  const found: string[] = [];
  for (const [index, hash] of HASHES.entries()) {
    const entry = await store.versions.getLocal(
      DATA_ID,
      block(index).offset.toString().padStart(16, "0"),
    );
    const ref = await store.blockRefs.getLocal(hash, DATA_ID);
    const live = (deleted: boolean | undefined) =>
      deleted === undefined ? "absent" : deleted ? "deleted" : "live";
    found.push(`entry ${live(entry?.deleted)}, ref ${live(ref?.deleted)}`);
  }
  return found;
}

Deno.test("a block entry that reaches a node after its data was released is stored deleted", async () => {
  await withNode(async (store) => {
    await store.versions.applyLocal([block(0), block(1)]);
    await store.releaseData(DATA_ID);
    // The third block's entry, written only on the replica that was down, comes back.
    await store.versions.applyLocal([block(2)]);
    assert.deepEqual(await states(store), [
      "entry deleted, ref deleted",
      "entry deleted, ref deleted",
      "entry deleted, ref absent",
    ]);
    assert.equal(await store.blocks.refcount(HASHES[2]), 0);
  });
});

Deno.test("a node that was down while data was released deletes its entries when the marker reaches it", async () => {
  await withNode(async (store) => {
    await store.versions.applyLocal([block(0), block(1), block(2)]);
    const marker = releasedMarker(DATA_ID, Date.now());
    // Anti-entropy brings the tombstones of the blocks the release saw, and the marker.
    await store.versions.applyLocal([
      { ...block(0), deleted: true, deletedMs: marker.deletedMs },
      marker,
    ]);
    assert.deepEqual(await states(store), [
      "entry deleted, ref deleted",
      "entry deleted, ref deleted",
      "entry deleted, ref deleted",
    ]);
    for (const hash of HASHES) assert.equal(await store.blocks.refcount(hash), 0);
    // Ended as of the marker, the tombstone is the same on every replica that ends it.
    const ended = await store.versions.getLocal(DATA_ID, "0000000000002048");
    assert.equal(ended?.deletedMs, marker.deletedMs);
  });
});

Deno.test("rederiving block references (repair versions) writes those of blocks, none for a marker", async () => {
  await withNode(async (store) => {
    await store.versions.applyLocal([block(0), block(1), block(2)]);
    await store.releaseData(DATA_ID);
    const kept = { ...block(2), dataId: "kept" };
    await store.versions.applyLocal([kept]);
    const entries: VersionBlock[] = [kept];
    for await (const v of store.versions.scan(DATA_ID)) entries.push(v);
    assert.equal(entries.length, 5, "four block entries and the marker");
    assert.equal(await store.rederiveBlockRefs(asyncOf(entries)), 4);
    assert.equal(await store.blockRefs.getLocal("", DATA_ID), undefined, "none for a marker");
    assert.equal((await store.blockRefs.getLocal(HASHES[2], "kept"))?.deleted, false);
    assert.deepEqual(await states(store), Array(3).fill("entry deleted, ref deleted"));
  });
});

async function* asyncOf<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

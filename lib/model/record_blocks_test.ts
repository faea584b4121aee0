/**
 * New blocks' references are written by the writer of their version entries
 * (`Store#recordBlocks`), once; the replicas of those entries derive them
 * only from entries whose writer may be gone (anti-entropy, a read's
 * repair), and derive every deletion.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import { Store } from "./store.ts";
import { getCurrent, putObject } from "./objects.ts";
import type { VersionBlock } from "./version_table.ts";
import type { BlockRef } from "./block_ref_table.ts";

const DATA_ID = "recorded-data";
const HASHES = ["a", "b"].map((c) => c.repeat(64));

/** A node that is every replica (but keeps its tombstones), remembering each block reference sent. */
class RefsSent extends LocalReplication {
  override readonly nodeId: string = "this-node";
  readonly refsSent: string[] = [];
  /** While set, no replica takes a block reference (their write fails for want of a quorum). */
  refsRefused = false;
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (path === "table/block_ref/update") {
      if (this.refsRefused) return Promise.reject(new Error("connection refused"));
      for (const ref of (message.body as { entries: BlockRef[] }).entries) {
        this.refsSent.push(`${ref.hash.slice(0, 1)} ${ref.deleted ? "deleted" : "live"}`);
      }
    }
    return super.call(node, path, message);
  }
}

async function withStore(fn: (store: Store, replication: RefsSent) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "remise-record-blocks-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const replication = new RefsSent();
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication,
    });
    await fn(store, replication);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function block(index: number): VersionBlock {
  return { dataId: DATA_ID, offset: index * 1024, hash: HASHES[index], size: 1024, deleted: false };
}

async function refState(store: Store, index: number): Promise<string> {
  const ref = await store.blockRefs.getLocal(HASHES[index], DATA_ID);
  const live = ref === undefined ? "absent" : ref.deleted ? "deleted" : "live";
  return `${live}, refcount ${await store.blocks.refcount(HASHES[index])}`;
}

Deno.test("recorded blocks get their version entries and their references, each reference sent once", async () => {
  await withStore(async (store, replication) => {
    await store.recordBlocks([block(0), block(1)]);
    assert.deepEqual(
      [await store.versions.getLocal(DATA_ID, "0000000000000000"), await refState(store, 0)],
      [block(0), "live, refcount 1"],
    );
    assert.equal(await refState(store, 1), "live, refcount 1");
    assert.deepEqual(replication.refsSent.sort(), ["a live", "b live"]);
  });
});

Deno.test("a replica leaves a new block's reference to the entry's writer, but derives those of entries anti-entropy brings", async () => {
  await withStore(async (store, replication) => {
    await store.versions.applyLocal([block(0)], { writerDerives: true });
    assert.equal(await refState(store, 0), "absent, refcount 0");
    await store.versions.applyLocal([block(1)]);
    assert.equal(await refState(store, 1), "live, refcount 1");
    assert.deepEqual(replication.refsSent, ["b live"]);
  });
});

Deno.test("a replica derives a block's deletion even from the entry's writer", async () => {
  await withStore(async (store, replication) => {
    await store.recordBlocks([block(0)]);
    const deletedMs = Date.now();
    await store.versions.applyLocal([{ ...block(0), deleted: true, deletedMs }], {
      writerDerives: true,
    });
    assert.equal(await refState(store, 0), "deleted, refcount 0");
    assert.deepEqual(replication.refsSent, ["a live", "a deleted"]);
  });
});

Deno.test("an upload whose block references cannot be written fails, and its object does not show", async () => {
  await withStore(async (store, replication) => {
    replication.refsRefused = true;
    const body = new Blob([crypto.getRandomValues(new Uint8Array(3000))]).stream();
    await assert.rejects(
      putObject(store, "bucket-id", "k", body, { headers: [], maxSize: 1 << 20 }),
    );
    assert.equal(await getCurrent(store, "bucket-id", "k"), undefined);
  });
});

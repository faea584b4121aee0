import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import { lww } from "../util/crdt.ts";
import { Access } from "./access.ts";
import { Store } from "./store.ts";

/** This node with two peers seen up: "told" answers every call, "gone" fails them all. */
class TwoPeers extends LocalReplication {
  readonly told: string[] = [];

  override peersUp(): string[] {
    return ["told", "gone"];
  }

  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node === "told") {
      this.told.push(path);
      return Promise.resolve({ body: null });
    }
    if (node === "gone") return Promise.reject(new Error("connection reset"));
    return super.call(node, path, message);
  }
}

async function withAccess(fn: (access: Access, store: Store, peers: TwoPeers) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "remise-access-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const replication = new TwoPeers();
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1 << 20,
      replication,
    });
    await fn(new Access(store), store, replication);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a bucket's change is told to the peers seen up; one that cannot be told does not fail it", () =>
  withAccess(async (access, _store, peers) => {
    const bucket = await access.createBucket("photos");
    await access.setSetting(bucket, "versioning", "Enabled");
    assert.deepEqual(peers.told, ["access/forget"]);
    assert.equal((await access.resolveBucketCached("photos"))?.versioning?.v, "Enabled");
  }));

Deno.test("told of a change through another node, a node drops the buckets it reuses", () =>
  withAccess(async (access, store, peers) => {
    const bucket = await access.createBucket("photos");
    assert.equal((await access.resolveBucketCached("photos"))?.versioning, undefined);
    // Written as another node writes it: this node's cache does not know.
    await store.buckets.insert({ ...bucket, versioning: lww(store.nowMs(), "Enabled") });
    assert.equal((await access.resolveBucketCached("photos"))?.versioning, undefined, "reused");
    await peers.call(peers.nodeId, "access/forget", { body: null });
    assert.equal((await access.resolveBucketCached("photos"))?.versioning?.v, "Enabled");
  }));

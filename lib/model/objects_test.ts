import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { deleteObject, getCurrent, putObject } from "./objects.ts";
import { Store } from "./store.ts";

const BUCKET = "bucket-id";

/** A metadata store in a new directory, removed after `fn`. */
async function withDb(fn: (db: KvStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-objects-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    await fn(db, dir);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function bodyOf(content: string | Uint8Array): ReadableStream<Uint8Array> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (controller.byobRequest && bytes.byteLength === 0) {
        controller.close();
        controller.byobRequest.respond(0);
        return;
      }
      controller.enqueue(bytes.slice());
      controller.close();
      controller.byobRequest?.respond(0);
    },
  });
}

Deno.test("a lone store timestamps writes after what it holds, even with its clock behind", () =>
  withDb(async (db, dir) => {
    let clock = 1_000_000;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1 << 20,
      nowMs: () => clock,
    });
    const put = (text: string) =>
      putObject(store, BUCKET, "k", bodyOf(text), {
        headers: [],
        maxSize: 1 << 20,
        sizeHint: new TextEncoder().encode(text).byteLength,
      });
    const first = await put("one");
    clock -= 60_000; // the clock goes back a minute
    const second = await put("two");
    assert.ok(second.version.timestampMs > first.version.timestampMs);
    // Concurrent writes of one key: each newer than the one committed before it.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => put(`v${i}`)));
    const stamps = many.map((w) => w.version.timestampMs);
    assert.equal(new Set(stamps).size, stamps.length, "no two versions share a timestamp");
    const newest = many.reduce((a, b) => a.version.timestampMs > b.version.timestampMs ? a : b);
    const current = await getCurrent(store, BUCKET, "k");
    assert.equal(current?.version.uuid, newest.version.uuid, "the newest version is current");

    assert.equal(await deleteObject(store, BUCKET, "k"), true);
    assert.equal(await getCurrent(store, BUCKET, "k"), undefined);
    assert.equal(await deleteObject(store, BUCKET, "k"), false, "nothing left to delete");
    await put("three");
    const data = (await getCurrent(store, BUCKET, "k"))?.data;
    assert.equal(data?.type, "inline");
    assert.equal(new TextDecoder().decode((data as { bytes: Uint8Array }).bytes), "three");
  }));

Deno.test("concurrent writes keep a cluster store's Merkle leaf digests exact", () =>
  withDb(async (db, dir) => {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1 << 20,
      antiEntropy: true,
    });
    const put = (key: string) =>
      putObject(store, BUCKET, key, bodyOf(key), {
        headers: [],
        maxSize: 1 << 20,
        sizeHint: key.length,
      });
    // One bucket is one partition: 400 keys share its 256 leaves.
    await Promise.all(Array.from({ length: 300 }, (_, i) => put(`key-${i}`)));
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => deleteObject(store, BUCKET, `key-${i}`)),
    );
    // Inserts go through applyLocal, as replicas apply what a coordinator sends.
    await Promise.all(Array.from({ length: 100 }, (_, i) =>
      store.objects.insert({
        bucketId: BUCKET,
        key: `inserted-${i}`,
        versions: [{
          uuid: crypto.randomUUID(),
          timestampMs: 1_000 + i,
          state: {
            state: "complete",
            data: {
              type: "inline",
              meta: { size: 0, etag: "e", headers: [] },
              bytes: new Uint8Array(),
            },
          },
        }],
      })));
    const partition = store.objects.partitionOf(BUCKET);
    const stored = async function* () {
      for await (const { key, value } of db.list({ prefix: ["t", "object", partition] })) {
        yield { pk: key[3] as string, sk: key[4] as string, entry: value };
      }
    };
    const check = await store.merkle!.rebuild("object", partition, stored());
    assert.equal(check.items, 400);
    assert.equal(check.leavesChanged, 0, "every leaf digest was right");
    assert.equal(check.changed, 0, "every item hash was right");
  }));

Deno.test("every block of an object is referenced once it is written, and released with it", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize });
    // 12 blocks: 10 distinct, and block 0's content again as blocks 5 and 11.
    const blocks = Array.from({ length: 12 }, (_, i) => {
      const n = i === 5 || i === 11 ? 0 : i;
      return new Uint8Array(blockSize).fill(n + 1);
    });
    const body = new Uint8Array(blocks.length * blockSize);
    blocks.forEach((b, i) => body.set(b, i * blockSize));
    await putObject(store, BUCKET, "big", bodyOf(body), {
      headers: [],
      maxSize: 1 << 20,
      sizeHint: body.byteLength,
    });
    const data = (await getCurrent(store, BUCKET, "big"))?.data;
    assert.equal(data?.type, "parts");
    const dataId = (data as { parts: { dataId: string }[] }).parts[0].dataId;
    const hashes = new Set<string>();
    for await (const block of store.versions.scan(dataId)) hashes.add(block.hash);
    assert.equal(hashes.size, 10, "ten distinct blocks");
    for (const hash of hashes) {
      assert.equal(await store.blocks.refcount(hash), 1, `block ${hash} is referenced once`);
    }

    assert.equal(await deleteObject(store, BUCKET, "big"), true);
    for (const hash of hashes) {
      assert.equal(await store.blocks.refcount(hash), 0, `block ${hash} is released`);
    }
  }));

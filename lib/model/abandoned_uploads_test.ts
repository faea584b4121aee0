import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { abortAbandonedUploads } from "./abandoned_uploads.ts";
import { writeData } from "./object_data.ts";
import type { ObjectEntry, ObjectVersion } from "./object_table.ts";
import { Store } from "./store.ts";

const BUCKET = "bucket-id";
const DAY_MS = 24 * 3600 * 1000;

function bodyOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

Deno.test("single uploads left 'uploading' past the age are aborted and release their blocks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-abandoned-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    let clock = 100 * DAY_MS;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      nowMs: () => clock,
    });
    // What a PutObject leaves when its node dies mid-upload: blocks stored
    // and referenced, the version "uploading".
    const upload = async (key: string, startedMs: number, multipart = false) => {
      const uuid = crypto.randomUUID();
      await writeData(store, bodyOf(new Uint8Array(3000).fill(key.length)), {
        dataId: uuid,
        maxSize: 1 << 20,
        allowInline: false,
      });
      const version: ObjectVersion = {
        uuid,
        timestampMs: startedMs,
        state: { state: "uploading", multipart, headers: [] },
      };
      await store.objects.insert({ bucketId: BUCKET, key, versions: [version] });
      const hashes: string[] = [];
      for await (const b of store.versions.scan(uuid)) hashes.push(b.hash);
      assert.equal(hashes.length, 3);
      return { uuid, hashes };
    };
    const old = await upload("old", clock - 8 * DAY_MS);
    const recent = await upload("recent", clock - DAY_MS);
    const multipart = await upload("multipart", clock - 30 * DAY_MS, true);
    const refcounts = async (hashes: string[]) =>
      await Promise.all(hashes.map((h) => store.blocks.refcount(h)));
    assert.deepEqual(await refcounts(old.hashes), [1, 1, 1]);

    const entries = async function* (): AsyncIterable<ObjectEntry> {
      for await (const e of store.objects.scan(BUCKET)) yield e;
    };
    assert.equal(await abortAbandonedUploads(store, entries(), 7 * DAY_MS), 1);
    const state = async (key: string) =>
      (await store.objects.get(BUCKET, key))?.versions.map((v) => v.state.state);
    // An entry left with only an aborted upload records nothing else: a store
    // that runs alone (every replica) drops it at once.
    assert.equal(await state("old"), undefined);
    assert.deepEqual(await state("recent"), ["uploading"]);
    assert.deepEqual(await state("multipart"), ["uploading"]);
    // The release runs after the commit: wait for the counts to drop.
    for (let i = 0; i < 50 && (await refcounts(old.hashes)).some((c) => c > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(await refcounts(old.hashes), [0, 0, 0]);
    assert.deepEqual(await refcounts(recent.hashes), [1, 1, 1]);
    assert.deepEqual(await refcounts(multipart.hashes), [1, 1, 1]);

    // A week later the other single upload is abandoned too; a second pass finds nothing new.
    clock += 7 * DAY_MS;
    assert.equal(await abortAbandonedUploads(store, entries(), 7 * DAY_MS), 1);
    assert.equal(await abortAbandonedUploads(store, entries(), 7 * DAY_MS), 0);
    assert.equal(await state("recent"), undefined);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

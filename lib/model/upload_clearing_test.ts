import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import type { Replication } from "../rpc/replication.ts";
import { ReplicaDown, Twins } from "./_test_replications.ts";
import { collectTombstones } from "../table/tombstone_gc.ts";
import { abortUpload, completeUpload, createUpload, getUpload, uploadPart } from "./multipart.ts";
import { commitChecked, getCurrent } from "./objects.ts";
import { clearEndedUploads } from "./ended_uploads.ts";
import type { MultipartUpload, UploadedPart } from "./mpu_table.ts";
import { Store } from "./store.ts";

const BUCKET = "bucket-id";
const BLOCK_SIZE = 1024;
const HOUR_MS = 3600 * 1000;

async function withStore(
  fn: (store: Store, db: KvStore) => Promise<void>,
  options: { replication?: Replication; nowMs?: () => number; blockSize?: number } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-upload-clearing-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: options.blockSize ?? BLOCK_SIZE,
      ...options,
    });
    await fn(store, db);
    await store.releases.settled();
    // Commits end in order: this one after the journal's, which an upload forgets after its answer.
    await db.commit([{ type: "delete", key: ["test", "barrier"] }]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function bodyOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Three blocks of random bytes. */
function randomBody(): ReadableStream<Uint8Array> {
  return bodyOf(crypto.getRandomValues(new Uint8Array(3 * BLOCK_SIZE)));
}

async function putPart(store: Store, key: string, uploadId: string, partNumber: number) {
  return await uploadPart(
    store,
    await getUpload(store, BUCKET, key, uploadId),
    partNumber,
    randomBody(),
    {},
  );
}

/** How many of the data's block entries are live (not released). */
async function liveBlocks(store: Store, dataId: string): Promise<number> {
  let live = 0;
  for await (const block of store.versions.scan(dataId)) if (!block.deleted) live++;
  return live;
}

/** How many block entries of any data this node stores are live. */
async function allLiveBlocks(db: KvStore): Promise<number> {
  let live = 0;
  for await (
    const { value } of db.list<{ entry: { deleted: boolean } }>({ prefix: ["t", "version"] })
  ) {
    if (!value.entry.deleted) live++;
  }
  return live;
}

/** Every entry of the mpu table this node stores, tombstones included. */
async function storedUploads(db: KvStore): Promise<MultipartUpload[]> {
  const entries: MultipartUpload[] = [];
  for await (const { value } of db.list<{ entry: MultipartUpload }>({ prefix: ["t", "mpu"] })) {
    entries.push(value.entry);
  }
  return entries;
}

Deno.test("a completed upload's entry is cleared: its unused parts are released, its object keeps the others", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const used = await putPart(store, "k", uploadId, 1);
    const unused = await putPart(store, "k", uploadId, 2);
    await completeUpload(store, await getUpload(store, BUCKET, "k", uploadId), [
      { partNumber: 1, etag: used.etag },
    ]);
    assert.deepEqual(await storedUploads(db), [], "a lone node removes the entry at once");
    assert.equal(await liveBlocks(store, used.dataId), 3);
    assert.equal(await liveBlocks(store, unused.dataId), 0);
    assert.equal((await getCurrent(store, BUCKET, "k"))?.data.meta.size, 3 * BLOCK_SIZE);
  }));

Deno.test("an aborted upload's entry is cleared once its parts are released", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const parts = [await putPart(store, "k", uploadId, 1), await putPart(store, "k", uploadId, 2)];
    await abortUpload(store, await getUpload(store, BUCKET, "k", uploadId));
    await store.releases.settled();
    assert.deepEqual(await storedUploads(db), []);
    for (const part of parts) assert.equal(await liveBlocks(store, part.dataId), 0);
  }));

/**
 * A part whose upload began before its upload's abort, and is recorded once
 * the entry is gone (removed at once alone; in a cluster, once its tombstone
 * is collected): it gets NoSuchUpload, releases its data, and brings no
 * entry back.
 */
async function recordLatePart(store: Store, db: KvStore, collectTombstone: boolean) {
  const uploadId = await createUpload(store, BUCKET, "k", []);
  const active = await getUpload(store, BUCKET, "k", uploadId);
  await abortUpload(store, active);
  await store.releases.settled();
  if (collectTombstone) {
    const later = { delayMs: 0, nowMs: () => Date.now() + 1_000 };
    assert.equal(await collectTombstones([store.uploads], db, store.replication, later), 1);
  }
  assert.deepEqual(await storedUploads(db), []);
  const late = await uploadPart(store, active, 1, randomBody(), {}).then(
    () => undefined,
    (e) => e,
  );
  assert.equal(late?.code, "NoSuchUpload");
  assert.deepEqual(await storedUploads(db), [], "no entry came back");
  assert.equal(await allLiveBlocks(db), 0, "the late part's data is released");
}

Deno.test("a part recorded after its upload was cleared and removed releases its data, and brings no entry back", () =>
  withStore((store, db) => recordLatePart(store, db, false)));

Deno.test("alone, an upload's end mark that meets its clearing brings no entry back", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    await putPart(store, "k", uploadId, 1);
    const upload = (await store.uploads.get(uploadId))!;
    // An abort marks its upload ended while its release, queued, clears the entry.
    await Promise.all([store.endUpload(uploadId), store.clearUpload(upload)]);
    assert.deepEqual(await storedUploads(db), []);
  }));

Deno.test("in a cluster, a part recorded after its upload's tombstone was collected brings no entry back", () =>
  withStore((store, db) => recordLatePart(store, db, true), { replication: new Twins() }));

Deno.test("in a cluster, a cleared entry is a tombstone without parts, collected once every replica has it", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const part = await putPart(store, "k", uploadId, 1);
    await completeUpload(store, await getUpload(store, BUCKET, "k", uploadId), [
      { partNumber: 1, etag: part.etag },
    ]);
    const [tombstone] = await storedUploads(db);
    assert.deepEqual(tombstone.parts, {});
    assert.equal(tombstone.deleted.v, true);
    assert.equal(typeof tombstone.clearedMs, "number");
    await assert.rejects(getUpload(store, BUCKET, "k", uploadId), /does not exist/);
    const later = { delayMs: 0, nowMs: () => Date.now() + 1_000 };
    assert.equal(await collectTombstones([store.uploads], db, store.replication, later), 1);
    assert.deepEqual(await storedUploads(db), []);
    assert.equal(await liveBlocks(store, part.dataId), 3, "the object's part is kept");
  }, { replication: new Twins() }));

/** What a completion writes first: the object, made of `part`, before the upload's end. */
async function commitCompletion(store: Store, key: string, uploadId: string, part: UploadedPart) {
  await commitChecked(store, BUCKET, key, undefined, (timestampMs) => ({
    uuid: uploadId,
    timestampMs,
    state: {
      state: "complete",
      data: {
        type: "parts",
        meta: { size: part.size, etag: `${part.etag}-1`, headers: [] },
        parts: [{ partNumber: 1, ...part }],
      },
    },
  }));
}

Deno.test("in a cluster, a part number uploaded again as its upload completes is refused, and the object keeps its part", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const first = await putPart(store, "k", uploadId, 1);
    const upload = await getUpload(store, BUCKET, "k", uploadId);
    // Committed, the upload not yet marked ended in its entry.
    await commitCompletion(store, "k", uploadId, first);
    const again = await uploadPart(store, upload, 1, randomBody(), {}).then(
      () => undefined,
      (e) => e,
    );
    assert.equal(again?.code, "NoSuchUpload");
    assert.equal(await liveBlocks(store, first.dataId), 3, "the object's part is kept");
    assert.equal(await allLiveBlocks(db), 3, "the refused part's data is released");
  }, { replication: new Twins() }));

Deno.test("a part number uploaded again after a completion read the parts does not release the part it commits", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const first = await putPart(store, "k", uploadId, 1);
    // The completion's read of the upload, before part 1 is uploaded again.
    const read = await getUpload(store, BUCKET, "k", uploadId);
    const again = await putPart(store, "k", uploadId, 1);
    assert.equal(await liveBlocks(store, first.dataId), 3, "kept while the upload goes on");
    await completeUpload(store, read, [{ partNumber: 1, etag: first.etag }]);
    assert.equal(await liveBlocks(store, first.dataId), 3, "the object's part is kept");
    assert.equal(await liveBlocks(store, again.dataId), 0, "the part left out is released");
    assert.deepEqual(await storedUploads(db), []);
  }));

Deno.test("an aborted upload releases the parts that newer uploads of their number replaced", () =>
  withStore(async (store, db) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const parts = [];
    for (let i = 0; i < 3; i++) parts.push(await putPart(store, "k", uploadId, 1));
    const [entry] = await storedUploads(db);
    assert.deepEqual(entry.replaced, [parts[0].dataId, parts[1].dataId].sort());
    await abortUpload(store, await getUpload(store, BUCKET, "k", uploadId));
    await store.releases.settled();
    for (const part of parts) assert.equal(await liveBlocks(store, part.dataId), 0);
    assert.deepEqual(await storedUploads(db), []);
  }));

Deno.test("uploads ended over an hour ago and never cleared are cleared: the parts their object does not hold are released", async () => {
  let now = Date.now();
  await withStore(async (store, db) => {
    // Releases after the answer are cut short (the process stops).
    store.releases.stop();
    // A completion cut short after its object's commit and the upload's end.
    const completed = await createUpload(store, BUCKET, "k", []);
    const held = await putPart(store, "k", completed, 1);
    const unused = await putPart(store, "k", completed, 2);
    await commitCompletion(store, "k", completed, held);
    await store.endUpload(completed);
    // An abort whose release never ran.
    const aborted = await createUpload(store, BUCKET, "a", []);
    const abortedPart = await putPart(store, "a", aborted, 1);
    await abortUpload(store, await getUpload(store, BUCKET, "a", aborted));
    // Ended, yet its object's version reads as uploading: left alone.
    const odd = await createUpload(store, BUCKET, "u", []);
    const oddPart = await putPart(store, "u", odd, 1);
    await store.endUpload(odd);

    const stored = async function* () {
      yield* await storedUploads(db);
    };
    now += 1_000;
    assert.equal(await clearEndedUploads(store, stored(), HOUR_MS), 0, "ended a second ago");
    now += HOUR_MS;
    assert.equal(await clearEndedUploads(store, stored(), HOUR_MS), 2);
    assert.equal(await liveBlocks(store, held.dataId), 3, "the object's part is kept");
    assert.equal((await getCurrent(store, BUCKET, "k"))?.data.meta.size, held.size);
    assert.equal(await liveBlocks(store, unused.dataId), 0);
    assert.equal(await liveBlocks(store, abortedPart.dataId), 0);
    assert.equal(await liveBlocks(store, oddPart.dataId), 3);
    assert.deepEqual((await storedUploads(db)).map((u) => u.uploadId), [odd]);
    assert.equal(await clearEndedUploads(store, stored(), HOUR_MS), 0);
  }, { nowMs: () => now });
});

Deno.test("of two completions of an upload with different parts, the later finds it completed, and the object keeps its parts", () =>
  withStore(async (store) => {
    const MiB = 1024 * 1024;
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const large = new Uint8Array(5 * MiB);
    for (let at = 0; at < large.length; at += 65536) {
      crypto.getRandomValues(large.subarray(at, at + 65536));
    }
    const first = await uploadPart(
      store,
      await getUpload(store, BUCKET, "k", uploadId),
      1,
      bodyOf(large),
      {},
    );
    const second = await putPart(store, "k", uploadId, 2);
    const third = await putPart(store, "k", uploadId, 3);
    const active = await getUpload(store, BUCKET, "k", uploadId);
    const [a, b] = await Promise.allSettled([
      completeUpload(store, active, [
        { partNumber: 1, etag: first.etag },
        { partNumber: 2, etag: second.etag },
      ]),
      completeUpload(store, active, [
        { partNumber: 1, etag: first.etag },
        { partNumber: 3, etag: third.etag },
      ]),
    ]);
    assert.equal(a.status, "fulfilled");
    assert.equal(b.status === "rejected" && b.reason.code, "NoSuchUpload");
    const object = await getCurrent(store, BUCKET, "k");
    assert.equal(object?.data.meta.size, 5 * MiB + 3 * BLOCK_SIZE);
    assert.equal(await liveBlocks(store, first.dataId), 5);
    assert.equal(await liveBlocks(store, second.dataId), 1, "the object's last part is kept");
    assert.equal(await liveBlocks(store, third.dataId), 0, "the part left out is released");
  }, { blockSize: 1024 * 1024 }));

Deno.test("in consistency mode dangerous, an upload completes with its other replicas down: its lock needs no majority", () =>
  withStore(async (store) => {
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const part = await putPart(store, "k", uploadId, 1);
    await completeUpload(store, await getUpload(store, BUCKET, "k", uploadId), [
      { partNumber: 1, etag: part.etag },
    ]);
    assert.equal((await getCurrent(store, BUCKET, "k"))?.data.meta.size, part.size);
  }, { replication: new ReplicaDown() }));

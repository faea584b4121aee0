/**
 * Changes made through a node whose clock is behind the one that made the
 * change before (another node's clock ahead, or this node's own clock set
 * back by NTP after a restart): each must replace the one before, as S3
 * does, since the newest register wins.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { LocalReplication, type Replication } from "../rpc/replication.ts";
import { Twins } from "./_test_replications.ts";
import { Access } from "./access.ts";
import { completeUpload, createUpload, getUpload, uploadPart } from "./multipart.ts";
import { getCurrent } from "./objects.ts";
import { Store } from "./store.ts";

const BUCKET = "bucket-id";
const BLOCK_SIZE = 1024;
const TEN_MINUTES_MS = 10 * 60_000;

/** A node alone, and one with a twin replica (the replicated paths). */
const REPLICATIONS: [string, () => Replication][] = [
  ["alone", () => new LocalReplication()],
  ["with replicas", () => new Twins()],
];

/** A store whose clock the test sets: `clock.ms`. */
async function withStore(
  replication: Replication,
  fn: (store: Store, clock: { ms: number }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-clock-behind-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  const clock = { ms: Date.now() };
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: BLOCK_SIZE,
      replication,
      nowMs: () => clock.ms,
    });
    await fn(store, clock);
    await store.releases.settled();
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function randomBody(): ReadableStream<Uint8Array> {
  const bytes = crypto.getRandomValues(new Uint8Array(2 * BLOCK_SIZE));
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

for (const [name, replication] of REPLICATIONS) {
  Deno.test(`${name}: a part uploaded again through a clock 10 min behind replaces the one before`, () =>
    withStore(replication(), async (store, clock) => {
      const uploadId = await createUpload(store, BUCKET, "k", []);
      const putPart = async () =>
        uploadPart(store, await getUpload(store, BUCKET, "k", uploadId), 1, randomBody(), {});
      const first = await putPart();
      clock.ms -= TEN_MINUTES_MS;
      const second = await putPart();
      const active = await getUpload(store, BUCKET, "k", uploadId);
      assert.equal(active.upload.parts["1"].v.etag, second.etag);
      await assert.rejects(
        completeUpload(store, active, [{ partNumber: 1, etag: first.etag }]),
        { code: "InvalidPart" },
      );
      const { meta } = await completeUpload(store, active, [{ partNumber: 1, etag: second.etag }]);
      assert.equal((await getCurrent(store, BUCKET, "k"))?.data.meta.etag, meta.etag);
    }));

  Deno.test(`${name}: an upload ended through a clock behind its start is ended`, () =>
    withStore(replication(), async (store, clock) => {
      const uploadId = await createUpload(store, BUCKET, "k", []);
      clock.ms -= TEN_MINUTES_MS;
      await store.endUpload(uploadId);
      const ended = await store.uploads.get(uploadId);
      // Alone, an ended entry with no parts may be gone already.
      assert.ok(ended === undefined || ended.deleted.v, JSON.stringify(ended));
    }));

  Deno.test(`${name}: bucket and key changes through a clock behind the one before take effect`, () =>
    withStore(replication(), async (store, clock) => {
      const access = new Access(store);
      const behind = () => clock.ms -= TEN_MINUTES_MS;
      const key = await access.createKey("k");
      const bucket = await access.createBucket("photos", key.id);

      await access.setSetting(bucket, "versioning", "Enabled");
      behind();
      await access.setSetting(bucket, "versioning", "Suspended");
      assert.equal((await access.getBucket("photos")).versioning?.v, "Suspended");

      const rights = { read: true, write: false, owner: false };
      await access.setPermission(bucket, "other-key", { read: true, write: true, owner: false });
      behind();
      await access.setPermission(bucket, "other-key", rights);
      assert.deepEqual(access.permissionOf(await access.getBucket("photos"), "other-key"), rights);

      await access.setAllowCreateBucket(key, false);
      behind();
      await access.setAllowCreateBucket((await access.getKey(key.id))!, true);
      assert.equal((await access.getKey(key.id))?.allowCreateBucket.v, true);

      await access.deleteBucket(await access.getBucket("photos"));
      behind();
      assert.equal(await access.resolveBucket("photos"), undefined);
      const again = await access.createBucket("photos");
      assert.equal((await access.resolveBucket("photos"))?.id, again.id);
      behind();
      await access.deleteBucket(again);
      assert.equal(await access.resolveBucket("photos"), undefined);

      behind();
      await access.deleteKey((await access.getKey(key.id))!);
      assert.equal(await access.getKey(key.id), undefined);
    }));
}

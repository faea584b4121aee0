import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { Access } from "./access.ts";
import { applyLifecycle, expiresAtMs } from "./lifecycle.ts";
import { createUpload } from "./multipart.ts";
import { deleteObject, getCurrent, putObject } from "./objects.ts";
import { Store } from "./store.ts";

const DAY_MS = 24 * 3600 * 1000;

function bodyOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
}

Deno.test("expiry counts days to the next midnight UTC, or is the rule's date", () => {
  const modified = Date.UTC(2026, 0, 10, 15, 30);
  assert.equal(
    expiresAtMs({ enabled: true, prefix: "", expirationDays: 1 }, modified),
    Date.UTC(2026, 0, 12),
  );
  const date = Date.UTC(2026, 5, 1);
  assert.equal(expiresAtMs({ enabled: true, prefix: "", expirationDateMs: date }, modified), date);
  assert.equal(
    expiresAtMs({ enabled: true, prefix: "", abortMultipartDays: 1 }, modified),
    undefined,
  );
});

Deno.test("lifecycle rules expire objects under their prefix and abort old multipart uploads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-lifecycle-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    let clock = Date.UTC(2026, 0, 10, 12);
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1 << 20,
      nowMs: () => clock,
    });
    const access = new Access(store);
    const bucket = await access.createBucket("logs-bucket");
    const put = (key: string) =>
      putObject(store, bucket.id, key, bodyOf(key), { headers: [], maxSize: 1 << 20 });
    await put("logs/old");
    await put("keep/old");
    await put("tmp/old");
    const upload = await createUpload(store, bucket.id, "logs/big", []);
    const otherUpload = await createUpload(store, bucket.id, "keep/big", []);
    await access.setSetting(bucket, "lifecycle", [
      { enabled: true, prefix: "logs/", expirationDays: 2, abortMultipartDays: 1 },
      { enabled: false, prefix: "tmp/", expirationDays: 1 },
    ]);
    const run = async () => await applyLifecycle(store, await access.listAllBuckets());
    const exists = async (key: string) => (await getCurrent(store, bucket.id, key)) !== undefined;
    const uploading = async (key: string, uuid: string) =>
      (await store.objects.get(bucket.id, key))?.versions.find((v) => v.uuid === uuid)?.state
        .state;

    assert.deepEqual(await run(), { expired: 0, aborted: 0 }, "nothing is due yet");
    clock = Date.UTC(2026, 0, 12, 1); // past midnight after one day: the upload is due
    assert.deepEqual(await run(), { expired: 0, aborted: 1 });
    assert.equal(await uploading("logs/big", upload), "aborted");
    assert.equal(await uploading("keep/big", otherUpload), "uploading");
    await put("logs/new"); // written now: its two days start now
    clock = Date.UTC(2026, 0, 13, 1);
    assert.deepEqual(await run(), { expired: 1, aborted: 0 });
    assert.equal(await exists("logs/old"), false);
    assert.equal(await exists("logs/new"), true);
    assert.equal(await exists("keep/old"), true, "another prefix");
    assert.equal(await exists("tmp/old"), true, "a disabled rule");
    assert.deepEqual(await run(), { expired: 0, aborted: 0 }, "a second pass finds nothing");

    // An object written again after its expired version was listed is not deleted.
    const first = await put("logs/raced");
    await put("logs/raced");
    assert.equal(await deleteObject(store, bucket.id, "logs/raced", first.version.uuid), false);
    assert.equal(await exists("logs/raced"), true);

    await access.setSetting(await access.getBucket("logs-bucket"), "lifecycle", null);
    clock += 30 * DAY_MS;
    assert.deepEqual(await run(), { expired: 0, aborted: 0 }, "rules removed");
    assert.equal(await exists("logs/new"), true);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { Access } from "./access.ts";
import { applyLifecycle, expiresAtMs, nodeInCharge, objectExpiration } from "./lifecycle.ts";
import { createUpload } from "./multipart.ts";
import {
  deleteObject,
  deleteVersion,
  getCurrent,
  getVersion,
  putObject,
  type PutObjectOptions,
} from "./objects.ts";
import { listedVersionsOf } from "./listing.ts";
import { Store } from "./store.ts";
import type { Bucket } from "./bucket_table.ts";

const DAY_MS = 24 * 3600 * 1000;

function bodyOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
}

/** A store running alone in a temporary directory, on a clock the test sets, with one bucket. */
async function withBucket(
  name: string,
  startMs: number,
  fn: (t: { store: Store; access: Access; bucket: Bucket; clock: { ms: number } }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-lifecycle-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const clock = { ms: startMs };
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1 << 20,
      nowMs: () => clock.ms,
    });
    const access = new Access(store);
    await fn({ store, access, bucket: await access.createBucket(name), clock });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an object's expiration is the earliest of the enabled rules that match its key", () => {
  const modified = Date.UTC(2026, 0, 10, 15, 30);
  const rules = [
    { id: "month", enabled: true, prefix: "logs/", expirationDays: 30 },
    { id: "date", enabled: true, prefix: "logs/2026/", expirationDateMs: Date.UTC(2026, 1, 1) },
    { id: "off", enabled: false, prefix: "", expirationDays: 1 },
    { id: "uploads", enabled: true, prefix: "", abortMultipartDays: 1 },
  ];
  const object = { size: 100, tags: [] };
  assert.deepEqual(objectExpiration(rules, "logs/2026/a", modified, object), {
    atMs: Date.UTC(2026, 1, 1),
    ruleId: "date",
  });
  assert.deepEqual(objectExpiration(rules, "logs/a", modified, object), {
    atMs: Date.UTC(2026, 1, 10),
    ruleId: "month",
  });
  assert.equal(objectExpiration(rules, "photos/a", modified, object), undefined);
  assert.equal(objectExpiration(undefined, "logs/a", modified, object), undefined);
});

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

Deno.test("lifecycle rules expire objects under their prefix and abort old multipart uploads", () =>
  withBucket("logs-bucket", Date.UTC(2026, 0, 10, 12), async ({ store, access, bucket, clock }) => {
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

    assert.deepEqual(
      await run(),
      { expired: 0, versionsDeleted: 0, aborted: 0 },
      "nothing is due yet",
    );
    clock.ms = Date.UTC(2026, 0, 12, 1); // past midnight after one day: the upload is due
    assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 1 });
    // Aborted, the entry holds nothing else: a store that runs alone drops it.
    assert.equal(await uploading("logs/big", upload), undefined);
    assert.equal(await uploading("keep/big", otherUpload), "uploading");
    await put("logs/new"); // written now: its two days start now
    clock.ms = Date.UTC(2026, 0, 13, 1);
    assert.deepEqual(await run(), { expired: 1, versionsDeleted: 0, aborted: 0 });
    assert.equal(await exists("logs/old"), false);
    assert.equal(await exists("logs/new"), true);
    assert.equal(await exists("keep/old"), true, "another prefix");
    assert.equal(await exists("tmp/old"), true, "a disabled rule");
    assert.deepEqual(
      await run(),
      { expired: 0, versionsDeleted: 0, aborted: 0 },
      "a second pass finds nothing",
    );

    // An object written again after its expired version was listed is not deleted.
    const first = await put("logs/raced");
    await put("logs/raced");
    const marker = await deleteObject(store, bucket.id, "logs/raced", {
      onlyVersion: first.version.uuid,
    });
    assert.equal(marker, undefined);
    assert.equal(await exists("logs/raced"), true);

    await access.setSetting(await access.getBucket("logs-bucket"), "lifecycle", null);
    clock.ms += 30 * DAY_MS;
    assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 0 }, "rules removed");
    assert.equal(await exists("logs/new"), true);
  }));

Deno.test("lifecycle rules delete noncurrent versions past their days, and lone delete markers", () =>
  withBucket(
    "versions-bucket",
    Date.UTC(2026, 0, 10, 10),
    async ({ store, access, bucket, clock }) => {
      const put = async (key: string, text: string) => {
        const { version } = await putObject(store, bucket.id, key, bodyOf(text), {
          headers: [],
          maxSize: 1 << 20,
          versioning: "Enabled",
        });
        clock.ms += 3600 * 1000;
        return version.uuid;
      };
      const [v1, v2, v3] = [await put("k", "1"), await put("k", "2"), await put("k", "3")];
      await access.setSetting(bucket, "lifecycle", [
        { enabled: true, prefix: "k", noncurrentDays: 1, newerNoncurrentVersions: 1 },
        { enabled: true, prefix: "m/", expiredObjectDeleteMarker: true },
      ]);
      const run = async () => await applyLifecycle(store, await access.listAllBuckets());
      const versionsOf = async (key: string) => {
        const entry = await store.objects.get(bucket.id, key);
        return entry ? listedVersionsOf(entry).map((v) => v.versionId) : [];
      };

      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 0 }, "not yet");
      // v1 became noncurrent on day 0 at 11:00: one day later, counted to midnight, it goes. v2
      // is as old, but the rule keeps the newest noncurrent version.
      clock.ms = Date.UTC(2026, 0, 12, 1);
      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 1, aborted: 0 });
      assert.deepEqual(await versionsOf("k"), [v3, v2]);
      assert.equal((await getVersion(store, bucket.id, "k", v1)).kind, "none");
      assert.equal((await getCurrent(store, bucket.id, "k"))?.version.uuid, v3);

      // A delete marker with an older version is kept; once alone, it goes.
      const m1 = await put("m/x", "data");
      await deleteObject(store, bucket.id, "m/x", { versioning: "Enabled" });
      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 0 });
      assert.equal((await versionsOf("m/x")).length, 2);
      await deleteVersion(store, bucket.id, "m/x", m1);
      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 1, aborted: 0 });
      assert.deepEqual(await versionsOf("m/x"), []);
      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 0 }, "done");
    },
  ));

Deno.test("lifecycle rules leave noncurrent versions that object lock retains until it ends", () =>
  withBucket(
    "locked-bucket",
    Date.UTC(2026, 0, 10, 10),
    async ({ store, access, bucket, clock }) => {
      const start = clock.ms;
      const put = async (text: string, retainDays: number) => {
        const { version } = await putObject(store, bucket.id, "k", bodyOf(text), {
          headers: [],
          maxSize: 1 << 20,
          versioning: "Enabled",
          lock: { retention: { mode: "COMPLIANCE", untilMs: start + retainDays * DAY_MS } },
        });
        clock.ms += 3600 * 1000;
        return version.uuid;
      };
      const [old, current] = [await put("1", 10), await put("2", 10)];
      await access.setSetting(bucket, "lifecycle", [
        { enabled: true, prefix: "k", noncurrentDays: 1 },
      ]);
      const run = async () => await applyLifecycle(store, await access.listAllBuckets());
      clock.ms = start + 5 * DAY_MS;
      assert.deepEqual(await run(), { expired: 0, versionsDeleted: 0, aborted: 0 }, "retained");
      assert.equal((await getVersion(store, bucket.id, "k", old)).kind, "object");
      clock.ms = start + 11 * DAY_MS;
      assert.deepEqual(
        await run(),
        { expired: 0, versionsDeleted: 1, aborted: 0 },
        "retention over",
      );
      assert.equal((await getVersion(store, bucket.id, "k", old)).kind, "none");
      assert.equal((await getCurrent(store, bucket.id, "k"))?.version.uuid, current);
    },
  ));

Deno.test("lifecycle rules with tag and size filters act on the objects and versions they select only", () =>
  withBucket(
    "filters-bucket",
    Date.UTC(2026, 0, 10, 10),
    async ({ store, access, bucket, clock }) => {
      const put = async (key: string, size: number, extra: Partial<PutObjectOptions> = {}) => {
        const { version } = await putObject(store, bucket.id, key, bodyOf("x".repeat(size)), {
          headers: [],
          maxSize: 1 << 20,
          ...extra,
        });
        clock.ms += 3600 * 1000;
        return version.uuid;
      };
      await put("a/tagged", 50, { tags: [["class", "tmp"], ["team", "x"]] });
      await put("a/other-tag", 50, { tags: [["class", "keep"]] });
      await put("a/plain", 50);
      await put("a/small", 1);
      await put("b/small", 1);
      const versioned = { versioning: "Enabled" as const };
      const [, large] = [await put("v", 1, versioned), await put("v", 100, versioned)];
      const current = await put("v", 2, versioned);
      await access.setSetting(bucket, "lifecycle", [
        // As PutBucketLifecycleConfiguration stores them (filteredEnabled: older nodes skip them).
        {
          enabled: false,
          filteredEnabled: true,
          prefix: "",
          tags: [["class", "tmp"]],
          expirationDays: 1,
        },
        {
          enabled: false,
          filteredEnabled: true,
          prefix: "a/",
          sizeLessThan: 10,
          expirationDays: 1,
        },
        {
          enabled: false,
          filteredEnabled: true,
          prefix: "v",
          sizeGreaterThan: 50,
          noncurrentDays: 1,
        },
      ]);
      const run = async () => await applyLifecycle(store, await access.listAllBuckets());
      const exists = async (key: string) => (await getCurrent(store, bucket.id, key)) !== undefined;

      clock.ms = Date.UTC(2026, 0, 13, 1);
      assert.deepEqual(await run(), { expired: 2, versionsDeleted: 1, aborted: 0 });
      assert.equal(await exists("a/tagged"), false, "tagged");
      assert.equal(await exists("a/small"), false, "small");
      for (const key of ["a/other-tag", "a/plain", "b/small"]) {
        assert.equal(await exists(key), true, key);
      }
      const entry = await store.objects.get(bucket.id, "v");
      const left = listedVersionsOf(entry!).map((v) => v.versionId);
      assert.equal(left.length, 2, "the small noncurrent version stays");
      assert.ok(!left.includes(large), "the large noncurrent version went");
      assert.equal((await getCurrent(store, bucket.id, "v"))?.version.uuid, current);
    },
  ));

Deno.test("a bucket's rules are applied by the first replica that is up", () => {
  const up = new Set(["b", "c"]);
  assert.equal(nodeInCharge(["a", "b", "c"], (n) => up.has(n)), "b", "a is down: b applies them");
  up.add("a");
  assert.equal(nodeInCharge(["a", "b", "c"], (n) => up.has(n)), "a");
  assert.equal(nodeInCharge([], () => true), undefined, "no layout yet: nobody");
});

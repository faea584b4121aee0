import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import {
  commitChecked,
  deleteObject,
  deleteVersion,
  getCurrent,
  getVersion,
  putObject,
  type Versioning,
} from "./objects.ts";
import { Store } from "./store.ts";
import type { JournalEntry } from "./data_journal.ts";
import { LaggingReplicas, LocksEnded, ReplicaDown } from "./_test_replications.ts";
import { QuorumError } from "../rpc/quorum.ts";
import { abortUpload, createUpload, getUpload, uploadPart } from "./multipart.ts";

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

    const marker = await deleteObject(store, BUCKET, "k");
    assert.equal(marker?.state.state === "complete" && marker.state.data.type, "deleteMarker");
    assert.equal(await getCurrent(store, BUCKET, "k"), undefined);
    assert.equal(await deleteObject(store, BUCKET, "k"), undefined, "nothing left to delete");
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

    assert.ok(await deleteObject(store, BUCKET, "big"));
    // The data is released after the deletion's answer.
    await store.releases.settled();
    for (const hash of hashes) {
      assert.equal(await store.blocks.refcount(hash), 0, `block ${hash} is released`);
    }
    // Alone, the store keeps no record of the deletion: every replica has it.
    for (const table of ["version", "block_ref"]) {
      const left = [];
      for await (const row of db.list({ prefix: ["t", table] })) left.push(row.key);
      assert.deepEqual(left, [], `${table} rows of released data are gone`);
    }
  }));

Deno.test("a versioned key keeps each version's blocks until that version is deleted by id", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize });
    // Each version: two blocks of its own content, so each has its own block hash.
    const put = async (fill: number, versioning: Versioning) => {
      const body = new Uint8Array(2 * blockSize).fill(fill);
      const { version } = await putObject(store, BUCKET, "k", bodyOf(body), {
        headers: [],
        maxSize: 1 << 20,
        sizeHint: body.byteLength,
        versioning,
      });
      const state = version.state;
      const dataId = state.state === "complete" && state.data.type === "parts"
        ? state.data.parts[0].dataId
        : "";
      const hashes = new Set<string>();
      for await (const block of store.versions.scan(dataId)) hashes.add(block.hash);
      assert.equal(hashes.size, 1);
      return { version, hash: [...hashes][0] };
    };
    // Releases run after the commit: wait for the counts to settle.
    const refcounts = async (expected: number[], hashes: string[], what: string) => {
      let counts: number[] = [];
      for (let i = 0; i < 100; i++) {
        counts = await Promise.all(hashes.map((h) => store.blocks.refcount(h)));
        if (counts.every((c, j) => c === expected[j])) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(counts, expected, what);
    };

    const v1 = await put(1, "Enabled");
    const v2 = await put(2, "Enabled");
    assert.ok(v1.version.versioned && v2.version.versioned);
    await refcounts([1, 1], [v1.hash, v2.hash], "both versions are kept");
    const marker = await deleteObject(store, BUCKET, "k", { versioning: "Enabled" });
    assert.ok(marker?.versioned, "a versioned delete marker");
    assert.equal(await getCurrent(store, BUCKET, "k"), undefined);
    assert.equal((await getVersion(store, BUCKET, "k", v1.version.uuid)).kind, "object");
    await refcounts([1, 1], [v1.hash, v2.hash], "a delete marker releases nothing");

    assert.equal((await deleteVersion(store, BUCKET, "k", v1.version.uuid))?.uuid, v1.version.uuid);
    await refcounts([0, 1], [v1.hash, v2.hash], "the version deleted by id is released");
    assert.equal((await getVersion(store, BUCKET, "k", v1.version.uuid)).kind, "none");
    assert.equal(await deleteVersion(store, BUCKET, "k", v1.version.uuid), undefined, "gone");
    await deleteVersion(store, BUCKET, "k", marker!.uuid);
    assert.equal((await getCurrent(store, BUCKET, "k"))?.version.uuid, v2.version.uuid);

    // Suspended: each new version replaces the null one, and only it.
    const n1 = await put(3, "Suspended");
    const n2 = await put(4, "Suspended");
    assert.ok(!n1.version.versioned && !n2.version.versioned);
    await refcounts([1, 0, 1], [v2.hash, n1.hash, n2.hash], "the null version is replaced");
    assert.equal((await getVersion(store, BUCKET, "k", "null")).kind, "object");
    await deleteVersion(store, BUCKET, "k", "null");
    await refcounts([1, 0], [v2.hash, n2.hash], "the null version deleted by id");
    assert.equal((await getCurrent(store, BUCKET, "k"))?.version.uuid, v2.version.uuid);
    await deleteVersion(store, BUCKET, "k", v2.version.uuid);
    await refcounts([0], [v2.hash], "the last version deleted");
    // Only deletions are left: a store that runs alone drops the entry.
    assert.equal(await store.objects.get(BUCKET, "k"), undefined);
  }));

Deno.test("a completion that meets an abort of its upload (a replica that alone took it) ends deleted, its data released", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize });
    const put = (key: string, body: Uint8Array) =>
      putObject(store, BUCKET, key, bodyOf(body), { headers: [], maxSize: 1 << 20 });
    await put("k", crypto.getRandomValues(new Uint8Array(3 * blockSize)));
    const { version } = await put("k", crypto.getRandomValues(new Uint8Array(4 * blockSize)));
    const hashes = new Set<string>();
    for await (const block of store.versions.scan(version.uuid)) hashes.add(block.hash);
    assert.equal(hashes.size, 4);

    // The abort the other replicas wrote, as anti-entropy brings it: the record of the upload in
    // progress, marked aborted.
    const aborted = { uuid: version.uuid, timestampMs: version.timestampMs - 5 };
    await store.objects.insert({
      bucketId: BUCKET,
      key: "k",
      versions: [{ ...aborted, state: { state: "aborted" } }],
    });
    assert.equal(await getCurrent(store, BUCKET, "k"), undefined, "no object without its blocks");
    await store.releases.settled();
    for (const hash of hashes) assert.equal(await store.blocks.refcount(hash), 0);
  }));

/**
 * Deletes "k" as a process that stops as the deletion is answered: none of
 * `hashes` is released, until the next process over the same metadata
 * (`nextProcess`) takes the release up from its note.
 */
async function assertReleasedByNextProcess(
  store: Store,
  nextProcess: () => Store,
  hashes: Set<string>,
): Promise<void> {
  store.releases.stop();
  assert.ok(await deleteObject(store, BUCKET, "k"));
  assert.equal(await getCurrent(store, BUCKET, "k"), undefined, "the deletion is answered");
  await store.releases.settled();
  for (const hash of hashes) assert.equal(await store.blocks.refcount(hash), 1, "not released");

  const next = nextProcess();
  assert.equal(await next.releases.resume(), 1);
  await next.releases.settled();
  for (const hash of hashes) assert.equal(await next.blocks.refcount(hash), 0, "released");
  assert.equal(await next.releases.resume(), 0, "the note is gone with its release");
}

Deno.test("a deleted object's data is released after the answer, and by the next process when this one stopped first", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const blocks = await BlockStore.open(`${dir}/data`);
    const store = new Store(db, blocks, { blockSize });
    const body = crypto.getRandomValues(new Uint8Array(5 * blockSize));
    await putObject(store, BUCKET, "k", bodyOf(body), { headers: [], maxSize: 1 << 20 });
    const dataId = ((await getCurrent(store, BUCKET, "k"))?.data as { parts: { dataId: string }[] })
      .parts[0].dataId;
    const hashes = new Set<string>();
    for await (const block of store.versions.scan(dataId)) hashes.add(block.hash);
    assert.equal(hashes.size, 5);

    await assertReleasedByNextProcess(store, () => new Store(db, blocks, { blockSize }), hashes);
  }));

Deno.test("a version replaced on one replica alone keeps its data until a write quorum holds what replaced it", () =>
  withDb(async (db, dir) => {
    const replication = new LaggingReplicas();
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication,
    });
    const put = (content: Uint8Array) =>
      putObject(store, BUCKET, "k", bodyOf(content), { headers: [], maxSize: 1 << 20 });
    await put(crypto.getRandomValues(new Uint8Array(3 * 1024)));
    const replaced = (await getCurrent(store, BUCKET, "k"))!;
    const dataId = (replaced.data as { parts: { dataId: string }[] }).parts[0].dataId;
    const liveBlocks = async () => {
      let live = 0;
      for await (const block of store.versions.scan(dataId)) if (!block.deleted) live++;
      return live;
    };
    const notes = async () => (await Array.fromAsync(db.list({ prefix: ["rel"] }))).length;

    // A newer version reaches this replica alone (its coordinator died after
    // sending it): the two others still hold the first one.
    replication.lagging = await store.objects.get(BUCKET, "k");
    const bytes = new TextEncoder().encode("newer");
    await store.objects.applyLocal([{
      bucketId: BUCKET,
      key: "k",
      versions: [{
        uuid: crypto.randomUUID(),
        timestampMs: replaced.version.timestampMs + 1000,
        state: {
          state: "complete",
          data: { type: "inline", meta: { size: 5, etag: "e", headers: [] }, bytes },
        },
      }],
    }]);
    await store.releases.settled();
    assert.equal(
      await liveBlocks(),
      3,
      "quorum reads through the others still give the first version",
    );
    assert.equal(await notes(), 1, "the release is noted, to be tried again");
    // Taken up again by the periodic worker while the others still lag: kept again.
    assert.equal(await store.releases.resume(), 1);
    await store.releases.settled();
    assert.equal(await liveBlocks(), 3);
    assert.equal(await notes(), 1);

    // The newer version spreads (anti-entropy would bring it): the release goes through.
    replication.lagging = undefined;
    assert.equal(await store.releases.resume(), 1);
    await store.releases.settled();
    assert.equal(await liveBlocks(), 0);
    assert.equal(await notes(), 0);
  }));

Deno.test("an object of S3's most parts, 10,000, is released after the answer too", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const blocks = await BlockStore.open(`${dir}/data`);
    const store = new Store(db, blocks, { blockSize });
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const body = crypto.getRandomValues(new Uint8Array(3 * blockSize));
    const first = await uploadPart(
      store,
      await getUpload(store, BUCKET, "k", uploadId),
      1,
      bodyOf(body),
      {},
    );
    const hashes = new Set<string>();
    for await (const block of store.versions.scan(first.dataId)) hashes.add(block.hash);
    // The other parts' data is not written: only the note's size matters here.
    const parts = [{ partNumber: 1, ...first }];
    for (let n = 2; n <= 10_000; n++) {
      parts.push({ partNumber: n, dataId: crypto.randomUUID(), size: 5 << 20, etag: first.etag });
    }
    await commitChecked(store, BUCKET, "k", undefined, (timestampMs) => ({
      uuid: uploadId,
      timestampMs,
      state: {
        state: "complete",
        data: {
          type: "parts",
          meta: {
            size: parts.reduce((s, p) => s + p.size, 0),
            etag: `${first.etag}-10000`,
            headers: [],
          },
          parts,
        },
      },
    }));

    await assertReleasedByNextProcess(store, () => new Store(db, blocks, { blockSize }), hashes);
  }));

Deno.test("an aborted upload ends before the answer, and its parts are released after it, by the next process when this one stopped first", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const blocks = await BlockStore.open(`${dir}/data`);
    const store = new Store(db, blocks, { blockSize });
    const uploadId = await createUpload(store, BUCKET, "k", []);
    const active = await getUpload(store, BUCKET, "k", uploadId);
    const hashes = new Set<string>();
    for (const partNumber of [1, 2]) {
      const body = crypto.getRandomValues(new Uint8Array(3 * blockSize));
      const part = await uploadPart(store, active, partNumber, bodyOf(body), {});
      for await (const block of store.versions.scan(part.dataId)) hashes.add(block.hash);
    }
    assert.equal(hashes.size, 6);

    // The process stops as the abort is answered: its release never starts.
    store.releases.stop();
    await abortUpload(store, active);
    await assert.rejects(getUpload(store, BUCKET, "k", uploadId), /does not exist/);
    assert.equal((await store.uploads.get(uploadId))?.deleted.v, true, "ended before the answer");
    await store.releases.settled();
    for (const hash of hashes) assert.equal(await store.blocks.refcount(hash), 1, "not released");

    // A part whose upload ran through the abort finds it ended and releases its own data.
    const late = await uploadPart(store, active, 3, null, {}).then(() => undefined, (e) => e);
    assert.match(String(late), /completed or aborted during this part's upload/);

    // The next process over the same metadata takes the release up.
    const next = new Store(db, blocks, { blockSize });
    assert.equal(await next.releases.resume(), 1);
    await next.releases.settled();
    for (const hash of hashes) assert.equal(await next.blocks.refcount(hash), 0, "released");
    assert.equal(await next.releases.resume(), 0, "the note is gone with its release");
  }));

Deno.test("in a cluster, a deletion of a key the read finds empty is written, and beats a write that reached a replica alone", () =>
  withDb(async (db, dir) => {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication: new ReplicaDown(),
    });
    const deleted = await deleteObject(store, BUCKET, "k");
    assert.ok(deleted, "the deletion is written");
    // A PutObject whose client was told it failed, that only the replica down took, arrives.
    const bytes = new TextEncoder().encode("zombie");
    await store.objects.insert({
      bucketId: BUCKET,
      key: "k",
      versions: [{
        uuid: crypto.randomUUID(),
        timestampMs: deleted.timestampMs - 1_000,
        state: {
          state: "complete",
          data: { type: "inline", meta: { size: 6, etag: "e", headers: [] }, bytes },
        },
      }],
    });
    assert.equal(await getCurrent(store, BUCKET, "k"), undefined);
  }));

Deno.test("a PutObject that fails releases its data, even when its abort cannot be written", () =>
  withDb(async (db, dir) => {
    const blockSize = 1024;
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize });
    const body = crypto.getRandomValues(new Uint8Array(4 * blockSize));
    // The blocks written, as their version entries name them.
    const hashes = new Set<string>();
    const insertVersions = store.versions.insertMany.bind(store.versions);
    store.versions.insertMany = (blocks) => {
      for (const block of blocks) if (!block.deleted) hashes.add(block.hash);
      return insertVersions(blocks);
    };
    // Too few replicas answer the abort (as when the node lost its peers mid-upload).
    const insert = store.objects.insert.bind(store.objects);
    store.objects.insert = (entry) =>
      entry.versions.some((v) => v.state.state === "aborted")
        ? Promise.reject(new Error("too few replicas"))
        : insert(entry);
    await assert.rejects(
      putObject(store, BUCKET, "refused", bodyOf(body), {
        headers: [],
        maxSize: 1 << 20,
        verify: () => {
          throw new Error("BadDigest");
        },
      }),
      /BadDigest/,
    );
    const entry = await store.objects.get(BUCKET, "refused");
    const uuid = entry!.versions[0].uuid;
    const state = entry!.versions[0].state;
    assert.equal(state.state, "uploading", "the abort was not written");
    // It names its coordinator, whose next process may abort it (abortCutOffUploads).
    assert.deepEqual(state.coordinator, { node: store.replication.nodeId, run: store.journal.run });
    assert.equal(hashes.size, 4);
    for (const hash of hashes) assert.equal(await store.blocks.refcount(hash), 0);
    // Its note stays, for the journal's settling to abort the record (interrupted_uploads_test).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await db.get<JournalEntry>(["dj", uuid]))?.dataId, uuid);
  }));

Deno.test("a PutObject whose data cannot be released keeps its note for the journal's settling", () =>
  withDb(async (db, dir) => {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize: 1024 });
    store.releaseData = () => Promise.reject(new Error("too few replicas"));
    await assert.rejects(
      putObject(store, BUCKET, "refused", bodyOf(new Uint8Array(4096).fill(7)), {
        headers: [],
        maxSize: 1 << 20,
        verify: () => {
          throw new Error("BadDigest");
        },
      }),
      /BadDigest/,
      "the request's own error, not the release's",
    );
    await new Promise((r) => setTimeout(r, 50));
    const notes = [];
    for await (const note of db.list({ prefix: ["dj"] })) notes.push(note);
    assert.equal(notes.length, 1, "the note waits for the journal's settling");
  }));

Deno.test("a conditional write whose key locks a replica ended meanwhile fails, and writes nothing", () =>
  withDb(async (db, dir) => {
    const replication = new LocksEnded();
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication,
    });
    const put = (content: string, precondition?: () => void) =>
      putObject(store, BUCKET, "k", bodyOf(content), {
        headers: [],
        maxSize: 1 << 20,
        precondition,
      });
    const first = await put("first");
    const current = async () => (await getCurrent(store, BUCKET, "k"))?.version.uuid;

    // The replicas saw this node down between its check and its write, and
    // ended its leases: another writer may hold the key now.
    replication.locksEnded = true;
    await assert.rejects(put("second", () => {}), QuorumError);
    await assert.rejects(
      commitChecked(store, BUCKET, "k", () => {}, (timestampMs) => ({
        uuid: crypto.randomUUID(),
        timestampMs,
        state: { state: "complete", data: { type: "deleteMarker" } },
      })),
      QuorumError,
    );
    await assert.rejects(
      deleteObject(store, BUCKET, "k", { onlyVersion: first.version.uuid }),
      QuorumError,
    );
    assert.equal(await current(), first.version.uuid, "nothing was written");
    // An unconditional write takes no lock on the replicas.
    const third = await put("third");
    assert.equal(await current(), third.version.uuid);

    replication.locksEnded = false;
    const fourth = await put("fourth", () => {});
    assert.equal(await current(), fourth.version.uuid);
  }));

import assert from "node:assert/strict";
import { KvStore } from "../../lib/db/kv_store.ts";
import { BlockStore } from "../../lib/block/block_store.ts";
import { writeData } from "../../lib/model/object_data.ts";
import { getCurrent, putObject } from "../../lib/model/objects.ts";
import { Store } from "../../lib/model/store.ts";
import { ReplicaDown } from "../../lib/model/_test_replications.ts";
import { checkMetadata } from "./metadata_check.ts";

const BUCKET = "bucket-id";

/** The hashes of a data id's blocks, in order. */
async function blocksOf(store: Store, dataId: string): Promise<string[]> {
  const hashes: string[] = [];
  for await (const block of store.versions.scan(dataId)) hashes.push(block.hash);
  return hashes;
}

function randomBody(): ReadableStream<Uint8Array> {
  return new Blob([crypto.getRandomValues(new Uint8Array(3000))]).stream();
}

Deno.test("the metadata check finds a complete version's missing data, its unreferenced blocks, and data nothing names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-metadata-check-test-" });
  const leaked = crypto.randomUUID();
  const noted = crypto.randomUUID();
  try {
    await Deno.mkdir(`${dir}/meta`);
    const db = await KvStore.open(`${dir}/meta/metadata.kv`);
    try {
      const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize: 1024 });
      const put = (key: string) =>
        putObject(store, BUCKET, key, randomBody(), { headers: [], maxSize: 1 << 20 });
      await put("kept");
      // An empty object of a versioned key: one part of 0 bytes, which has no blocks.
      const empty = await putObject(store, BUCKET, "empty", new Blob([]).stream(), {
        headers: [],
        maxSize: 1 << 20,
        versioning: "Enabled",
      });
      assert.equal(
        empty.version.state.state === "complete" && empty.version.state.data.type,
        "parts",
      );
      // A version whose data was released under it, as a bug would.
      const broken = await put("broken");
      await store.releaseData(broken.version.uuid);
      // Data written for a PutObject still recorded as uploading, and data nothing names.
      const uploading = crypto.randomUUID();
      await store.objects.insert({
        bucketId: BUCKET,
        key: "uploading",
        versions: [{
          uuid: uploading,
          timestampMs: store.nowMs(),
          state: { state: "uploading", multipart: false, headers: [] },
        }],
      });
      const write = (dataId: string) =>
        writeData(store, randomBody(), { dataId, maxSize: 1 << 20, allowInline: false });
      await write(uploading);
      await write(leaked);
      // Data of an upload cut off, which the node's next process settles.
      await store.journal.begin(noted, { kind: "object", bucketId: BUCKET, key: "cut-off" });
      await write(noted);
      assert.equal((await getCurrent(store, BUCKET, "kept"))?.data.type, "parts");
      // Blocks that garbage collection could take, as a bug would leave them: one without its
      // reference, one whose reference count says no reference.
      const unreferenced = await put("unreferenced");
      const zero = await put("zero");
      const [lost] = await blocksOf(store, unreferenced.version.uuid);
      await db.commit([{
        type: "delete",
        key: ["t", "block_ref", store.blockRefs.partitionOf(lost), lost, unreferenced.version.uuid],
      }]);
      const [uncounted] = await blocksOf(store, zero.version.uuid);
      await db.commit([{ type: "set", key: ["block", "rc", uncounted], value: { count: 0 } }]);
    } finally {
      db.close();
    }

    const report = await checkMetadata(`${dir}/meta`);
    assert.equal(report.partsChecked, 5);
    assert.deepEqual(report.missing.map((m) => [m.key, m.problem]), [["broken", "no blocks"]]);
    assert.equal(report.blocksChecked, 9, "three blocks of 1,024 bytes or less for each 3,000");
    assert.deepEqual(report.unreferenced.map((u) => [u.key, u.problem]), [
      ["unreferenced", "no reference"],
      ["zero", "reference count 0"],
    ]);
    assert.deepEqual(report.uploading, { dataIds: 1, bytes: 3000 });
    assert.deepEqual(report.leaked, { dataIds: 1, bytes: 3000, ids: [leaked] });
    assert.deepEqual(report.noted, { dataIds: 1, bytes: 3000 });
    assert.deepEqual(report.journal, [noted]);
    assert.deepEqual(report.endedUploads, { dataIds: 0, bytes: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the metadata check finds a Merkle leaf that does not match the entries under it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-metadata-check-test-" });
  try {
    await Deno.mkdir(`${dir}/meta`);
    const open = () => KvStore.open(`${dir}/meta/metadata.kv`);
    let db = await open();
    try {
      // A node of a cluster keeps the index; its other replica is down.
      const store = new Store(db, await BlockStore.open(`${dir}/data`), {
        blockSize: 1024,
        antiEntropy: true,
        replication: new ReplicaDown(),
      });
      for (const table of store.tables) {
        await store.merkle!.markTableBuiltIfEmpty(table.schema.name);
      }
      await putObject(store, BUCKET, "k", randomBody(), { headers: [], maxSize: 1 << 20 });
    } finally {
      db.close();
    }
    const report = await checkMetadata(`${dir}/meta`);
    // The partitions of the object, of its blocks' entries and of their references.
    assert.ok(report.merkleLeaves.checked >= 3 * 256, `${report.merkleLeaves.checked} leaves`);
    assert.deepEqual(report.merkleLeaves.wrong, []);

    // An entry changed behind the index's back.
    db = await open();
    try {
      for await (
        const { key, value } of db.list<{ entry: { key: string } }>({ prefix: ["t", "object"] })
      ) {
        await db.commit([{
          type: "set",
          key,
          value: { ...value, entry: { ...value.entry, key: "x" } },
        }]);
      }
    } finally {
      db.close();
    }
    assert.equal((await checkMetadata(`${dir}/meta`)).merkleLeaves.wrong.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

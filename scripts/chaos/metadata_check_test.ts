import assert from "node:assert/strict";
import { KvStore } from "../../lib/db/kv_store.ts";
import { BlockStore } from "../../lib/block/block_store.ts";
import { writeData } from "../../lib/model/object_data.ts";
import { getCurrent, putObject } from "../../lib/model/objects.ts";
import { Store } from "../../lib/model/store.ts";
import { checkMetadata } from "./metadata_check.ts";

const BUCKET = "bucket-id";

function randomBody(): ReadableStream<Uint8Array> {
  return new Blob([crypto.getRandomValues(new Uint8Array(3000))]).stream();
}

Deno.test("the metadata check finds a complete version's missing data, and data nothing names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-metadata-check-test-" });
  try {
    await Deno.mkdir(`${dir}/meta`);
    const db = await KvStore.open(`${dir}/meta/metadata.kv`);
    try {
      const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize: 1024 });
      const put = (key: string) =>
        putObject(store, BUCKET, key, randomBody(), { headers: [], maxSize: 1 << 20 });
      await put("kept");
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
      const leaked = crypto.randomUUID();
      await write(leaked);
      assert.equal((await getCurrent(store, BUCKET, "kept"))?.data.type, "parts");
    } finally {
      db.close();
    }

    const report = await checkMetadata(`${dir}/meta`);
    assert.equal(report.partsChecked, 2);
    assert.deepEqual(report.missing.map((m) => [m.key, m.problem]), [["broken", "no blocks"]]);
    assert.deepEqual(report.uploading, { dataIds: 1, bytes: 3000 });
    assert.deepEqual(report.leaked, { dataIds: 1, bytes: 3000, sample: [report.leaked.sample[0]] });
    assert.deepEqual(report.endedUploads, { dataIds: 0, bytes: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

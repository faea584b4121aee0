import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { deleteObject, getCurrent, putObject } from "./objects.ts";
import { Store } from "./store.ts";

const BUCKET = "bucket-id";

function bodyOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
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

Deno.test("a lone store timestamps writes after what it holds, even with its clock behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-objects-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
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
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { KvStore } from "../../lib/db/kv_store.ts";
import { BlockStore } from "../../lib/block/block_store.ts";
import { putObject } from "../../lib/model/objects.ts";
import { Store } from "../../lib/model/store.ts";
import { seededRandom } from "../../lib/util/seeded_random.ts";
import { checkMetadata } from "./metadata_check.ts";
import { blockFiles, checkBlockFiles, damageBlock } from "./block_rot.ts";

Deno.test("the block check finds each kind of damage done to a node's block files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-block-rot-test-" });
  try {
    await Deno.mkdir(`${dir}/meta`);
    const db = await KvStore.open(`${dir}/meta/metadata.kv`);
    try {
      const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize: 1024 });
      const body = new Blob([crypto.getRandomValues(new Uint8Array(5 * 1024))]).stream();
      await putObject(store, "bucket-id", "k", body, { headers: [], maxSize: 1 << 20 });
      await store.releases.settled();
    } finally {
      db.close();
    }
    const { liveBlocks } = await checkMetadata(`${dir}/meta`);
    const files = await blockFiles(`${dir}/data`);
    const names = files.map((path) => path.slice(path.lastIndexOf("/") + 1));
    assert.equal(liveBlocks.length, 5);
    assert.deepEqual([...names].sort(), [...liveBlocks].sort(), "the files are the live blocks");
    assert.deepEqual(await checkBlockFiles(`${dir}/data`, liveBlocks), {
      checked: 5,
      corrupt: [],
      missing: [],
    });

    const random = seededRandom(3);
    assert.ok(await damageBlock(files[0], "flip", random));
    assert.ok(await damageBlock(files[1], "truncate", random));
    assert.ok(await damageBlock(files[2], "delete", random));
    assert.equal(await damageBlock(files[2], "flip", random), false, "a file gone is told");
    assert.equal((await Deno.stat(files[0])).size, 1024, "a flip keeps the size");
    assert.ok((await Deno.stat(files[1])).size < 1024);
    const report = await checkBlockFiles(`${dir}/data`, liveBlocks);
    assert.equal(report.checked, 4);
    assert.deepEqual(report.corrupt.sort(), [files[0], files[1]].sort());
    assert.deepEqual(report.missing, [names[2]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

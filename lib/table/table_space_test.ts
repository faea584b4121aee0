/**
 * A replica whose metadata disk is at its reserve takes no new entries, but
 * changes to those it has (deletions among them) go on, also within a batch
 * that holds new entries (anti-entropy's), which then fails.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { FreeSpace, OutOfSpaceError } from "../util/free_space.ts";
import type { TableSchema } from "./schema.ts";
import { Table } from "./table.ts";

interface Note {
  pk: string;
  t: number;
  text: string;
  deleted?: boolean;
}

const noteSchema: TableSchema<Note> = {
  name: "note",
  formatVersion: 1,
  partitionKey: (n) => n.pk,
  sortKey: () => "",
  merge: (a, b) => (a.t >= b.t ? a : b),
  isTombstone: (n) => n.deleted === true,
};

Deno.test("a table at its disk's reserve refuses new entries and takes changes and deletions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise_table_space_" });
  const db = await KvStore.open(`${dir}/meta.kv`);
  try {
    const disk = { free: 100 };
    const space = new FreeSpace(
      "metadata disk",
      dir,
      50,
      () => Promise.resolve({ free: disk.free, total: 1000 }),
    );
    await space.refresh();
    const table = new Table(
      noteSchema,
      db,
      new KeyedMutex(),
      new LocalReplication(),
      undefined,
      space,
    );
    await table.applyLocal([{ pk: "kept", t: 1, text: "v1" }, { pk: "gone", t: 1, text: "v1" }]);

    disk.free = 10; // under the reserve from now on
    await space.refresh();
    await assert.rejects(
      table.applyLocal([{ pk: "new", t: 2, text: "v1" }]),
      OutOfSpaceError,
    );
    assert.equal(await table.getLocal("new"), undefined);

    // A batch with a new entry, a change and a deletion: the last two are stored.
    await assert.rejects(
      table.applyLocal([
        { pk: "kept", t: 3, text: "v2" },
        { pk: "other-new", t: 3, text: "v1" },
        { pk: "gone", t: 3, text: "", deleted: true },
      ]),
      OutOfSpaceError,
    );
    assert.equal((await table.getLocal("kept"))?.text, "v2");
    assert.equal(await table.getLocal("other-new"), undefined);
    // (a store that runs alone drops a tombstone at once: it is every replica)
    assert.equal(await table.getLocal("gone"), undefined);

    // A deletion of an entry never seen is a tombstone, which is taken too.
    await table.applyLocal([{ pk: "unknown", t: 4, text: "", deleted: true }]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

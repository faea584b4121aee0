/**
 * A partition's end marker (TableSchema.partitionEnd) ends every entry of
 * the partition a node holds, whenever the entry arrives: before the marker,
 * with it, or after it.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import type { TableSchema } from "./schema.ts";
import { Table } from "./table.ts";
import { MerkleIndex } from "./merkle.ts";

interface Item {
  pk: string;
  sk: string;
  /** Which marker ended it (the marker names itself). */
  endedBy?: string;
}

const END = "~end";

const itemSchema: TableSchema<Item> = {
  name: "item",
  formatVersion: 1,
  partitionKey: (i) => i.pk,
  sortKey: (i) => i.sk,
  merge: (a, b) => (a.endedBy !== undefined ? a : b),
  partitionEnd: {
    sortKey: END,
    end: (i, marker) => (i.endedBy !== undefined ? i : { ...i, endedBy: marker.endedBy }),
  },
};

/** A node of a cluster (tombstones are kept; none here), its replicas out of reach. */
class OneOfMany extends LocalReplication {
  override readonly nodeId: string = "this-node";
}

async function withTable(fn: (table: Table<Item>) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-partition-end-test-" });
  const db = await KvStore.open(`${dir}/meta.kv`);
  try {
    await fn(new Table(itemSchema, db, new KeyedMutex(), new OneOfMany()));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function entries(table: Table<Item>, pk: string): Promise<Item[]> {
  const found: Item[] = [];
  for await (const i of table.scan(pk)) found.push(i);
  return found;
}

Deno.test("a partition's end marker ends the entries stored before it, and no other partition's", async () => {
  await withTable(async (table) => {
    await table.applyLocal([{ pk: "a", sk: "1" }, { pk: "a", sk: "2" }, { pk: "b", sk: "1" }]);
    await table.applyLocal([{ pk: "a", sk: END, endedBy: "m1" }]);
    assert.deepEqual(await entries(table, "a"), [
      { pk: "a", sk: "1", endedBy: "m1" },
      { pk: "a", sk: "2", endedBy: "m1" },
      { pk: "a", sk: END, endedBy: "m1" },
    ]);
    assert.deepEqual(await entries(table, "b"), [{ pk: "b", sk: "1" }]);
  });
});

Deno.test("an entry that arrives after its partition's end marker, or with it, is stored ended", async () => {
  await withTable(async (table) => {
    await table.applyLocal([{ pk: "a", sk: END, endedBy: "m1" }]);
    await table.applyLocal([{ pk: "a", sk: "1" }]);
    // In one batch, the marker after the entry it ends.
    await table.applyLocal([{ pk: "b", sk: "1" }, { pk: "b", sk: END, endedBy: "m2" }]);
    assert.deepEqual((await entries(table, "a")).map((i) => i.endedBy), ["m1", "m1"]);
    assert.deepEqual((await entries(table, "b")).map((i) => i.endedBy), ["m2", "m2"]);
  });
});

Deno.test("an entry already ended keeps its own end when the marker arrives", async () => {
  await withTable(async (table) => {
    await table.applyLocal([{ pk: "a", sk: "1", endedBy: "earlier" }]);
    await table.applyLocal([{ pk: "a", sk: END, endedBy: "m1" }]);
    assert.deepEqual((await entries(table, "a")).map((i) => i.endedBy), ["earlier", "m1"]);
  });
});

Deno.test("entries and their partition's end marker arriving at once are all ended", async () => {
  await withTable(async (table) => {
    const arrivals: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      arrivals.push(table.applyLocal([{ pk: "a", sk: String(i).padStart(3, "0") }]));
      if (i === 25) arrivals.push(table.applyLocal([{ pk: "a", sk: END, endedBy: "m1" }]));
    }
    await Promise.all(arrivals);
    const found = await entries(table, "a");
    assert.equal(found.length, 51);
    assert.deepEqual(found.filter((i) => i.endedBy !== "m1"), []);
  });
});

Deno.test("a marker that ends entries of every Merkle leaf, among writes of other keys of its partition, keeps the index right", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-partition-end-test-" });
  const db = await KvStore.open(`${dir}/meta.kv`);
  try {
    const mutex = new KeyedMutex();
    const merkle = new MerkleIndex(db, mutex);
    const table = new Table(itemSchema, db, mutex, new OneOfMany(), merkle);
    const partition = table.partitionOf("a");
    let other = 0;
    while (table.partitionOf(`b${other}`) !== partition) other++;
    const neighbour = `b${other}`;
    const sortKeys = Array.from({ length: 300 }, (_, i) => String(i).padStart(3, "0"));
    await table.applyLocal(sortKeys.map((sk) => ({ pk: "a", sk })));
    // The neighbour's entries fall in the same leaves as the ended ones.
    const writes = sortKeys.map((sk) => table.applyLocal([{ pk: neighbour, sk }]));
    writes.splice(150, 0, table.applyLocal([{ pk: "a", sk: END, endedBy: "m1" }]));
    await Promise.all(writes);
    const stored = async function* () {
      for await (const { key, value } of db.list({ prefix: ["t", "item", partition] })) {
        yield { pk: key[3] as string, sk: key[4] as string, entry: value };
      }
    };
    const check = await merkle.rebuild("item", partition, stored());
    assert.deepEqual(check, { items: 601, changed: 0, leavesChanged: 0 });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

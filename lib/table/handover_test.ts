import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { LocalReplication, type Replication } from "../rpc/replication.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { handOverPartitions } from "./handover.ts";
import { MerkleIndex } from "./merkle.ts";
import { partitionOfKey } from "./partition.ts";
import type { TableSchema } from "./schema.ts";
import { type StoredEntry, Table } from "./table.ts";

interface Note {
  pk: string;
  t: number;
  text: string;
}

const noteSchema: TableSchema<Note> = {
  name: "note",
  formatVersion: 1,
  partitionKey: (n) => n.pk,
  sortKey: () => "",
  merge: (a, b) => (a.t >= b.t ? a : b),
};

/** This node, replica of the `held` partitions only; the others' replicas are nodes a and b. */
function partialReplication(held: Set<number>): Replication {
  const local = new LocalReplication();
  return {
    nodeId: local.nodeId,
    run: local.run,
    runOf: (node) => local.runOf(node),
    hasRole: (node) => local.hasRole(node),
    storesPartition: (partition) => held.has(partition),
    writeSets: (partition) => held.has(partition) ? [[local.nodeId]] : [["a", "b"]],
    readSet: (partition) => held.has(partition) ? [local.nodeId] : ["a", "b"],
    writeQuorum: (n) => n,
    readQuorum: () => 1,
    isUp: () => true,
    holdsAllWrites: () => true,
    peersUp: () => [],
    peerClockOffsetsMs: () => [],
    byProximity: (nodes) => nodes,
    readHedgeMs: () => local.readHedgeMs(),
    call: (node, path, message) => local.call(node, path, message),
    register: (path, handler) => local.register(path, handler),
  };
}

/** Two keys in different partitions. */
function twoPartitionKeys(): [string, string] {
  const first = "note-0";
  for (let i = 1;; i++) {
    const other = `note-${i}`;
    if (partitionOfKey(other) !== partitionOfKey(first)) return [first, other];
  }
}

async function withTable(
  fn: (table: Table<Note>, db: KvStore, replication: Replication, keys: string[]) => Promise<
    void
  >,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise_handover_" });
  const db = await KvStore.open(`${dir}/meta.db`);
  try {
    const [kept, moved] = twoPartitionKeys();
    const replication = partialReplication(new Set([partitionOfKey(kept)]));
    const mutex = new KeyedMutex();
    const table = new Table(noteSchema, db, mutex, replication, new MerkleIndex(db, mutex));
    await table.applyLocal([{ pk: kept, t: 1, text: "held here" }, {
      pk: moved,
      t: 1,
      text: "held elsewhere",
    }]);
    await fn(table, db, replication, [kept, moved]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("handover: entries of partitions not held go to every replica, then leave", () =>
  withTable(async (table, db, replication, [kept, moved]) => {
    const received: Record<string, unknown[]> = { a: [], b: [] };
    const result = await handOverPartitions([table], db, replication, (node, name, stored) => {
      assert.equal(name, "note");
      received[node].push(...stored);
      return Promise.resolve();
    });
    assert.deepEqual(result, { handedOver: 1, partitionsKept: 0 });
    for (const node of ["a", "b"]) {
      assert.deepEqual(
        received[node].map((s) => (s as StoredEntry<Note>).entry),
        [{ pk: moved, t: 1, text: "held elsewhere" }],
        `node ${node} received the entry`,
      );
    }
    assert.equal(await table.getLocal(moved), undefined, "the copy here is gone");
    assert.deepEqual(await table.getLocal(kept), { pk: kept, t: 1, text: "held here" });
  }));

Deno.test("handover: an unreachable replica keeps the entries here for a later pass", () =>
  withTable(async (table, db, replication, [, moved]) => {
    const result = await handOverPartitions(
      [table],
      db,
      replication,
      (node) => node === "b" ? Promise.reject(new Error("node b is down")) : Promise.resolve(),
    );
    assert.deepEqual(result, {
      handedOver: 0,
      partitionsKept: 1,
      firstFailure: `table note partition ${partitionOfKey(moved)}: node b is down`,
    });
    assert.deepEqual(await table.getLocal(moved), { pk: moved, t: 1, text: "held elsewhere" });
  }));

Deno.test("handover: an entry that changed meanwhile is not deleted", () =>
  withTable(async (table, db, replication, [, moved]) => {
    const result = await handOverPartitions([table], db, replication, async (node) => {
      // A late write reaches this node between the handover and the deletion.
      if (node === "a") await table.applyLocal([{ pk: moved, t: 2, text: "newer" }]);
    });
    assert.deepEqual(result, { handedOver: 0, partitionsKept: 1 }, "kept for the next pass");
    assert.deepEqual(await table.getLocal(moved), { pk: moved, t: 2, text: "newer" });
  }));

Deno.test("handover: storing entries of a partition not held here is reported, so that they are handed over soon", () =>
  withTable(async (table, _db, _replication, [kept, moved]) => {
    let reports = 0;
    table.onEntriesNotHeld(() => reports++);
    await table.applyLocal([{ pk: kept, t: 2, text: "held here" }]);
    assert.equal(reports, 0, "an entry of a partition held here is not reported");
    // A peer that has not yet seen the layout change still writes here.
    await table.applyLocal([{ pk: kept, t: 3, text: "held here" }, {
      pk: moved,
      t: 2,
      text: "late write",
    }]);
    assert.equal(reports, 1);
    await table.applyStored([{ v: 1, entry: { pk: moved, t: 3, text: "from anti-entropy" } }]);
    assert.equal(reports, 2);
  }));

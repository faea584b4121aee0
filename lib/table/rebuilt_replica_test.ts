/**
 * A replica rebuilt from empty disks lost the writes it acknowledged before.
 * Until it has fetched them, a quorum read leaves it out while the replicas
 * up that hold every write are enough: with it, a read could meet only
 * copies that miss a write (its own, and a lagging replica's).
 */
import assert from "node:assert/strict";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import type { TableSchema } from "./schema.ts";
import type { Table } from "./table.ts";
import { withTable } from "./_test_table.ts";

interface Note {
  pk: string;
  sk: string;
}

const schema: TableSchema<Note> = {
  name: "note",
  formatVersion: 1,
  partitionKey: (n) => n.pk,
  sortKey: (n) => n.sk,
  merge: (a) => a,
};

const WRITTEN: Note = { pk: "p", sk: "written" };

/**
 * This node, rebuilt from empty disks (it holds nothing yet), and two
 * replicas: "near", which missed the write, and "far", which has it. A read
 * quorum is two, and the nearest two are this node and "near".
 */
class RebuiltNode extends LocalReplication {
  override readonly nodeId: string = "this-node";
  rebuilt = true;
  farUp = true;
  override readSet(): string[] {
    return [this.nodeId, "near", "far"];
  }
  override readQuorum(): number {
    return 2;
  }
  override isUp(node: string): boolean {
    return node !== "far" || this.farUp;
  }
  override holdsAllWrites(node: string): boolean {
    return node !== this.nodeId || !this.rebuilt;
  }
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node === this.nodeId) return super.call(node, path, message);
    if (node === "far" && !this.farUp) return Promise.reject(new Error("connection refused"));
    const held = node === "far" ? [WRITTEN] : [];
    return Promise.resolve({
      body: path.endsWith("/range") ? { entries: held } : { entry: held[0] ?? null },
    });
  }
}

async function scanned(table: Table<Note>): Promise<string[]> {
  const found: string[] = [];
  for await (const n of table.scan("p")) found.push(n.sk);
  return found;
}

Deno.test("a quorum read leaves out a rebuilt replica while the replicas holding every write are enough", async () => {
  const replication = new RebuiltNode();
  await withTable(replication, schema, async (table) => {
    assert.deepEqual(await table.get("p", "written"), WRITTEN);
    assert.deepEqual(await scanned(table), ["written"]);
  });
});

Deno.test("a rebuilt replica is read when the others up are too few, as it was before", async () => {
  const replication = new RebuiltNode();
  replication.farUp = false;
  await withTable(replication, schema, async (table) => {
    // Only "far" has the write: no quorum of the replicas up can find it.
    assert.equal(await table.get("p", "written"), undefined);
    assert.deepEqual(await scanned(table), []);
  });
});

Deno.test("once it holds every write again, a rebuilt replica is read first, as the nearest", async () => {
  const replication = new RebuiltNode();
  replication.rebuilt = false;
  await withTable(replication, schema, async (table) => {
    // This node and "near" answer first: the write that both missed is not seen, which shows
    // that the two tests above owe their answers to the rebuilt node being left out or not.
    assert.equal(await table.get("p", "written"), undefined);
  });
});

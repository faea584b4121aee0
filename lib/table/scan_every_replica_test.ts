/**
 * A scan that must not miss an entry (a release) reads every replica seen
 * up: an entry that reached only the replica a quorum read skips, as a write
 * cut short by its node's death leaves it, is found there. A read that a
 * copy on any replica would overturn (may a copy's data be released?) asks
 * every replica, and fails unless each answers.
 */
import assert from "node:assert/strict";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import type { TableSchema } from "./schema.ts";
import { withTable } from "./_test_table.ts";

interface Block {
  dataId: string;
  offset: string;
}

const blockSchema: TableSchema<Block> = {
  name: "block",
  formatVersion: 1,
  partitionKey: (b) => b.dataId,
  sortKey: (b) => b.offset,
  merge: (a) => a,
};

/**
 * This node and two replicas: "near", which missed the entries a write cut
 * short left on "far" alone. A read quorum is two, and the nearest two are
 * this node and "near".
 */
class FarHoldsMore extends LocalReplication {
  override readonly nodeId: string = "this-node";
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
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (node === "near") return Promise.resolve({ body: { entries: [] } });
    if (node === "far") {
      if (!this.farUp) return Promise.reject(new Error("connection refused"));
      const entries = [{ dataId: "d", offset: "0002" }, { dataId: "d", offset: "0003" }];
      return Promise.resolve({ body: { entries } });
    }
    return super.call(node, path, message);
  }
}

Deno.test("a scan of every replica up finds what only the replica a quorum read skips holds", async () => {
  const replication = new FarHoldsMore();
  await withTable(replication, blockSchema, async (table) => {
    await table.applyLocal([{ dataId: "d", offset: "0001" }]);
    const offsets = async (everyReplicaUp: boolean) => {
      const found: string[] = [];
      for await (const b of table.scan("d", { everyReplicaUp })) found.push(b.offset);
      return found;
    };
    assert.deepEqual(await offsets(false), ["0001"], "a quorum read misses far's entries");
    assert.deepEqual(await offsets(true), ["0001", "0002", "0003"]);
    // A replica seen down is not waited for: the others still make a quorum.
    replication.farUp = false;
    assert.deepEqual(await offsets(true), ["0001"]);
  });
});

/** This node and two replicas that answer their own copy of every entry, or are down. */
class ThreeCopies extends LocalReplication {
  override readonly nodeId: string = "this-node";
  down = new Set<string>();
  override readSet(): string[] {
    return [this.nodeId, "near"];
  }
  override writeSets(): string[][] {
    return [[this.nodeId, "near", "far"]];
  }
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (this.down.has(node)) return Promise.reject(new Error(`${node}: connection refused`));
    if (node === "near") return Promise.resolve({ body: { entry: null } });
    if (node === "far") return Promise.resolve({ body: { entry: { dataId: "d", offset: "far" } } });
    return super.call(node, path, message);
  }
}

Deno.test("a read from every replica merges each one's copy, and fails unless each answers", async () => {
  const replication = new ThreeCopies();
  const newestOffset: TableSchema<Block> = {
    ...blockSchema,
    merge: (a, b) => (a.offset > b.offset ? a : b),
  };
  await withTable(replication, newestOffset, async (table) => {
    await table.applyLocal([{ dataId: "d", offset: "0001" }]);
    // "far", which is only in the write set, is asked too; its copy wins the merge.
    assert.deepEqual(await table.getFromEveryReplica("d", "0001"), { dataId: "d", offset: "far" });
    replication.down.add("far");
    await assert.rejects(table.getFromEveryReplica("d", "0001"), /far: connection refused/);
  });
});

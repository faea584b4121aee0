import assert from "node:assert/strict";
import { ClusterReplication } from "./replication.ts";
import type { PeerState, System } from "./system.ts";
import { RpcError, type RpcMessage } from "../net/transport.ts";

/** A System whose transport refuses the first `refusals` calls as a busy peer does. */
function busyPeer(refusals: number, kind: "overloaded" | "remote" = "overloaded") {
  let calls = 0;
  const system = {
    nodeId: "self",
    options: {
      transport: {
        callNode: (): Promise<RpcMessage> => {
          calls++;
          return calls <= refusals
            ? Promise.reject(new RpcError(kind, "x: node is overloaded (128 requests in progress)"))
            : Promise.resolve({ body: "served" });
        },
      },
    },
  } as unknown as System;
  return { replication: new ClusterReplication(system, "consistent"), calls: () => calls };
}

Deno.test("a request a busy peer refused before running it is retried shortly", async () => {
  const busy = busyPeer(3);
  assert.deepEqual(await busy.replication.call("peer", "table/x", { body: 1 }), { body: "served" });
  assert.equal(busy.calls(), 4);
});

Deno.test("a peer busy for longer, or failing otherwise, fails the call; a stream is not sent twice", async () => {
  const always = busyPeer(100);
  await assert.rejects(always.replication.call("peer", "table/x", { body: 1 }), /overloaded/);
  assert.equal(always.calls(), 6, "five retries, ~375 ms");
  const failing = busyPeer(1, "remote");
  await assert.rejects(failing.replication.call("peer", "table/x", { body: 1 }));
  assert.equal(failing.calls(), 1);
  const streamed = busyPeer(1);
  const stream = new ReadableStream<Uint8Array>();
  await assert.rejects(streamed.replication.call("peer", "block/put", { body: 1, stream }));
  assert.equal(streamed.calls(), 1);
});

Deno.test("the peers' clock offsets: those up and measured; none to compare with in a cluster of one", () => {
  const withPeers = (peers: Partial<PeerState>[]) =>
    new ClusterReplication(
      { nodeId: "self", peers: () => [{ id: "self", up: true }, ...peers] } as unknown as System,
      "consistent",
    );
  assert.equal(withPeers([]).peerClockOffsetsMs(), undefined);
  assert.deepEqual(
    withPeers([
      { id: "a", up: true, clockOffsetMs: 1_500 },
      { id: "b", up: false, clockOffsetMs: -9_000 },
      { id: "c", up: true },
    ]).peerClockOffsetsMs(),
    [1_500],
  );
  assert.deepEqual(withPeers([{ id: "b", up: false, clockOffsetMs: 5 }]).peerClockOffsetsMs(), []);
});

Deno.test("a node holds every write once it synced the oldest active layout version", () => {
  const peers = new Map<string, Partial<PeerState>>([
    ["synced", { status: { syncedLayoutVersion: 2 } as PeerState["status"] }],
    ["rebuilt", { status: { syncedLayoutVersion: 0 } as PeerState["status"] }],
    ["unheard", {}],
  ]);
  const replication = (selfSynced: number, versions: number[]) =>
    new ClusterReplication(
      {
        nodeId: "self",
        syncedLayoutVersion: selfSynced,
        layout: { versions: versions.map((version) => ({ version })) },
        peer: (id: string) => peers.get(id),
      } as unknown as System,
      "consistent",
    );
  const steady = replication(2, [2]);
  assert.equal(steady.holdsAllWrites("self"), true);
  assert.equal(steady.holdsAllWrites("synced"), true);
  assert.equal(steady.holdsAllWrites("rebuilt"), false);
  assert.equal(steady.holdsAllWrites("unheard"), false);
  // This node, rebuilt from empty disks, has synced no version yet.
  assert.equal(replication(0, [2]).holdsAllWrites("self"), false);
  // While data moves to version 3, reads go to version 2's nodes, which synced it.
  assert.equal(replication(2, [2, 3]).holdsAllWrites("self"), true);
  // A cluster without a layout has nothing to hold.
  assert.equal(replication(0, []).holdsAllWrites("self"), true);
});

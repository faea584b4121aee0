import assert from "node:assert/strict";
import { MemoryNetwork } from "./memory_transport.ts";
import { transportConformance } from "./transport_conformance.ts";
import { RpcError } from "./transport.ts";
import { sleep } from "./_test_helpers.ts";

const idA = "a".repeat(64);
const idB = "b".repeat(64);

transportConformance("memory", async () => {
  const network = new MemoryNetwork(42);
  const a = network.transport(idA, "10.0.0.1:3901", { maxConcurrentRequests: 1024 });
  const b = network.transport(idB, "10.0.0.2:3901", { maxConcurrentRequests: 1024 });
  const idle = () => Promise.resolve({ body: null });
  await a.serve(idle);
  await b.serve(idle);
  return {
    a,
    b,
    bAddr: "10.0.0.2:3901",
    cleanup: async () => {
      await a.close();
      await b.close();
    },
  };
});

Deno.test("memory: partitions, delays and drops", async () => {
  const network = new MemoryNetwork(7);
  const a = network.transport(idA, "10.0.0.1:3901");
  const b = network.transport(idB, "10.0.0.2:3901");
  await b.serve(() => Promise.resolve({ body: "pong" }));
  const downs: string[] = [];
  a.onPeerDisconnected((id) => downs.push(id));
  assert.equal((await a.call({ addr: "10.0.0.2:3901" }, "ping", { body: null })).body, "pong");

  network.partition(idA, idB);
  assert.deepEqual(downs, [idB]);
  await assert.rejects(
    a.callNode(idB, "ping", { body: null }),
    (e: unknown) => e instanceof RpcError && e.kind === "unreachable",
  );
  network.heal(idA, idB);
  assert.equal((await a.callNode(idB, "ping", { body: null })).body, "pong");

  network.setDelay(idA, idB, 50);
  const t0 = performance.now();
  await a.callNode(idB, "ping", { body: null });
  assert.ok(performance.now() - t0 >= 95, "a round trip costs two one-way delays");
  network.setDelay(idA, idB, 0);

  network.dropRate(1);
  await assert.rejects(
    a.callNode(idB, "ping", { body: null }, { timeoutMs: 50 }),
    (e: unknown) => e instanceof RpcError && e.kind === "timeout",
  );
  network.dropRate(0);
  await assert.rejects(
    a.call({ id: idA, addr: "10.0.0.2:3901" }, "ping", { body: null }),
    (e: unknown) => e instanceof RpcError && e.kind === "refused",
  );
  await a.close();
  await b.close();
});

Deno.test("memory: a partition during a stream fails both ends", async () => {
  const network = new MemoryNetwork(1);
  const a = network.transport(idA, "a:1");
  const b = network.transport(idB, "b:1");
  let handlerError: unknown;
  await b.serve(async (_f, _p, { stream }) => {
    try {
      for await (const _ of stream!) await sleep(1);
    } catch (e) {
      handlerError = e;
    }
    return { body: null };
  });
  const body = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(1000)) });
  const call = a.call({ addr: "b:1" }, "sink", { body: null, stream: body });
  await sleep(30);
  network.partition(idA, idB);
  await assert.rejects(call, (e: unknown) => e instanceof RpcError && e.kind === "closed");
  await sleep(10);
  assert.ok(handlerError instanceof RpcError);
  await a.close();
  await b.close();
});

Deno.test("memory: overload beyond maxConcurrentRequests", async () => {
  const network = new MemoryNetwork(1);
  const a = network.transport(idA, "a:1");
  const b = network.transport(idB, "b:1", { maxConcurrentRequests: 2 });
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await b.serve(async () => (await gate, { body: 1 }));
  const calls = Array.from({ length: 4 }, () => a.call({ addr: "b:1" }, "x", { body: null }));
  for (const extra of calls.slice(2)) {
    await assert.rejects(extra, (e: unknown) => e instanceof RpcError && e.kind === "overloaded");
  }
  // Membership's requests are served all the same: a busy node is not a down one.
  const ping = a.call({ addr: "b:1" }, "system/ping", { body: null });
  release();
  assert.equal((await ping).body, 1);
  for (const admitted of calls.slice(0, 2)) assert.equal((await admitted).body, 1);
  await a.close();
  await b.close();
});

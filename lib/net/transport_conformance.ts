/**
 * The behaviour every Transport must have, as Deno tests. `makePair` returns
 * two transports that both already serve (serving again replaces the
 * handler), `bAddr` being where `a` can dial `b`.
 */
import assert from "node:assert/strict";
import { deferred, hashStream, patternStream, sleep, waitFor } from "./_test_helpers.ts";
import { RpcError, type RpcHandler, type Transport } from "./transport.ts";

export interface TransportPair {
  a: Transport;
  b: Transport;
  bAddr: string;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

export function transportConformance(
  name: string,
  makePair: () => Promise<TransportPair>,
): void {
  const test = (title: string, fn: (p: TransportPair) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const pair = await makePair();
      try {
        await fn(pair);
      } finally {
        await pair.cleanup();
      }
    });
  const echo: RpcHandler = (from, path, { body }) =>
    Promise.resolve({ body: { from, path, body } });

  test("request and response", async ({ a, b, bAddr }) => {
    await b.serve(echo);
    const body = { n: 1, s: "é", list: [1, "two", null], bytes: new Uint8Array([1, 2, 3]) };
    const r = await a.call({ addr: bAddr }, "table/get", { body });
    assert.equal(r.from, b.nodeId);
    assert.deepEqual(r.body, { from: a.nodeId, path: "table/get", body });
    assert.equal(r.stream, undefined);
    const again = await a.call({ id: b.nodeId, addr: bAddr }, "p", { body: 7 });
    assert.deepEqual(again.body, { from: a.nodeId, path: "p", body: 7 });
    assert.deepEqual((await a.callNode(b.nodeId, "q", { body: null })).body, {
      from: a.nodeId,
      path: "q",
      body: null,
    });
  });

  test("hundreds of concurrent requests", async ({ a, b, bAddr }) => {
    await b.serve(async (_from, _path, { body }) => {
      await sleep((body as number) % 5);
      return { body: (body as number) * 2 };
    });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => a.call({ addr: bAddr }, "double", { body: i })),
    );
    results.forEach((r, i) => assert.equal(r.body, i * 2));
  });

  test("both directions over one connection", async ({ a, b, bAddr }) => {
    const seenByA: string[] = [];
    const seenByB: string[] = [];
    a.onPeerConnected((id) => seenByA.push(id));
    b.onPeerConnected((id) => seenByB.push(id));
    await a.serve(echo);
    await b.serve(echo);
    await a.call({ addr: bAddr }, "hello", { body: null });
    await waitFor(() => seenByB.length > 0, "b to see a");
    const back = await b.callNode(a.nodeId, "back", { body: "x" });
    assert.deepEqual(back.body, { from: b.nodeId, path: "back", body: "x" });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => [
        a.callNode(b.nodeId, "ab", { body: i }).then((r) =>
          assert.deepEqual(r.body, { from: a.nodeId, path: "ab", body: i })
        ),
        b.callNode(a.nodeId, "ba", { body: i }).then((r) =>
          assert.deepEqual(r.body, { from: b.nodeId, path: "ba", body: i })
        ),
      ]).flat(),
    );
    assert.deepEqual(seenByA, [b.nodeId]);
    assert.deepEqual(seenByB, [a.nodeId]);
    assert.deepEqual(a.connectedPeers().map((p) => p.id), [b.nodeId]);
    assert.deepEqual(b.connectedPeers().map((p) => p.id), [a.nodeId]);
    assert.equal(a.connectedPeers()[0].addr, bAddr);
    assert.match(b.connectedPeers()[0].addr, /^.+:\d+$/);
  });

  test("a 64 MiB body streamed each way arrives whole", async ({ a, b, bAddr }) => {
    const down = patternStream(64 * MiB, 2);
    await b.serve(async (_from, _path, { stream }) => {
      const received = await hashStream(stream!);
      return { body: received, stream: down.stream };
    });
    const up = patternStream(64 * MiB, 1);
    const r = await a.call({ addr: bAddr }, "block/put", { body: null, stream: up.stream }, {
      priority: "background",
    });
    assert.deepEqual(r.body, { bytes: 64 * MiB, sha256: up.digest() });
    const got = await hashStream(r.stream!);
    assert.deepEqual(got, { bytes: 64 * MiB, sha256: down.digest() });
  });

  test("a 256 MiB stream holds bounded memory", async ({ a, b, bAddr }) => {
    const total = 256 * MiB;
    await b.serve(async (_f, _p, { stream }) => ({
      body: await hashStream(stream!, { hash: false }),
    }));
    // rss is the process's: under `deno test --parallel` other modules share it, so when
    // it grew too much, this isolate's own heap and buffers decide.
    const own = () => Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
    const before = { rss: Deno.memoryUsage().rss, own: own() };
    const peak = { ...before };
    const sampler = setInterval(() => {
      peak.rss = Math.max(peak.rss, Deno.memoryUsage().rss);
      peak.own = Math.max(peak.own, own());
    }, 20);
    const t0 = performance.now();
    try {
      const src = patternStream(total, 3, { chunkBytes: 64 * 1024, hash: false });
      const r = await a.call({ addr: bAddr }, "block/put", { body: null, stream: src.stream }, {
        priority: "background",
      });
      assert.equal((r.body as { bytes: number }).bytes, total);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    const rss = (peak.rss - before.rss) / MiB;
    const mine = (peak.own - before.own) / MiB;
    console.log(
      `${name}: 256 MiB in ${seconds.toFixed(2)} s (${(256 / seconds).toFixed(0)} MiB/s), ` +
        `rss +${rss.toFixed(0)} MiB, heap+buffers +${mine.toFixed(0)} MiB`,
    );
    assert.ok(
      rss < 100 || mine < 100,
      `memory grew by ${rss.toFixed(0)} MiB (rss), ${mine.toFixed(0)} MiB (own)`,
    );
  });

  test("a stalled background stream does not starve high-priority calls", async ({ a, b, bAddr }) => {
    const release = deferred();
    const firstChunk = deferred();
    const down = patternStream(Infinity, 5, { hash: false });
    await b.serve(async (_f, path, { stream }) => {
      if (path === "ping") return { body: "pong" };
      if (path === "source") return { body: null, stream: down.stream };
      const reader = stream!.getReader(); // "sink": read one chunk, then stall
      await reader.read();
      firstChunk.resolve();
      await release.promise;
      await reader.cancel();
      return { body: "done" };
    });
    const up = patternStream(Infinity, 4, { hash: false });
    const sink = a.call({ addr: bAddr }, "sink", { body: null, stream: up.stream }, {
      priority: "background",
    });
    await firstChunk.promise;
    const source = await a.call({ addr: bAddr }, "source", { body: null }, {
      priority: "background",
    });
    const reader = source.stream!.getReader();
    await reader.read();
    await sleep(200); // both streams are now stalled with full windows
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) {
      const r = await a.call({ addr: bAddr }, "ping", { body: null }, { priority: "high" });
      assert.equal(r.body, "pong");
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `5 pings took ${ms} ms behind stalled streams`);
    const [upHeld, downHeld] = [up.produced(), down.produced()];
    assert.ok(upHeld < 8 * MiB, `sender buffered ${upHeld} bytes for a stalled reader`);
    assert.ok(downHeld < 8 * MiB, `responder buffered ${downHeld} bytes for a stalled reader`);
    await sleep(100);
    assert.ok(up.produced() - upHeld < MiB, "a stalled stream keeps being pulled");
    release.resolve();
    assert.equal((await sink).body, "done");
    await waitFor(() => up.cancelled(), "the sender's source to be cancelled");
    await reader.cancel();
    await waitFor(() => down.cancelled(), "the responder's source to be cancelled");
  });

  test("a request without answer times out and is cancelled at the handler", async ({ a, b, bAddr }) => {
    const aborted = deferred<unknown>();
    await b.serve((_f, _p, _m, { signal }) => {
      signal.addEventListener("abort", () => aborted.resolve(signal.reason));
      return new Promise(() => {});
    });
    const t0 = performance.now();
    await assert.rejects(
      a.call({ addr: bAddr }, "hang", { body: null }, { timeoutMs: 300 }),
      (e: unknown) => e instanceof RpcError && e.kind === "timeout" && /hang/.test(e.message),
    );
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 2000, `timed out after ${ms} ms`);
    await aborted.promise;
    await b.serve(echo); // the connection still works
    assert.equal((await a.call({ addr: bAddr }, "x", { body: 1 })).from, b.nodeId);
  });

  test("a handler's error reaches the caller", async ({ a, b, bAddr }) => {
    await b.serve(() => Promise.reject(new Error("disk on fire (sector 42)")));
    await assert.rejects(
      a.call({ addr: bAddr }, "block/get", { body: null }),
      (e: unknown) =>
        e instanceof RpcError && e.kind === "remote" &&
        e.message.includes("disk on fire (sector 42)"),
    );
  });

  test("cancelling propagates to the other end", async ({ a, b, bAddr }) => {
    const bodyError = deferred<unknown>();
    const signalled = deferred();
    await b.serve(async (_f, path, { stream }, { signal }) => {
      signal.addEventListener("abort", () => signalled.resolve());
      if (path === "slow-sink") {
        try {
          for await (const _ of stream!) await sleep(5);
        } catch (e) {
          bodyError.resolve(e);
        }
      }
      return await new Promise(() => {});
    });
    const controller = new AbortController();
    const up = patternStream(Infinity, 6, { hash: false });
    const call = a.call({ addr: bAddr }, "slow-sink", { body: null, stream: up.stream }, {
      signal: controller.signal,
    });
    await sleep(100);
    controller.abort();
    await assert.rejects(call, (e: unknown) => e instanceof RpcError && e.kind === "closed");
    await signalled.promise;
    assert.ok(await bodyError.promise, "the handler's body read failed");
    await waitFor(() => up.cancelled(), "the caller's source to be cancelled");
  });

  test("a body stream that fails fails the other end's read", async ({ a, b, bAddr }) => {
    const failing = (message: string) => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent++ < 3) c.enqueue(new Uint8Array(10_000));
          else c.error(new Error(message));
        },
      });
    };
    const handlerSaw = deferred<unknown>();
    await b.serve(async (_f, path, { stream }) => {
      if (path === "down") return { body: null, stream: failing("disk read error") };
      await hashStream(stream!).then(() => handlerSaw.resolve("no error"), handlerSaw.resolve);
      return { body: null };
    });
    await assert.rejects(
      a.call({ addr: bAddr }, "up", { body: null, stream: failing("local read error") }),
      /local read error/,
    );
    assert.ok(await handlerSaw.promise instanceof Error, "the handler's read failed");
    const r = await a.call({ addr: bAddr }, "down", { body: null });
    await assert.rejects(hashStream(r.stream!), /disk read error/);
  });

  test("peers are told when the other side goes away", async ({ a, b, bAddr }) => {
    const down = deferred<string>();
    a.onPeerDisconnected((id) => down.resolve(id));
    const hanging = deferred();
    await b.serve((_f, path) => {
      if (path === "hang") {
        hanging.resolve();
        return new Promise(() => {});
      }
      return Promise.resolve({ body: null });
    });
    await a.call({ addr: bAddr }, "x", { body: null });
    const pending = a.call({ addr: bAddr }, "hang", { body: null }, { timeoutMs: 20_000 })
      .catch((e) => e);
    await hanging.promise;
    await b.close();
    assert.equal(await down.promise, b.nodeId);
    const error = await pending;
    assert.ok(error instanceof RpcError && error.kind === "closed", String(error));
    assert.deepEqual(a.connectedPeers(), []);
    await assert.rejects(
      a.call({ addr: bAddr }, "x", { body: null }),
      (e: unknown) => e instanceof RpcError && (e.kind === "unreachable" || e.kind === "closed"),
    );
  });

  test("closing fails pending calls and refuses new ones", async ({ a, b, bAddr }) => {
    const bSawDown = deferred<string>();
    b.onPeerDisconnected((id) => bSawDown.resolve(id));
    await b.serve(() => new Promise(() => {}));
    const pending = a.call({ addr: bAddr }, "hang", { body: null }, { timeoutMs: 20_000 })
      .catch((e) => e);
    await waitFor(() => b.connectedPeers().length === 1, "b to see a");
    await a.close();
    const error = await pending;
    assert.ok(error instanceof RpcError && error.kind === "closed", String(error));
    await assert.rejects(
      a.call({ addr: bAddr }, "x", { body: null }),
      (e: unknown) => e instanceof RpcError && e.kind === "closed",
    );
    assert.equal(await bSawDown.promise, a.nodeId);
    await a.close(); // idempotent
  });
}

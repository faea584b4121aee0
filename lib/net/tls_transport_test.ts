import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { RPC_DIAL_BACKOFF_MIN_MS, RPC_REDIAL_WAIT_MS } from "../util/limits.ts";
import { shortNodeId } from "./node_id.ts";
import { decodeHeader, encodeHeader, type Frame, FrameDecoder, FrameType } from "./_framing.ts";
import { deferred, sleep, waitFor } from "./_test_helpers.ts";
import { RpcError } from "./transport.ts";
import { createClusterCa, issueNodeCertificate, type PemPair } from "./certs.ts";
import { TlsTransport, type TlsTransportOptions } from "./tls_transport.ts";
import { transportConformance } from "./transport_conformance.ts";
import { setLogFilter } from "../util/log.ts";

setLogFilter(Deno.env.get("REMISE_LOG") ?? "warn");

const HOSTS = ["127.0.0.1", "localhost"];
const ca = await createClusterCa();
const nodeA = await issueNodeCertificate(ca, { name: "node-a", hosts: HOSTS });
const nodeB = await issueNodeCertificate(ca, { name: "node-b", hosts: HOSTS });

export function tlsTransport(
  pair: PemPair,
  opts: Partial<TlsTransportOptions> = {},
): TlsTransport {
  return new TlsTransport({
    caPem: ca.certPem,
    certPem: pair.certPem,
    keyPem: pair.keyPem,
    bindAddr: "127.0.0.1:0",
    maxConcurrentRequests: 1024,
    ...opts,
  });
}

transportConformance("tls", async () => {
  const a = tlsTransport(nodeA);
  const b = tlsTransport(nodeB);
  const idle = () => Promise.resolve({ body: null });
  await a.serve(idle);
  const { port } = await b.serve(idle);
  return {
    a,
    b,
    bAddr: `127.0.0.1:${port}`,
    cleanup: async () => {
      await a.close();
      await b.close();
    },
  };
});

Deno.test("tls: node id is the one certs.ts derives", async () => {
  const { nodeIdFromCertificate } = await import("./certs.ts");
  assert.equal(tlsTransport(nodeA).nodeId, await nodeIdFromCertificate(nodeA.certPem));
});

const otherCa = await createClusterCa({ commonName: "intruder CA" });
const intruder = await issueNodeCertificate(otherCa, { name: "node-x", hosts: HOSTS });
const expired = await issueNodeCertificate(ca, {
  name: "node-old",
  hosts: HOSTS,
  notBefore: new Date(Date.now() - 10 * 86_400_000),
  notAfter: new Date(Date.now() - 86_400_000),
});

/** Runs `fn` with console.error captured (warn and error logs go there). */
async function capturingLogs(fn: () => Promise<void>): Promise<string[]> {
  const original = console.error;
  const lines: string[] = [];
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await fn();
  } finally {
    console.error = original;
  }
  return lines;
}

const isRpcError = (kind: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof RpcError && e.kind === kind && (!pattern || pattern.test(e.message));

/** A server node that counts the requests it serves. */
async function servingNode(pair = nodeB, opts: Partial<TlsTransportOptions> = {}) {
  const t = tlsTransport(pair, opts);
  const stats = { served: 0 };
  const { port } = await t.serve(() => (stats.served++, Promise.resolve({ body: "ok" })));
  return { t, stats, port, addr: `127.0.0.1:${port}` };
}

Deno.test("tls: a client without a certificate is refused and learns nothing", async () => {
  const server = await servingNode();
  let received = 0;
  const logs = await capturingLogs(async () => {
    const sock = tls.connect({
      host: "127.0.0.1",
      port: server.port,
      ca: ca.certPem,
      checkServerIdentity: () => undefined,
    });
    sock.on("data", (d: Uint8Array) => received += d.length);
    sock.on("error", () => {});
    sock.on("secureConnect", () => sock.write(encodeHeader(FrameType.HELLO, 0, { v: 1, n: "x" })));
    await new Promise((resolve) => sock.on("close", resolve));
    await waitFor(() => server.stats.served === 0, "log");
  });
  assert.equal(received, 0);
  assert.equal(server.stats.served, 0);
  assert.deepEqual(server.t.connectedPeers(), []);
  assert.ok(
    logs.some((l) => l.includes("refused RPC connection from 127.0.0.1:")),
    logs.join("\n"),
  );
  await server.t.close();
});

for (
  const [what, pair] of [["a foreign CA", intruder], ["an expired certificate", expired]] as const
) {
  Deno.test(`tls: a client with ${what} is refused`, async () => {
    const server = await servingNode();
    const client = tlsTransport(pair);
    const logs = await capturingLogs(async () => {
      await assert.rejects(
        client.call({ addr: server.addr }, "x", { body: null }),
        isRpcError("refused"),
      );
    });
    assert.equal(server.stats.served, 0);
    assert.deepEqual(server.t.connectedPeers(), []);
    assert.ok(
      logs.some((l) => l.includes("refused RPC connection from 127.0.0.1:")),
      logs.join("\n"),
    );
    await client.close();
    await server.t.close();
  });

  Deno.test(`tls: a server with ${what} is refused`, async () => {
    const server = await servingNode(pair, pair === intruder ? { caPem: otherCa.certPem } : {});
    const client = tlsTransport(nodeA);
    await capturingLogs(async () => {
      await assert.rejects(
        client.call({ addr: server.addr }, "x", { body: null }),
        isRpcError("refused"),
      );
    });
    assert.equal(server.stats.served, 0);
    await client.close();
    await server.t.close();
  });
}

Deno.test("tls: a connection left silent (half-open after a crash) does not get the node's restart refused", async () => {
  // Pings every 100 ms, but a silent connection is not closed for a minute.
  const slow = { limits: { pingIntervalMs: 100, pingTimeoutMs: 60_000 } };
  const server = await servingNode(nodeA, slow);
  const proxy = await blackholeProxy(server.port);
  const crashed = tlsTransport(nodeB, slow);
  await crashed.call({ addr: proxy.addr }, "x", { body: null });
  proxy.blackhole = true; // the old process is gone without a word
  await sleep(400);
  const restarted = tlsTransport(nodeB, slow);
  const errors: string[] = [];
  let answered = false;
  for (let attempt = 0; attempt < 5 && !answered; attempt++) {
    try {
      await restarted.call({ addr: server.addr }, "x", { body: null });
      answered = true;
    } catch (e) {
      errors.push(`${(e as RpcError).kind}: ${(e as Error).message}`);
      await sleep(RPC_DIAL_BACKOFF_MIN_MS);
    }
  }
  assert.ok(answered, errors.join("\n"));
  assert.ok(!errors.some((e) => e.startsWith("refused")), errors.join("\n"));
  assert.deepEqual(server.t.identityWarnings(), []);
  await crashed.close();
  await restarted.close();
  await server.t.close();
  await proxy.close();
});

Deno.test("tls: a node with a certificate from another CA is told so, and logged once", async () => {
  const server = await servingNode();
  const otherCa = await createClusterCa();
  const stranger = await issueNodeCertificate(otherCa, { name: "stranger", hosts: HOSTS });
  const client = tlsTransport(stranger, { caPem: otherCa.certPem });
  const logs = await capturingLogs(async () => {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        client.call({ addr: server.addr }, "x", { body: null }),
        isRpcError("refused", /its certificate is not signed by this node's ca_cert/),
      );
      await sleep(RPC_DIAL_BACKOFF_MIN_MS * 4);
    }
  });
  assert.equal(server.stats.served, 0);
  const refusals = logs.filter((l) => l.includes("refused RPC connection"));
  assert.equal(refusals.length, 1, logs.join("\n"));
  assert.match(
    refusals[0],
    /TLS handshake failed \(.*\)\. Nodes need certificates signed by the same/,
  );
  await client.close();
  await server.t.close();
});

Deno.test("tls: dialling id@addr checks the id the peer's certificate proves", async () => {
  const server = await servingNode();
  const client = tlsTransport(nodeA);
  const wrong = "f".repeat(64);
  await capturingLogs(async () => {
    await assert.rejects(
      client.call({ id: wrong, addr: server.addr }, "x", { body: null }),
      isRpcError(
        "refused",
        new RegExp(`is node ${server.t.nodeId.slice(0, 16)}, not the expected ffff`),
      ),
    );
  });
  assert.equal(server.stats.served, 0);
  await waitFor(() => server.t.connectionCount === 0, "the server to drop the connection");
  assert.deepEqual(server.t.connectedPeers(), []);
  await sleep(RPC_DIAL_BACKOFF_MIN_MS);
  const r = await client.call({ id: server.t.nodeId, addr: server.addr }, "x", { body: null });
  assert.equal(r.from, server.t.nodeId);
  await client.close();
  await server.t.close();
});

Deno.test("tls: an address where a dial met this node itself (a node it replaced) is not dialled again", async () => {
  const node = await servingNode(nodeA);
  const replaced = "f".repeat(64); // the node that had this address, which peers still name
  const logs = await capturingLogs(async () => {
    await assert.rejects(
      node.t.call({ id: replaced, addr: node.addr }, "x", { body: null }),
      isRpcError("refused", /is this node itself/),
    );
    await assert.rejects(
      node.t.call({ id: replaced, addr: node.addr }, "x", { body: null }),
      isRpcError("refused", /is this node's own address/),
    );
  });
  assert.equal(node.stats.served, 0);
  // Told once, by the dialling side; not as a certificate shared with another node.
  assert.equal(logs.filter((l) => /own certificate/.test(l)).length, 0, logs.join("\n"));
  assert.equal(logs.filter((l) => /is this node itself/.test(l)).length, 1, logs.join("\n"));
  await node.t.close();
});

Deno.test("tls: a second process with a connected node's certificate is refused, and told why", async () => {
  const server = await servingNode(nodeA);
  const first = tlsTransport(nodeB);
  const second = tlsTransport(nodeB); // another process given the same certificate and key
  const logs = await capturingLogs(async () => {
    await first.call({ addr: server.addr }, "x", { body: null });
    await assert.rejects(
      second.call({ addr: server.addr }, "x", { body: null }),
      isRpcError(
        "refused",
        new RegExp(
          `^node ${shortNodeId(server.t.nodeId)} refused this node: node ` +
            `${shortNodeId(first.nodeId)} is already connected from another process`,
        ),
      ),
    );
  });
  assert.equal(server.stats.served, 1, "nothing the second sent was served");
  assert.deepEqual(server.t.connectedPeers().map((p) => p.id), [first.nodeId]);
  // Both sides say it, in the log and in what `remise status` shows.
  assert.ok(
    logs.some((l) => /ERROR .*two nodes present the certificate of node/.test(l)),
    logs.join("\n"),
  );
  assert.ok(logs.some((l) => /ERROR .*refused this node: /.test(l)), logs.join("\n"));
  const [warning] = server.t.identityWarnings();
  assert.match(warning, /^Two nodes use the certificate of node [0-9a-f]{16} \(seen at /);
  assert.match(second.identityWarnings()[0], /^Node [0-9a-f]{16} refused this node: /);
  assert.deepEqual(first.identityWarnings(), []);
  // The first keeps working; once it is gone, the other may take its place (a node replaced).
  await first.call({ addr: server.addr }, "x", { body: null });
  await first.close();
  await waitFor(() => server.t.connectedPeers().length === 0, "the first process to be gone");
  const r = await second.call({ addr: server.addr }, "x", { body: null });
  assert.equal(r.from, server.t.nodeId);
  await second.close();
  await server.t.close();
});

Deno.test("tls: reconnects after the server restarts; dial failures back off", async () => {
  const server = await servingNode();
  const client = tlsTransport(nodeA);
  const events: string[] = [];
  client.onPeerConnected((id) => events.push(`up ${id.slice(0, 4)}`));
  client.onPeerDisconnected((id) => events.push(`down ${id.slice(0, 4)}`));
  await client.call({ addr: server.addr }, "x", { body: null });
  await server.t.close();
  await waitFor(() => events.length === 2, "the disconnection");
  await capturingLogs(async () => {
    await assert.rejects(
      client.callNode(server.t.nodeId, "x", { body: null }),
      isRpcError("unreachable"),
    );
    const t0 = performance.now();
    await assert.rejects(
      client.callNode(server.t.nodeId, "x", { body: null }),
      isRpcError("unreachable", /next attempt in \d+ ms/),
    );
    assert.ok(performance.now() - t0 < 50, "a call during the backoff fails at once");
  });
  const restarted = await servingNode(nodeB, { bindAddr: server.addr });
  await sleep(RPC_DIAL_BACKOFF_MIN_MS + 20);
  const r = await client.callNode(server.t.nodeId, "x", { body: null });
  assert.equal(r.body, "ok");
  const id = server.t.nodeId.slice(0, 4);
  assert.deepEqual(events, [`up ${id}`, `down ${id}`, `up ${id}`]);
  await client.close();
  await restarted.t.close();
});

Deno.test("tls: a call waits for a new dial to a peer it could not reach for a short time only", async () => {
  // A peer whose link is a blackhole: TCP connects, the TLS handshake never answers.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  const dialTimeoutMs = 3 * RPC_REDIAL_WAIT_MS;
  const client = tlsTransport(nodeA, { limits: { dialTimeoutMs } });
  const addr = `127.0.0.1:${silent.addr.port}`;
  await capturingLogs(async () => {
    const t0 = performance.now();
    await assert.rejects(
      client.call({ addr }, "x", { body: null }),
      isRpcError("unreachable", /no TLS handshake/),
    );
    assert.ok(performance.now() - t0 >= dialTimeoutMs - 50, "the first dial waits for its timeout");
    await sleep(RPC_DIAL_BACKOFF_MIN_MS + 20);
    const t1 = performance.now();
    await assert.rejects(
      client.call({ addr }, "x", { body: null }),
      isRpcError("unreachable", /reconnecting/),
    );
    const waited = performance.now() - t1;
    assert.ok(
      waited < RPC_REDIAL_WAIT_MS + 500,
      `the call gave up on the new dial after ${waited} ms`,
    );
    await sleep(dialTimeoutMs); // the new dial times out in the background
  });
  await client.close();
  silent.close();
  for (const conn of held) conn.close();
  await accepting;
});

Deno.test("tls: requests beyond maxConcurrentRequests are refused as overloaded", async () => {
  const server = tlsTransport(nodeB, { maxConcurrentRequests: 2 });
  const gate = deferred();
  const { port } = await server.serve(async () => (await gate.promise, { body: 1 }));
  const client = tlsTransport(nodeA);
  const addr = `127.0.0.1:${port}`;
  const calls = Array.from({ length: 5 }, () => client.call({ addr }, "x", { body: null }));
  const settled = calls.map((c) => c.catch((e) => e));
  for (const extra of settled.slice(2)) assert.ok(isRpcError("overloaded")(await extra));
  // Membership's requests are served all the same: a busy node is not a down one.
  const ping = client.call({ addr }, "system/ping", { body: null });
  gate.resolve();
  assert.equal((await ping).body, 1);
  for (const admitted of settled.slice(0, 2)) assert.equal((await admitted).body, 1);
  assert.equal((await client.call({ addr }, "x", { body: null })).body, 1);
  await client.close();
  await server.close();
});

Deno.test("tls: when both nodes dial at once, one connection remains", async () => {
  for (let round = 0; round < 5; round++) {
    const a = await servingNode(nodeA);
    const b = await servingNode(nodeB);
    const results = await Promise.all([
      ...Array.from({ length: 3 }, () => a.t.call({ addr: b.addr }, "x", { body: null })),
      ...Array.from({ length: 3 }, () => b.t.call({ addr: a.addr }, "x", { body: null })),
    ]);
    assert.ok(results.every((r) => r.body === "ok"));
    await waitFor(
      () => a.t.connectionCount === 1 && b.t.connectionCount === 1,
      `one connection (a has ${a.t.connectionCount}, b ${b.t.connectionCount})`,
    );
    assert.deepEqual(a.t.connectedPeers().map((p) => p.id), [b.t.nodeId]);
    assert.deepEqual(b.t.connectedPeers().map((p) => p.id), [a.t.nodeId]);
    assert.equal((await a.t.callNode(b.t.nodeId, "x", { body: null })).body, "ok");
    assert.equal((await b.t.callNode(a.t.nodeId, "x", { body: null })).body, "ok");
    await a.t.close();
    await b.t.close();
  }
});

Deno.test("tls: a peer that stops answering is detected by the keepalive", async () => {
  const fast = { limits: { pingIntervalMs: 100, pingTimeoutMs: 500 } };
  const server = await servingNode(nodeB, fast);
  const proxy = await blackholeProxy(server.port);
  const client = tlsTransport(nodeA, fast);
  const down = deferred<string>();
  client.onPeerDisconnected((id) => down.resolve(id));
  await client.call({ addr: proxy.addr }, "x", { body: null });
  await sleep(300);
  assert.equal(client.connectedPeers().length, 1, "pings keep a healthy connection up");
  proxy.blackhole = true;
  const t0 = performance.now();
  assert.equal(await down.promise, server.t.nodeId);
  const ms = performance.now() - t0;
  assert.ok(ms < 1500, `detected after ${ms} ms`);
  await client.close();
  await server.t.close();
  await proxy.close();
});

Deno.test("tls: a request in an unknown protocol version gets a clear error", async () => {
  const server = await servingNode();
  const sock = tls.connect({
    host: "127.0.0.1",
    port: server.port,
    ca: ca.certPem,
    cert: nodeA.certPem,
    key: nodeA.keyPem,
    checkServerIdentity: () => undefined,
  });
  const decoder = new FrameDecoder(1 << 20);
  const frames: Frame[] = [];
  sock.on("data", (d: Uint8Array) => frames.push(...decoder.push(d)));
  await new Promise((resolve) => sock.once("secureConnect", resolve));
  sock.write(encodeHeader(FrameType.HELLO, 0, { v: 1, n: "nonce" }));
  sock.write(encodeHeader(FrameType.REQUEST, 1, { v: 2, p: "x", b: null, s: false, pr: 0 }));
  await waitFor(() => frames.some((f) => f.type === FrameType.ERROR), "an error frame");
  const error = decodeHeader(frames.find((f) => f.type === FrameType.ERROR)!.payload);
  assert.equal(error.v, 1);
  assert.match(String(error.m), /unsupported RPC protocol version 2: this node speaks version 1/);
  assert.equal(server.stats.served, 0);
  sock.destroy();
  await new Promise((resolve) => sock.once("close", resolve));
  await server.t.close();
});

Deno.test("tls: a port already taken is named with its setting", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const t = tlsTransport(nodeA, { bindAddr: `127.0.0.1:${taken.addr.port}` });
  try {
    await assert.rejects(
      t.serve(() => Promise.resolve({ body: null })),
      new RegExp(
        `^Error: Cannot listen on 127\\.0\\.0\\.1:${taken.addr.port} \\(rpc_bind_addr\\): ` +
          "the address is already in use",
      ),
    );
  } finally {
    await t.close();
    taken.close();
  }
});

/** A TCP relay to a local port that can start dropping everything (a dead link). */
async function blackholeProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const proxy = {
    blackhole: false,
    addr: "",
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, "127.0.0.1");
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]]) {
      sockets.add(from);
      from.on("data", (d: Uint8Array) => proxy.blackhole || to.write(d));
      from.on("error", () => {});
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.addr = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return proxy;
}

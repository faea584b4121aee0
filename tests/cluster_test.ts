/**
 * Clusters of real processes on loopback with certificates made by
 * `remise cert`: mesh formation from one bootstrap peer, the layout, status,
 * failure detection, refusal of foreign connections, Consul discovery.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { nodeCertificate, remise, TestCluster } from "./cluster_harness.ts";
import { freePort, TestServer } from "./harness.ts";
import { TlsTransport } from "../lib/net/tls_transport.ts";

type Status = Awaited<ReturnType<TestCluster["status"]>>;
const allUp = (count: number) => (s: Status) =>
  s.nodes.length === count && s.nodes.every((n) => n.up);

/** Tries a TLS handshake plus one exchange; resolves to "accepted" or the refusal's message. */
function tryTls(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ...options },
      () => {
        socket.write(new Uint8Array(16));
      },
    );
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("accepted");
    }, 1500);
    socket.on("data", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("accepted");
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      resolve(`refused: ${e.message}`);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve("refused: closed");
    });
  });
}

Deno.test("a 3-node cluster forms, takes a layout over 3 zones, and notices a dead node", async (t) => {
  const cluster = await TestCluster.start(3, { extraConfig: "replication_factor = 3" });
  try {
    const ids = await Promise.all([0, 1, 2].map((i) => cluster.nodeId(i)));
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.match(id, /^[0-9a-f]{64}$/);

    await t.step("every node learns every other from one bootstrap peer", async () => {
      for (const i of [0, 1, 2]) {
        await cluster.waitFor(`node ${i} sees 3 nodes up`, () => cluster.status(i), allUp(3));
      }
    });

    /** Node 0's GET /ready (no token): its status and document. */
    const ready0 = async () => {
      const res = await fetch(`${cluster.nodes[0].server.adminEndpoint}/ready`);
      return { status: res.status, body: await res.json() };
    };

    await t.step("status says the cluster has no layout yet", async () => {
      const s = await cluster.status(0);
      assert.equal(s.layoutVersion, 0);
      assert.ok(s.warnings.some((w) => /no layout/i.test(w)), JSON.stringify(s.warnings));
      const text = (await cluster.cli(0, ["status"])).stdout;
      assert.match(text, /Layout version: none/);
      // Not ready for S3 traffic yet; alive all the same.
      const ready = await ready0();
      assert.equal(ready.status, 503);
      assert.match(ready.body.reason, /no layout/);
      const health = await fetch(`${cluster.nodes[0].server.adminEndpoint}/health`);
      await health.body?.cancel();
      assert.equal(health.status, 200);
    });

    await t.step(
      "a layout is staged with short id prefixes, shown, applied, and spread",
      async () => {
        for (const [i, id] of ids.entries()) {
          await cluster.cli(i % 2, [
            "layout",
            "assign",
            id.slice(0, 8),
            "-z",
            `dc${i + 1}`,
            "-c",
            "1G",
          ]);
          if (i === 0) {
            // Too few nodes for 3 copies yet: the staged role is shown with the reason.
            const early = (await cluster.cli(0, ["layout", "show"])).stdout;
            assert.match(early, new RegExp(`${id.slice(0, 16)} +- +zone dc1, 1 GiB`));
            assert.match(
              early,
              /cannot be applied yet: .*needs at least 3 storage nodes, the layout has 1/,
            );
          }
        }
        const shown = (await cluster.cli(1, ["layout", "show"])).stdout;
        assert.match(shown, /Staged changes/);
        assert.match(shown, /layout apply --version 1/);
        const refused = await cluster.cli(0, ["layout", "apply", "--version", "2"], false);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /next version is 1/);
        await cluster.cli(0, ["layout", "apply", "--version", "1"]);
        for (const i of [0, 1, 2]) {
          const s = await cluster.waitFor(
            `node ${i} has layout 1`,
            () => cluster.status(i),
            (s) => s.layoutVersion === 1,
          );
          for (const n of s.nodes) {
            assert.equal(
              n.partitions,
              256,
              "replication factor 3 over 3 nodes: every node holds every partition",
            );
          }
          assert.deepEqual(
            new Set(s.nodes.map((n) => n.zone)),
            new Set(["dc1", "dc2", "dc3"]),
          );
        }
        const json = JSON.parse((await cluster.cli(2, ["layout", "show", "--json"])).stdout);
        assert.equal(json.current.version, 1);
        assert.equal(json.preview, null);
      },
    );

    await t.step("the CLI of the foundation works against any node", async () => {
      await cluster.cli(2, ["key", "create", "k1"]);
      await cluster.cli(2, ["bucket", "create", "bucket-on-2"]);
      const listed = (await cluster.cli(2, ["bucket", "list"])).stdout;
      assert.match(listed, /bucket-on-2/);
    });

    await t.step("a killed node is shown down within seconds, and up after restart", async () => {
      await cluster.nodes[2].server.kill();
      const started = Date.now();
      await cluster.waitFor(
        "node 2 down",
        () => cluster.status(0),
        (s) => s.nodes.some((n) => n.id === ids[2] && !n.up),
        15_000,
      );
      assert.ok(Date.now() - started < 15_000);
      const text = (await cluster.cli(0, ["status"])).stdout;
      assert.match(text, /DOWN/);
      // /metrics says so too, for an alert on remise_cluster_node_up == 0.
      const node0 = cluster.nodes[0].server;
      const metrics = await (await fetch(`${node0.adminEndpoint}/metrics`, {
        headers: { authorization: `Bearer ${node0.adminToken}` },
      })).text();
      assert.match(
        metrics,
        new RegExp(`^remise_cluster_node_up\\{node="${ids[2].slice(0, 16)}"[^}]*\\} 0$`, "m"),
      );
      assert.match(
        metrics,
        new RegExp(`^remise_cluster_node_up\\{node="${ids[1].slice(0, 16)}"[^}]*\\} 1$`, "m"),
      );
      assert.match(metrics, /^remise_cluster_layout_version 1$/m);
      assert.match(metrics, /^remise_cluster_partitions_without_quorum 0$/m);
      // One node of three down: a write quorum is left everywhere.
      assert.deepEqual(await ready0(), {
        status: 200,
        body: { status: "degraded", nodesUp: 2, nodes: 3, partitionsWithoutQuorum: 0 },
      });
      // Restarted with a configuration that asks for another replication factor: the layout's
      // holds, and the node says so.
      const config = cluster.nodes[2].server.configPath;
      await Deno.writeTextFile(
        config,
        (await Deno.readTextFile(config)).replace(
          "replication_factor = 3",
          "replication_factor = 1",
        ),
      );
      await cluster.nodes[2].server.launch();
      await cluster.waitFor("node 2 up again", () => cluster.status(0), allUp(3));
      assert.deepEqual((await ready0()).body.status, "ok");
      const s2 = await cluster.waitFor(
        "node 2 keeps its layout",
        () => cluster.status(2),
        (s) => s.layoutVersion === 1,
      );
      assert.equal(s2.layoutVersion, 1);
      assert.ok(
        s2.warnings.includes(
          "This node's configuration says replication_factor = 1, but the cluster keeps 3 " +
            "copies, as its layout said when first applied; the layout's holds. Set " +
            "replication_factor = 3 in every node's configuration.",
        ),
        JSON.stringify(s2.warnings),
      );
      assert.ok(!(await cluster.status(0)).warnings.some((w) => /replication_factor/.test(w)));
    });

    await t.step("a node that hangs is shown down and calls to it time out cleanly", async () => {
      const pid = cluster.nodes[1].server.process!.pid;
      Deno.kill(pid, "SIGSTOP");
      try {
        await cluster.waitFor(
          "node 1 down",
          () => cluster.status(0),
          (s) => s.nodes.some((n) => n.id === ids[1] && !n.up),
          15_000,
        );
        const started = Date.now();
        await cluster.status(0);
        assert.ok(Date.now() - started < 5_000, "status answers without waiting for the hung node");
      } finally {
        Deno.kill(pid, "SIGCONT");
      }
      await cluster.waitFor("node 1 up again", () => cluster.status(0), allUp(3));
    });

    await t.step("connections without a cluster certificate are refused", async () => {
      const port = cluster.nodes[0].rpcPort;
      const noCert = await tryTls(port, {});
      assert.match(noCert, /^refused/);
      const foreign = `${cluster.dir}/foreign`;
      await remise(["cert", "ca", "--out", `${foreign}/ca`]);
      await nodeCertificate(`${foreign}/ca`, "intruder", `${foreign}/node`);
      const withForeign = await tryTls(port, {
        cert: await Deno.readTextFile(`${foreign}/node/node.crt`),
        key: await Deno.readTextFile(`${foreign}/node/node.key`),
      });
      assert.match(withForeign, /^refused/);
      const s = await cluster.status(0);
      assert.equal(s.nodes.length, 3, "the refused peers were not added");
    });
  } finally {
    await cluster.close();
  }
});

Deno.test("a 5-node cluster forms a full mesh and agrees on a layout", async () => {
  const cluster = await TestCluster.start(5, { extraConfig: "replication_factor = 3" });
  try {
    for (const i of [0, 1, 2, 3, 4]) {
      await cluster.waitFor(`node ${i} sees 5 up`, () => cluster.status(i), allUp(5));
    }
    const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => cluster.nodeId(i)));
    for (const [i, id] of ids.entries()) {
      await cluster.cli(i, [
        "layout",
        "assign",
        id.slice(0, 10),
        "-z",
        `dc${(i % 3) + 1}`,
        "-c",
        "100G",
      ]);
    }
    await cluster.cli(4, ["layout", "apply", "--version", "1"]);
    for (const i of [0, 1, 2, 3, 4]) {
      const s = await cluster.waitFor(
        `node ${i} has layout 1`,
        () => cluster.status(i),
        (s) => s.layoutVersion === 1,
      );
      const total = s.nodes.reduce((sum, n) => sum + n.partitions, 0);
      assert.equal(total, 256 * 3);
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("nodes find each other through Consul's catalog", async () => {
  const rpcPorts = [freePort(), freePort()];
  const consulPort = freePort();
  const consul = Deno.serve({ hostname: "127.0.0.1", port: consulPort, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/v1/catalog/service/remise") return new Response("[]", { status: 404 });
    return Response.json(rpcPorts.map((port, i) => ({
      Node: `node${i}`,
      Address: "127.0.0.1",
      ServiceAddress: "127.0.0.1",
      ServicePort: port,
    })));
  });
  const dir = await Deno.makeTempDir({ prefix: "remise-consul-" });
  const servers: TestServer[] = [];
  try {
    await remise(["cert", "ca", "--out", `${dir}/ca`]);
    for (const i of [0, 1]) {
      await nodeCertificate(`${dir}/ca`, `n${i}`, `${dir}/n${i}`);
      servers.push(
        await TestServer.start({
          extraConfig: [
            `rpc_bind_addr = "127.0.0.1:${rpcPorts[i]}"`,
            `ca_cert = "${dir}/ca/ca.crt"`,
            `node_cert = "${dir}/n${i}/node.crt"`,
            `node_key = "${dir}/n${i}/node.key"`,
            `consul_host = "127.0.0.1:${consulPort}"`,
            `consul_service_name = "remise"`,
          ].join("\n"),
        }),
      );
    }
    const cluster = {
      cli: (i: number, args: string[]) => remise(["-c", servers[i].configPath, ...args]),
    };
    const deadline = Date.now() + 20_000;
    let seen: Status | undefined;
    while (Date.now() < deadline) {
      seen = JSON.parse((await cluster.cli(0, ["status", "--json"])).stdout);
      if (seen && allUp(2)(seen)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(seen && allUp(2)(seen), JSON.stringify(seen));
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    await consul.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a configuration with peers but no certificates is refused with advice, before anything is made", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-nocert-" });
  try {
    await Deno.writeTextFile(
      `${dir}/c.toml`,
      `metadata_dir = "${dir}/m"\ndata_dir = "${dir}/d"\nbootstrap_peers = ["127.0.0.1:1"]\n`,
    );
    // --check-config says so too, and neither creates a directory.
    for (const args of [["--check-config"], []]) {
      const result = await remise(["server", ...args, "-c", `${dir}/c.toml`], false);
      assert.notEqual(result.code, 0, args.join(" "));
      assert.match(result.stderr, /remise cert/);
      assert.match(result.stderr, /ca_cert/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["c.toml"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node started with another node's certificate is refused, and status says so on both sides", async () => {
  const cluster = await TestCluster.start(2, { extraConfig: "replication_factor = 3" });
  let copy: TestServer | undefined;
  try {
    // Node 0 meets node 1 first: the copy started next is the one refused.
    await cluster.waitFor("node 0 to see node 1", () => cluster.status(0), allUp(2));
    // A third server given node 1's certificate and key, as a copied /etc/remise would.
    copy = await TestServer.start({
      extraConfig: [
        "replication_factor = 3",
        `rpc_bind_addr = "127.0.0.1:${freePort()}"`,
        `ca_cert = "${cluster.dir}/ca/ca.crt"`,
        `node_cert = "${cluster.nodes[1].certDir}/node.crt"`,
        `node_key = "${cluster.nodes[1].certDir}/node.key"`,
        `bootstrap_peers = ["127.0.0.1:${cluster.nodes[0].rpcPort}"]`,
      ].join("\n"),
    });
    const node1 = await cluster.nodeId(1);
    const seen = await cluster.waitFor(
      "node 0 to warn of two nodes with one certificate",
      () => cluster.status(0),
      (s) => s.warnings.some((w) => w.startsWith("Two nodes use the certificate of node")),
    );
    assert.match(
      seen.warnings.find((w) => w.startsWith("Two nodes"))!,
      new RegExp(`^Two nodes use the certificate of node ${node1.slice(0, 16)} \\(seen at `),
    );
    // Node 0 keeps the node it met first: the cluster is still node 0 and node 1.
    assert.deepEqual(
      seen.nodes.filter((n) => n.up).map((n) => n.id).sort(),
      [await cluster.nodeId(0), node1].sort(),
    );
    const text = (await remise(["-c", copy.configPath, "status"])).stdout;
    assert.match(
      text,
      /WARNING: Node [0-9a-f]{16} refused this node: node [0-9a-f]{16} is already connected from another process/,
    );
    assert.match(copy.output, /ERROR remise::net: node [0-9a-f]{16} refused this node: /);
  } finally {
    await copy?.close();
    await cluster.close();
  }
});

Deno.test("a starting node serves the store's RPC paths from its first RPC answer on", async () => {
  const cluster = await TestCluster.start(3, { extraConfig: "replication_factor = 3" });
  const caller = `${cluster.dir}/caller`;
  await nodeCertificate(`${cluster.dir}/ca`, "caller", caller);
  const transport = new TlsTransport({
    caPem: await Deno.readTextFile(`${cluster.dir}/ca/ca.crt`),
    certPem: await Deno.readTextFile(`${caller}/node.crt`),
    keyPem: await Deno.readTextFile(`${caller}/node.key`),
    bindAddr: "127.0.0.1:0",
    maxConcurrentRequests: 8,
  });
  try {
    await cluster.layoutOneZoneEach();
    for (const node of cluster.nodes) await node.server.stop();
    // Alone, node 0 waits a few seconds for a majority of its layout before it serves S3; its
    // RPC is up meanwhile. The caller is no node of the layout: it does not end that wait.
    let started = false;
    const starting = cluster.nodes[0].server.launch().then(() => started = true);
    const addr = `127.0.0.1:${cluster.nodes[0].rpcPort}`;
    // Dialled once node 0 listens (a transport backs off after a failed dial).
    for (let tries = 0;; tries++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: cluster.nodes[0].rpcPort })).close();
        break;
      } catch {
        assert.ok(tries < 600, "node 0 listens within 30 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const answer = await transport.call({ addr }, "table/object/get", {
      body: { pk: "bucket\u0000key", sk: "" },
    });
    assert.deepEqual(answer.body, { entry: null });
    assert.equal(started, false, "the answer came while node 0 waited for its peers");
    await starting;
  } finally {
    await transport.close();
    await cluster.close();
  }
});

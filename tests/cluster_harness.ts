/**
 * Clusters of real `remise server` processes on loopback, with certificates
 * made by `remise cert` as a user would make them.
 */
import { freePort, portTaken, runProgram, TestServer, withPortRetries } from "./harness.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs the remise CLI from source; fails the test with its output when it fails. */
export async function remise(
  args: string[],
  expectOk = true,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runProgram(Deno.execPath(), ["run", "--unstable-kv", "-A", MAIN, ...args], {
    PATH: "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    NO_COLOR: "1",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
  });
  if (expectOk && result.code !== 0) {
    throw new Error(
      `remise ${args.join(" ")} failed (${result.code}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

/** `remise cert node`: a certificate for a node on loopback, signed by the CA in `caDir`. */
export async function nodeCertificate(caDir: string, name: string, outDir: string): Promise<void> {
  await remise([
    "cert",
    "node",
    "--ca",
    caDir,
    "--name",
    name,
    "--host",
    "127.0.0.1",
    "--out",
    outDir,
  ]);
}

export interface ClusterNode {
  server: TestServer;
  rpcPort: number;
  certDir: string;
}

/** A node's start refused because another test process bound its RPC port after the probe. */
const RPC_PORT_TAKEN = portTaken("rpc");

export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: ClusterNode[],
    private readonly options: { extraConfig?: string; blockSize?: number } = {},
  ) {}

  /** Starts one more node that joins through node 0. */
  async addNode(): Promise<number> {
    const i = this.nodes.length;
    const certDir = `${this.dir}/node${i}`;
    await nodeCertificate(`${this.dir}/ca`, `node${i}`, certDir);
    const node = await withPortRetries(RPC_PORT_TAKEN, async () => {
      const rpcPort = freePort();
      const server = await TestServer.start({
        blockSize: this.options.blockSize,
        extraConfig: [
          `rpc_bind_addr = "127.0.0.1:${rpcPort}"`,
          `ca_cert = "${this.dir}/ca/ca.crt"`,
          `node_cert = "${certDir}/node.crt"`,
          `node_key = "${certDir}/node.key"`,
          `bootstrap_peers = ["127.0.0.1:${this.nodes[0].rpcPort}"]`,
          this.options.extraConfig ?? "",
        ].join("\n"),
      });
      return { server, rpcPort, certDir };
    });
    this.nodes.push(node);
    return i;
  }

  /** Starts `count` nodes; every node knows only the first one as bootstrap peer. */
  static async start(
    count: number,
    options: {
      extraConfig?: string;
      blockSize?: number;
      env?: (i: number) => Record<string, string>;
      /** The address other nodes use for node i's RPC port (e.g. a delaying proxy in front of it). */
      publicPort?: (i: number, rpcPort: number) => number;
    } = {},
  ): Promise<TestCluster> {
    return await withPortRetries(RPC_PORT_TAKEN, () => TestCluster.#startOnce(count, options));
  }

  static async #startOnce(
    count: number,
    options: Parameters<typeof TestCluster.start>[1] = {},
  ): Promise<TestCluster> {
    const dir = await Deno.makeTempDir({ prefix: "remise-cluster-" });
    await remise(["cert", "ca", "--out", `${dir}/ca`]);
    const rpcPorts = Array.from({ length: count }, () => freePort());
    const publicPorts = rpcPorts.map((port, i) => options.publicPort?.(i, port) ?? port);
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < count; i++) {
      const certDir = `${dir}/node${i}`;
      await nodeCertificate(`${dir}/ca`, `node${i}`, certDir);
      nodes.push({ server: undefined as unknown as TestServer, rpcPort: rpcPorts[i], certDir });
    }
    const started = await Promise.allSettled(nodes.map(async (node, i) => {
      node.server = await TestServer.start({
        env: options.env?.(i),
        blockSize: options.blockSize,
        extraConfig: [
          `rpc_bind_addr = "127.0.0.1:${node.rpcPort}"`,
          `rpc_public_addr = "127.0.0.1:${publicPorts[i]}"`,
          `ca_cert = "${dir}/ca/ca.crt"`,
          `node_cert = "${node.certDir}/node.crt"`,
          `node_key = "${node.certDir}/node.key"`,
          i === 0 ? "" : `bootstrap_peers = ["127.0.0.1:${publicPorts[0]}"]`,
          options.extraConfig ?? "",
        ].join("\n"),
      });
    }));
    const cluster = new TestCluster(dir, nodes, options);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      await cluster.close();
      throw failed.reason;
    }
    return cluster;
  }

  /** Runs the CLI against node `i`'s admin API. */
  cli(i: number, args: string[], expectOk = true) {
    return remise(["-c", this.nodes[i].server.configPath, ...args], expectOk);
  }

  async nodeId(i: number): Promise<string> {
    return (await this.cli(i, ["node", "id"])).stdout.trim();
  }

  async status(
    i: number,
  ): Promise<
    {
      nodeId: string;
      layoutVersion: number;
      nodes: {
        id: string;
        up: boolean;
        zone: string | null;
        partitions: number;
        syncedLayoutVersion: number | null;
      }[];
      warnings: string[];
    }
  > {
    return JSON.parse((await this.cli(i, ["status", "--json"])).stdout);
  }

  /**
   * Once every node sees the others, gives each its own zone (dc1, dc2, ...)
   * and applies layout version 1 through the CLI; returns the node ids.
   */
  async layoutOneZoneEach(): Promise<string[]> {
    const all = this.nodes.map((_, i) => i);
    for (const i of all) {
      await this.waitFor(
        `node ${i} sees ${all.length} nodes`,
        () => this.status(i),
        (s) => s.nodes.filter((n) => n.up).length === all.length,
        30_000,
      );
    }
    const ids = await Promise.all(all.map((i) => this.nodeId(i)));
    for (const [i, id] of ids.entries()) {
      await this.cli(0, ["layout", "assign", id, "-z", `dc${i + 1}`, "-c", "10G"]);
    }
    await this.cli(0, ["layout", "apply", "--version", "1"]);
    for (const i of all) {
      await this.waitFor(
        `node ${i} has layout 1`,
        () => this.status(i),
        (s) => s.layoutVersion === 1,
      );
    }
    return ids;
  }

  /** Waits until `check` holds, polling; fails with the last value seen. */
  async waitFor<T>(
    what: string,
    read: () => Promise<T>,
    check: (value: T) => boolean,
    timeoutMs = 60_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    while (Date.now() < deadline) {
      try {
        last = await read();
        if (check(last)) return last;
      } catch {
        // not ready yet
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const logs = this.nodes.map((n, i) =>
      `--- node ${i} ---\n${n.server?.output.slice(-2000) ?? ""}`
    );
    throw new Error(
      `timed out waiting for ${what}; last value: ${JSON.stringify(last)}\n${logs.join("\n")}`,
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.server?.close()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

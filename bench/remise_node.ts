/**
 * remise processes for the benchmark, started as a user starts them:
 * `remise server -c FILE` (with remise's V8 flags, as the deno.json tasks and
 * the executables run it) with a generated configuration in a temporary
 * directory; a 3-node cluster gets its certificates from `remise cert` and its
 * layout through the admin API (what `remise layout assign/apply` call).
 */
import { V8_FLAGS_OPTION } from "../lib/util/v8_flags.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
export const BENCH_REGION = "bench-region";
const START_TIMEOUT_MS = 60_000;
const OUTPUT_KEPT_CHARS = 64 * 1024;

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts tried when a port picked free is taken before the server binds it. */
const PORT_ATTEMPTS = 4;

function isAddressInUse(e: unknown): boolean {
  return /EADDRINUSE|address already in use|AddrInUse/i.test(String((e as Error)?.message ?? e));
}

export interface NodeOptions {
  /** Extra TOML lines. */
  extraConfig?: string;
  /** block_size in bytes (default 1 MiB, remise's default). */
  blockSize?: number;
  /** Extra flags for `deno run`, for example `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  denoFlags?: string[];
}

export interface Credentials {
  accessKey: string;
  secretKey: string;
}

export class RemiseNode {
  process?: Deno.ChildProcess;
  readonly apiPort = freePort();
  readonly adminPort = freePort();
  readonly adminToken = "bench-admin-token-" + crypto.randomUUID();
  output = "";

  private constructor(readonly dir: string, readonly options: NodeOptions) {}

  get pid(): number {
    return this.process?.pid ?? 0;
  }
  get endpoint(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }
  get configPath(): string {
    return `${this.dir}/remise.toml`;
  }
  get dataDir(): string {
    return `${this.dir}/data`;
  }

  /**
   * Starts a node in `dir`. Ports are picked free then released, so another
   * process may take one first: a start that fails on a port in use is
   * retried with new ports.
   */
  static async start(dir: string, options: NodeOptions = {}): Promise<RemiseNode> {
    for (let attempt = 1;; attempt++) {
      try {
        return await RemiseNode.#startOnce(dir, options);
      } catch (e) {
        if (attempt >= PORT_ATTEMPTS || !isAddressInUse(e)) throw e;
      }
    }
  }

  static async #startOnce(dir: string, options: NodeOptions): Promise<RemiseNode> {
    await Deno.mkdir(dir, { recursive: true });
    const node = new RemiseNode(dir, options);
    await Deno.writeTextFile(
      node.configPath,
      [
        `metadata_dir = "${dir}/meta"`,
        `data_dir = "${dir}/data"`,
        `api_bind_addr = "127.0.0.1:${node.apiPort}"`,
        `admin_bind_addr = "127.0.0.1:${node.adminPort}"`,
        `admin_token = "${node.adminToken}"`,
        `s3_region = "${BENCH_REGION}"`,
        `block_size = ${options.blockSize ?? 1024 * 1024}`,
        options.extraConfig ?? "",
      ].join("\n") + "\n",
    );
    await node.#launch();
    return node;
  }

  async #launch(): Promise<void> {
    this.process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--unstable-kv",
        "-A",
        V8_FLAGS_OPTION,
        ...(this.options.denoFlags ?? []),
        MAIN,
        "server",
        "-c",
        this.configPath,
      ],
      env: { REMISE_LOG: "warn", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#collect(this.process.stdout);
    this.#collect(this.process.stderr);
    let exited: Deno.CommandStatus | undefined;
    this.process.status.then((s) => exited = s);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) {
        await sleep(100);
        this.process = undefined;
        throw new Error(`remise exited with code ${exited.code} at start:\n${this.output}`);
      }
      try {
        const res = await fetch(`http://127.0.0.1:${this.adminPort}/health`);
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`remise did not start within ${START_TIMEOUT_MS} ms:\n${this.output}`);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.output = (this.output + decoder.decode(chunk, { stream: true })).slice(
        -OUTPUT_KEPT_CHARS,
      );
    }
  }

  async admin(method: string, path: string, body?: unknown): Promise<Response> {
    return await fetch(`http://127.0.0.1:${this.adminPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async adminJson<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.admin(method, path, body);
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${method} ${path}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async createKey(name = "bench"): Promise<Credentials> {
    const json = await this.adminJson<{ accessKeyId: string; secretAccessKey: string }>(
      "POST",
      "/v1/keys",
      { name },
    );
    return { accessKey: json.accessKeyId, secretKey: json.secretAccessKey };
  }

  /** Stops the server (see `stop`) and starts it again with the same configuration and directories. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  /** Stops the server with SIGTERM (a clean stop: a CPU profile gets written) and waits. */
  async stop(): Promise<void> {
    if (!this.process) return;
    try {
      this.process.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        this.process?.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 30_000);
    await this.process.status;
    clearTimeout(timer);
    this.process = undefined;
  }
}

/** Runs the remise CLI from source; throws with its output when it fails. */
async function remiseCli(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-kv", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(
      `remise ${args.join(" ")} failed (${out.code}):\n${dec.decode(out.stdout)}${
        dec.decode(out.stderr)
      }`,
    );
  }
  return dec.decode(out.stdout);
}

interface ClusterStatus {
  nodeId: string;
  layoutVersion: number;
  nodes: { id: string; up: boolean }[];
}

async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  check: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (check(last)) return last;
    } catch (e) {
      lastError = e;
    }
    await sleep(200);
  }
  throw new Error(
    `timed out waiting for ${what}; last value: ${JSON.stringify(last)} ${lastError ?? ""}`,
  );
}

/**
 * Starts `count` nodes with certificates (node 0 is every other node's
 * bootstrap peer), one zone each, replication factor `count`; applies layout
 * version 1 and waits until every node has it.
 */
export async function startCluster(
  dir: string,
  count: number,
  options: NodeOptions = {},
): Promise<RemiseNode[]> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startClusterOnce(`${dir}/attempt${attempt}`, count, options);
    } catch (e) {
      if (attempt >= PORT_ATTEMPTS || !isAddressInUse(e)) throw e;
    }
  }
}

async function startClusterOnce(
  dir: string,
  count: number,
  options: NodeOptions,
): Promise<RemiseNode[]> {
  await Deno.mkdir(dir, { recursive: true });
  await remiseCli(["cert", "ca", "--out", `${dir}/ca`]);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      remiseCli([
        "cert",
        "node",
        "--ca",
        `${dir}/ca`,
        "--name",
        `node${i}`,
        "--host",
        "127.0.0.1",
        "--out",
        `${dir}/node${i}/certs`,
      ])),
  );
  const rpcPorts = Array.from({ length: count }, () => freePort());
  const settled = await Promise.allSettled(
    rpcPorts.map((rpcPort, i) =>
      RemiseNode.start(`${dir}/node${i}`, {
        ...options,
        extraConfig: [
          `replication_factor = ${count}`,
          `rpc_bind_addr = "127.0.0.1:${rpcPort}"`,
          `ca_cert = "${dir}/ca/ca.crt"`,
          `node_cert = "${dir}/node${i}/certs/node.crt"`,
          `node_key = "${dir}/node${i}/certs/node.key"`,
          i === 0 ? "" : `bootstrap_peers = ["127.0.0.1:${rpcPorts[0]}"]`,
          options.extraConfig ?? "",
        ].join("\n"),
      })
    ),
  );
  const nodes = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw failed.reason;
  }
  try {
    const status = (i: number) => nodes[i].adminJson<ClusterStatus>("GET", "/v1/cluster/status");
    for (let i = 0; i < count; i++) {
      await waitFor(
        `node ${i} to see ${count} nodes up`,
        () => status(i),
        (s) => s.nodes.filter((n) => n.up).length === count,
      );
    }
    const ids = await Promise.all(nodes.map(async (_, i) => (await status(i)).nodeId));
    for (const [i, id] of ids.entries()) {
      await nodes[0].adminJson("POST", "/v1/layout/assign", {
        node: id,
        zone: `dc${i + 1}`,
        capacity: 10_000_000_000,
      });
    }
    await nodes[0].adminJson("POST", "/v1/layout/apply", { version: 1 });
    for (let i = 0; i < count; i++) {
      await waitFor(`node ${i} to have layout 1`, () => status(i), (s) => s.layoutVersion === 1);
    }
    // Steady state is measured: a new cluster's first anti-entropy pass and
    // resync after the layout change run before the phases start.
    for (let i = 0; i < count; i++) {
      await waitFor(
        `node ${i}'s background workers to be idle`,
        () => nodes[i].adminJson<{ name: string; state: string }[]>("GET", "/v1/workers"),
        (workers) => workers.every((w) => w.state !== "busy"),
      );
    }
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw e;
  }
  return nodes;
}

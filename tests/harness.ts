/**
 * Test harness: runs `remise server` as a real process on loopback ports with
 * a temporary configuration, as a user would, and gives tests S3 clients.
 */
import assert from "node:assert/strict";
import { S3Client } from "@aws-sdk/client-s3";
import { V8_FLAGS_OPTION } from "../lib/util/v8_flags.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
export const REGION = "test-region";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Ports for test servers come from 20000-32767, below the kernel's ephemeral
 * range (32768+), so that no outgoing connection takes one; each test
 * process walks the range from its own random start, so that processes run
 * in parallel do not hand out the same port (asking the kernel for port 0
 * and closing it does: the kernel gives the same free port to each).
 */
const TEST_PORT_MIN = 20000;
const TEST_PORT_MAX = 32767;
let nextTestPort = TEST_PORT_MIN + Math.floor(Math.random() * (TEST_PORT_MAX - TEST_PORT_MIN));

export function freePort(): number {
  for (let tries = 0; tries < 1000; tries++) {
    const port = nextTestPort;
    nextTestPort = nextTestPort >= TEST_PORT_MAX ? TEST_PORT_MIN : nextTestPort + 1;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // in use: try the next one
    }
  }
  throw new Error("no free port for a test server");
}

const PORT_ATTEMPTS = 3;

/**
 * How a server's start fails when a port of `settings` (say "api|admin"),
 * picked free by freePort, was bound by another test process meanwhile.
 */
export function portTaken(settings: string): RegExp {
  return new RegExp(`\\((${settings})_bind_addr\\): the address is already in use`);
}

/** Runs `start` again, up to PORT_ATTEMPTS times, while it fails with `taken`; it picks new ports. */
export async function withPortRetries<T>(taken: RegExp, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt >= PORT_ATTEMPTS || !taken.test(String(e))) throw e;
    }
  }
}

export interface ServerOptions {
  /** Extra TOML lines appended to the generated configuration. */
  extraConfig?: string;
  env?: Record<string, string>;
  blockSize?: number;
  /** The server's s3_region (REGION by default); clients sign for it. */
  region?: string;
}

export class TestServer {
  process?: Deno.ChildProcess;
  readonly apiPort = freePort();
  readonly adminPort = freePort();
  readonly adminToken = "test-admin-token-0123456789";
  output = "";

  private constructor(readonly dir: string, readonly options: ServerOptions) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }
  get adminEndpoint(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }
  get configPath(): string {
    return `${this.dir}/remise.toml`;
  }

  /**
   * Starts a server. Another test process may bind a port between its probe
   * (freePort) and the server's start: a start refused so is tried again on
   * new ports.
   */
  static async start(options: ServerOptions = {}): Promise<TestServer> {
    return await withPortRetries(portTaken("api|admin"), () => TestServer.#startOnce(options));
  }

  static async #startOnce(options: ServerOptions): Promise<TestServer> {
    const server = new TestServer(await Deno.makeTempDir({ prefix: "remise-test-" }), options);
    await Deno.writeTextFile(
      server.configPath,
      [
        `metadata_dir = "${server.dir}/meta"`,
        `data_dir = "${server.dir}/data"`,
        `api_bind_addr = "127.0.0.1:${server.apiPort}"`,
        `admin_bind_addr = "127.0.0.1:${server.adminPort}"`,
        `admin_token = "${server.adminToken}"`,
        `s3_region = "${options.region ?? REGION}"`,
        `block_size = ${options.blockSize ?? 1024 * 1024}`,
        options.extraConfig ?? "",
      ].join("\n"),
    );
    try {
      await server.launch();
    } catch (e) {
      // A server refused at start (a test's bad config) leaves nothing behind.
      await Deno.remove(server.dir, { recursive: true });
      throw e;
    }
    return server;
  }

  async launch(): Promise<void> {
    const command = new Deno.Command(Deno.execPath(), {
      args: ["run", "--unstable-kv", "-A", V8_FLAGS_OPTION, MAIN, "server", "-c", this.configPath],
      env: { REMISE_LOG: "warn", ...this.options.env },
      stdout: "piped",
      stderr: "piped",
    });
    this.process = command.spawn();
    this.#collect(this.process.stdout);
    this.#collect(this.process.stderr);
    const deadline = Date.now() + 30_000;
    let exited: Deno.CommandStatus | undefined;
    this.process.status.then((status) => exited = status);
    while (Date.now() < deadline) {
      if (exited) {
        await new Promise((r) => setTimeout(r, 100)); // let the last output arrive
        this.process = undefined;
        throw new Error(`remise exited with code ${exited.code} at start:\n${this.output}`);
      }
      try {
        const res = await fetch(`${this.adminEndpoint}/health`);
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`remise did not start within 30 s:\n${this.output}`);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) this.output += decoder.decode(chunk, { stream: true });
  }

  /** Stops the server with SIGTERM and waits for it. */
  async stop(): Promise<void> {
    if (!this.process) return;
    try {
      this.process.kill("SIGTERM");
    } catch {
      // already gone
    }
    await this.process.status;
    this.process = undefined;
  }

  /** Kills the server with SIGKILL (a crash). */
  async kill(): Promise<void> {
    if (!this.process) return;
    this.process.kill("SIGKILL");
    await this.process.status;
    this.process = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its directory. */
  async close(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async admin(method: string, path: string, body?: unknown): Promise<Response> {
    return await fetch(`${this.adminEndpoint}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async createKey(name = "test"): Promise<Credentials> {
    const res = await this.admin("POST", "/v1/keys", { name });
    if (res.status !== 201) throw new Error(`cannot create key: ${res.status} ${await res.text()}`);
    const json = await res.json();
    return { accessKeyId: json.accessKeyId, secretAccessKey: json.secretAccessKey };
  }

  client(
    credentials: Credentials,
    options: {
      region?: string;
      forcePathStyle?: boolean;
      /** WHEN_REQUIRED reads objects whose checksum algorithm the SDK cannot compute (SHA512...). */
      responseChecksumValidation?: "WHEN_SUPPORTED" | "WHEN_REQUIRED";
    } = {},
  ): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: options.region ?? this.options.region ?? REGION,
      forcePathStyle: options.forcePathStyle ?? true,
      credentials,
      maxAttempts: 1,
      responseChecksumValidation: options.responseChecksumValidation,
    });
  }
}

/** Runs `fn` with a fresh server and a key with bucket-creation rights; always cleans up. */
export async function withServer(
  fn: (server: TestServer, s3: S3Client, credentials: Credentials) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = await TestServer.start(options);
  const credentials = await server.createKey();
  const s3 = server.client(credentials);
  try {
    await fn(server, s3, credentials);
  } finally {
    s3.destroy();
    await server.close();
  }
}

/** A bucket owner and a key without rights on its buckets, each with a client. */
export interface TwoKeys {
  server: TestServer;
  owner: Credentials;
  other: Credentials;
  s3: S3Client;
  s3Other: S3Client;
}

/** Runs `fn` with a fresh server, an owner key and another key; always cleans up. */
export async function withTwoKeys(
  fn: (keys: TwoKeys) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = await TestServer.start(options);
  const owner = await server.createKey("owner");
  const other = await server.createKey("other");
  const s3 = server.client(owner);
  const s3Other = server.client(other);
  try {
    await fn({ server, owner, other, s3, s3Other });
  } finally {
    s3.destroy();
    s3Other.destroy();
    await server.close();
  }
}

/** An environment for external clients: no inherited AWS_* variables, its own HOME. */
export async function cleanClientEnv(
  extra: Record<string, string> = {},
): Promise<{ env: Record<string, string>; home: string }> {
  const home = await Deno.makeTempDir({ prefix: "remise-client-home-" });
  const env: Record<string, string> = {
    HOME: home,
    PATH: "/usr/bin:/bin",
    LANG: "C.UTF-8",
    ...extra,
  };
  return { env, home };
}

/** A program's stdout, once it exited 0; else an assertion error with its output. */
export function checkExit(
  result: { code: number; stdout: string; stderr: string },
  what: string,
): string {
  assert.equal(
    result.code,
    0,
    `${what} exited with ${result.code}\nstdout: ${result.stdout.slice(-3000)}\nstderr: ${
      result.stderr.slice(-3000)
    }`,
  );
  return result.stdout;
}

/** Runs a program with exactly `env` (nothing inherited). */
export async function runProgram(
  program: string,
  args: string[],
  env: Record<string, string>,
  stdin?: Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(program, {
    args,
    env,
    clearEnv: true,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

// --- Deterministic test data (streams that are never whole in memory) ---

/** `length` pseudo-random bytes (xorshift32), always the same for the same `seed` and `index`. */
export function deterministicChunk(seed: number, index: number, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** `size` deterministic bytes, made in chunks of `chunkSize` (use for small sizes only). */
export function deterministicBytes(
  size: number,
  seed: number,
  chunkSize = 1024 * 1024,
): Uint8Array {
  const out = new Uint8Array(size);
  for (let off = 0, i = 0; off < size; off += chunkSize, i++) {
    out.set(deterministicChunk(seed, i, Math.min(chunkSize, size - off)), off);
  }
  return out;
}

/**
 * A stream of `size` deterministic bytes (the same as `deterministicBytes`),
 * generated chunk by chunk on demand; `onChunk` sees every chunk produced.
 */
export function deterministicStream(
  size: number,
  seed: number,
  onChunk?: (chunk: Uint8Array) => void,
  chunkSize = 1024 * 1024,
): ReadableStream<Uint8Array> {
  let offset = 0;
  let index = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= size) {
        controller.close();
        return;
      }
      const chunk = deterministicChunk(seed, index++, Math.min(chunkSize, size - offset));
      offset += chunk.byteLength;
      onChunk?.(chunk);
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

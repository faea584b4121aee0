/**
 * What ships: the one-file bundle (`make bundle`, dist/remise.js) run as a
 * user runs it — `--version`, `server --check-config`, a node driven by the
 * bundle's own CLI and the Debian AWS CLI, stopped with SIGTERM — and the
 * server's promises about stopping: SIGTERM during uploads exits 0 and keeps
 * every acknowledged object, and so does a `kill -9` followed by a restart.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { VERSION } from "../lib/util/version.ts";
import { EXIT_CONFIG } from "../lib/cli/cli.ts";
import { createClusterCa, issueNodeCertificate } from "../lib/net/certs.ts";
import { V8_FLAGS_OPTION } from "../lib/util/v8_flags.ts";
import {
  cleanClientEnv,
  type Credentials,
  deterministicBytes,
  freePort,
  REGION,
  runProgram,
  TestServer,
} from "./harness.ts";
import { keysOf, rawExchange, signRequest } from "./_s3_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const AWS = "/usr/bin/aws";
const HAS_AWS = await Deno.stat(AWS).then(() => true, () => false);
/** A node stopped with SIGTERM exits within this bound (its grace period is 10 s). */
const SIGTERM_EXIT_BOUND_MS = 15_000;
/** A node started from the bundle answers its health check within this bound. */
const START_BOUND_MS = 30_000;

const md5Hex = (data: Uint8Array) => createHash("md5").update(data).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The process's exit status, or undefined if it has not exited within `ms`. */
async function exitWithin(
  process: Deno.ChildProcess,
  ms: number,
): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([process.status, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// --- The bundle, built once for the whole file, as `make bundle` builds it ---

let bundle: Promise<{ dir: string; path: string }> | undefined;

/** Builds the bundle with scripts/bundle.ts into a temporary directory (once). */
function builtBundle(): Promise<{ dir: string; path: string }> {
  bundle ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "remise-bundle-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const path = `${dir}/remise.js`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}scripts/bundle.ts`, path],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, `bundle failed:\n${new TextDecoder().decode(out.stderr)}`);
    return { dir, path };
  })();
  return bundle;
}

/** Runs `deno run -A --unstable-kv remise.js ARGS` from a directory outside the checkout. */
async function runBundle(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { dir, path } = await builtBundle();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", path, ...args],
    cwd: dir,
    env: { NO_COLOR: "1", REMISE_LOG: "warn", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The commit the checkout is at, as `git rev-parse --short HEAD` gives it, if it can. */
function checkoutCommit(): string | undefined {
  try {
    const out = new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const hash = new TextDecoder().decode(out.stdout).trim();
    return out.success && hash ? hash : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("the bundle: --version prints the version, the commit and the Deno version", async () => {
  const res = await runBundle(["--version"], { REMISE_COMMIT: "" });
  assert.equal(res.code, 0, res.stderr);
  const line = res.stdout.trim();
  const match = /^remise (\S+) \(commit (\S+), deno (\S+)\)$/.exec(line);
  assert.ok(match, `unexpected --version output: ${JSON.stringify(line)}`);
  assert.equal(match[1], VERSION);
  assert.equal(match[3], Deno.version.deno);
  // Run outside the checkout, the bundle still knows its commit: the build embedded it.
  const { path } = await builtBundle();
  const banner = /^\/\/ remise, built from commit (\S+)$/m.exec(await Deno.readTextFile(path));
  assert.ok(banner, "the bundle has no commit banner");
  assert.equal(match[2], banner[1]);
  if (checkoutCommit()) assert.match(match[2], /^[0-9a-f]{4,64}$/);
  // A release build's REMISE_COMMIT wins.
  const override = await runBundle(["--version"], { REMISE_COMMIT: "abc1234" });
  assert.equal(
    override.stdout.trim(),
    `remise ${VERSION} (commit abc1234, deno ${Deno.version.deno})`,
  );
});

Deno.test("the bundle: server --check-config accepts config.example.toml, names a bad key", async () => {
  const { dir } = await builtBundle();
  // --check-config reads the certificates the example names, as start-up does: here, from dir.
  const example = `${dir}/example.toml`;
  const text = (await Deno.readTextFile(`${ROOT}config.example.toml`))
    .replaceAll('"/etc/remise/', `"${dir}/`);
  await Deno.writeTextFile(example, text);
  const absent = await runBundle(["server", "--check-config", "-c", example]);
  assert.equal(absent.code, EXIT_CONFIG, absent.stdout);
  assert.match(absent.stderr, /cannot read ca_cert ".*\/ca\.crt": No such file/);
  const ca = await createClusterCa();
  const node = await issueNodeCertificate(ca, { name: "node1", hosts: [] });
  const files = { "ca.crt": ca.certPem, "node.crt": node.certPem, "node.key": node.keyPem };
  const writeFiles = async (changed: Partial<typeof files>) => {
    for (const [file, pem] of Object.entries({ ...files, ...changed })) {
      await Deno.writeTextFile(`${dir}/${file}`, pem);
    }
  };
  await writeFiles({});
  const ok = await runBundle(["server", "--check-config", "-c", example]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /configuration is valid/);

  // Certificate files that do not go together, each named with what to do.
  const other = await issueNodeCertificate(ca, { name: "node2", hosts: [] });
  const otherCa = await createClusterCa();
  const mixed: [Partial<typeof files>, RegExp][] = [
    [
      { "node.crt": node.keyPem, "node.key": node.certPem },
      /node_cert ".*\/node\.crt" is not a PEM certificate: it holds a private key/,
    ],
    [{ "node.crt": other.certPem }, /node_key ".*\/node\.key" is not the key of node_cert/],
    [{ "ca.crt": otherCa.certPem }, /node_cert ".*\/node\.crt" is not signed by ca_cert/],
  ];
  for (const [changed, expected] of mixed) {
    await writeFiles(changed);
    const res = await runBundle(["server", "--check-config", "-c", example]);
    assert.equal(res.code, EXIT_CONFIG, res.stdout);
    assert.match(res.stderr, expected);
  }
  await writeFiles({});

  const cases: [string, string, RegExp][] = [
    ["typo.toml", text.replace(/^block_size =/m, "blok_size ="), /"blok_size".*"block_size"/],
    [
      "type.toml",
      text.replace(/^replication_factor = 3$/m, 'replication_factor = "three"'),
      /"replication_factor"/,
    ],
    ["missing.toml", text.replace(/^data_dir = .*$/m, ""), /missing required key "data_dir"/],
  ];
  for (const [name, broken, expected] of cases) {
    assert.notEqual(broken, text, `${name}: the example changed; update this test`);
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, broken);
    const res = await runBundle(["server", "--check-config", "-c", path]);
    assert.equal(res.code, EXIT_CONFIG, `${name} was accepted:\n${res.stdout}`);
    assert.match(res.stderr, expected);
    assert.ok(res.stderr.includes(path), `${name}: the message does not name the file`);
    assert.doesNotMatch(res.stderr, /^\s+at /m, `${name}: a stack trace:\n${res.stderr}`);
  }
});

Deno.test("README's configuration reference lists every key of config.example.toml", async () => {
  const example = await Deno.readTextFile(`${ROOT}config.example.toml`);
  const keys = [...example.matchAll(/^#? ?([a-z_]+) = /gm)].map((m) => m[1]);
  assert.ok(keys.length >= 20, `only ${keys.length} keys found in config.example.toml`);
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = /^## Configuration reference\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? "";
  const rows = section.split("\n").filter((line) => line.startsWith("| `"));
  for (const key of keys) {
    assert.ok(rows.some((row) => row.split("|")[1].includes(`\`${key}\``)), `${key} is missing`);
  }
});

Deno.test("every way of running a server passes remise's V8 flags", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  for (const task of ["dev", "remise"]) {
    assert.ok(
      tasks[task].split(" ").includes(V8_FLAGS_OPTION),
      `deno task ${task}: ${tasks[task]}`,
    );
  }
  const readme = (await Deno.readTextFile(`${ROOT}README.md`)).replaceAll("\n", " ");
  const bundleServers = [...readme.matchAll(/deno run [^`]*remise\.js server[^`]*/g)].map((m) =>
    m[0]
  );
  assert.ok(bundleServers.length >= 2, "README shows how to run the bundle's server");
  for (const line of bundleServers) assert.ok(line.includes(V8_FLAGS_OPTION), line);
  const release = await Deno.readTextFile(`${ROOT}scripts/release.ts`);
  assert.match(release, /"-A",\n\s+V8_FLAGS_OPTION,/);
});

Deno.test({
  name: "the bundle: start a node, key and bucket with its CLI, aws s3 cp up and down, SIGTERM",
  ignore: !HAS_AWS,
  fn: async () => {
    const { path: bundlePath } = await builtBundle();
    const dir = await Deno.makeTempDir({ prefix: "remise-shipping-" });
    const apiPort = freePort();
    const adminPort = freePort();
    const config = `${dir}/remise.toml`;
    await Deno.writeTextFile(
      config,
      [
        `metadata_dir = "${dir}/meta"`,
        `data_dir = "${dir}/data"`,
        `api_bind_addr = "127.0.0.1:${apiPort}"`,
        `admin_bind_addr = "127.0.0.1:${adminPort}"`,
        `s3_region = "${REGION}"`,
        "", // No admin_token: the server makes one and the CLI finds it in metadata_dir.
      ].join("\n"),
    );
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", bundlePath, "server", "-c", config],
      cwd: dir,
      // The server's own lines at info: its stop is told there.
      env: { REMISE_LOG: "warn,remise::server=info", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let output = "";
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const chunk of stream) output += dec.decode(chunk, { stream: true });
    };
    const collected = Promise.all([collect(server.stdout), collect(server.stderr)]);
    const { env, home } = await cleanClientEnv();
    try {
      // Up when the health check answers.
      const deadline = Date.now() + START_BOUND_MS;
      for (;;) {
        assert.ok(Date.now() < deadline, `the bundle's node did not start:\n${output}`);
        assert.equal(await exitWithin(server, 0), undefined, `the node exited:\n${output}`);
        const up = await fetch(`http://127.0.0.1:${adminPort}/health`).then(
          async (res) => (await res.body?.cancel(), res.ok),
          () => false,
        );
        if (up) break;
        await sleep(100);
      }

      const cli = async (...args: string[]) => {
        const res = await runBundle(["-c", config, ...args]);
        assert.equal(res.code, 0, `remise ${args.join(" ")} failed:\n${res.stderr}`);
        return res.stdout;
      };
      const key = JSON.parse(await cli("key", "create", "k", "--json"));
      assert.match(key.accessKeyId, /^\S+$/);
      assert.match(key.secretAccessKey, /^\S+$/);
      assert.match(await cli("bucket", "create", "shipping"), /Created bucket "shipping"/);
      assert.match(
        await cli("bucket", "allow", "--read", "--write", "shipping", "--key", "k"),
        /shipping/,
      );

      Object.assign(env, {
        AWS_ACCESS_KEY_ID: key.accessKeyId,
        AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
        AWS_DEFAULT_REGION: REGION,
        AWS_EC2_METADATA_DISABLED: "true",
        AWS_PAGER: "",
      });
      assert.equal(env.AWS_CA_BUNDLE, undefined, "the machine's AWS_CA_BUNDLE must not leak in");
      const aws = async (...args: string[]) => {
        const endpoint = `http://127.0.0.1:${apiPort}`;
        const res = await runProgram(AWS, ["--endpoint-url", endpoint, ...args], env);
        assert.equal(res.code, 0, `aws ${args.join(" ")} failed:\n${res.stderr}`);
        return res.stdout;
      };
      const content = deterministicBytes(1536 * 1024 + 7, 77); // more than one block
      await Deno.writeFile(`${home}/up.bin`, content);
      await aws("s3", "cp", `${home}/up.bin`, "s3://shipping/dir/object.bin");
      await aws("s3", "cp", "s3://shipping/dir/object.bin", `${home}/down.bin`);
      const back = await Deno.readFile(`${home}/down.bin`);
      assert.equal(back.byteLength, content.byteLength);
      assert.equal(md5Hex(back), md5Hex(content));
      assert.match(await aws("s3", "ls", "s3://shipping/dir/"), /object\.bin/);

      server.kill("SIGTERM");
      const status = await exitWithin(server, SIGTERM_EXIT_BOUND_MS);
      assert.ok(status, `no exit within ${SIGTERM_EXIT_BOUND_MS} ms of SIGTERM:\n${output}`);
      assert.equal(status.code, 0, `exit code ${status.code} after SIGTERM:\n${output}`);
      await collected;
      // It exits once its workers are stopped and its metadata store closed.
      assert.match(output, /remise::server: stopped/, output);
    } finally {
      try {
        server.kill("SIGKILL");
      } catch {
        // already stopped
      }
      await server.status;
      await collected;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

// --- Stopping and crashing during a stream of uploads ---

interface Upload {
  key: string;
  md5: string;
}

/**
 * Uploads `count` objects with `concurrency` workers until done or until an
 * upload fails; `onAck` runs after each acknowledged PutObject. Object `i` is
 * medium (2-3 MiB, several blocks) when i % 5 == 0, small (0-64 KiB) otherwise.
 */
async function uploadStream(
  s3: S3Client,
  bucket: string,
  count: number,
  concurrency: number,
  onAck: (acked: Upload[]) => void,
): Promise<{ acked: Upload[]; attempted: Upload[]; failures: number }> {
  const acked: Upload[] = [];
  const attempted: Upload[] = [];
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < count && failures === 0) {
      const i = next++;
      const size = i % 5 === 0
        ? 2 * 1024 * 1024 + ((i * 7919) % (1024 * 1024))
        : (i * 4099) % (64 * 1024);
      const body = deterministicBytes(size, 1000 + i);
      const upload = { key: `stream/${String(i).padStart(4, "0")}`, md5: md5Hex(body) };
      attempted.push(upload);
      let etag: string | undefined;
      try {
        const put = new PutObjectCommand({ Bucket: bucket, Key: upload.key, Body: body });
        etag = (await s3.send(put)).ETag;
      } catch {
        failures++;
        continue;
      }
      assert.equal(etag, `"${upload.md5}"`, `${upload.key}: wrong ETag`);
      acked.push(upload);
      onAck(acked);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { acked, attempted, failures };
}

/** Checks that every acknowledged object reads back whole and that others are whole or absent. */
async function checkObjects(
  s3: S3Client,
  bucket: string,
  acked: Upload[],
  attempted: Upload[],
): Promise<void> {
  const ackedKeys = new Set(acked.map((u) => u.key));
  for (const upload of attempted) {
    let body: Uint8Array | undefined;
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: upload.key }));
      body = await res.Body!.transformToByteArray();
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (ackedKeys.has(upload.key) || name !== "NoSuchKey") {
        throw new Error(`${upload.key} (acknowledged: ${ackedKeys.has(upload.key)}): ${e}`);
      }
    }
    if (body) assert.equal(md5Hex(body), upload.md5, `${upload.key} has the wrong content`);
  }
}

async function withStreamServer(
  fn: (server: TestServer, credentials: Credentials) => Promise<void>,
): Promise<void> {
  const server = await TestServer.start();
  try {
    const credentials = await server.createKey("stream");
    await fn(server, credentials);
  } finally {
    await server.close();
  }
}

async function createBucket(server: TestServer, credentials: Credentials, name: string) {
  const s3 = server.client(credentials);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    s3.destroy();
  }
}

Deno.test("SIGTERM during a stream of uploads: exit 0 in time, acknowledged objects kept", async () => {
  await withStreamServer(async (server, credentials) => {
    await createBucket(server, credentials, "term");
    const process = server.process!;
    let status: Deno.CommandStatus | undefined;
    let signalledMs = 0;
    const s3 = server.client(credentials);
    let result;
    try {
      result = await uploadStream(s3, "term", 120, 4, (acked) => {
        if (acked.length === 20 && !signalledMs) {
          signalledMs = Date.now();
          process.kill("SIGTERM");
        }
      });
      status = await exitWithin(process, SIGTERM_EXIT_BOUND_MS - (Date.now() - signalledMs));
    } finally {
      s3.destroy();
    }
    assert.ok(signalledMs > 0, "the stream ended before 20 acknowledgements");
    assert.ok(status, `no exit within ${SIGTERM_EXIT_BOUND_MS} ms of SIGTERM:\n${server.output}`);
    assert.equal(status.code, 0, `exit code ${status.code} after SIGTERM:\n${server.output}`);
    assert.ok(result.failures > 0, "uploads went on after SIGTERM");

    await server.launch();
    const after = server.client(credentials);
    try {
      await checkObjects(after, "term", result.acked, result.attempted);
    } finally {
      after.destroy();
    }
  });
});

Deno.test("an upload still going when SIGTERM's grace period ends gets 503, not a 400 that blames the client", async () => {
  await withStreamServer(async (server, credentials) => {
    await createBucket(server, credentials, "cut");
    const size = 20 * 1024 * 1024;
    const { headers } = await signRequest(server, credentials, {
      method: "PUT",
      path: "/cut/slow",
      headers: { "content-length": String(size) },
      payloadHash: "UNSIGNED-PAYLOAD",
    });
    const head = `PUT /cut/slow HTTP/1.1\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
    // A first MiB, then nothing: the upload is in flight, and stays so past the grace period.
    const reply = rawExchange(server.apiPort, head, new Uint8Array(1024 * 1024), {
      timeoutMs: SIGTERM_EXIT_BOUND_MS + 5_000,
    });
    // Another client holds its connection open after sending part of a body, and never closes it.
    const holder = await Deno.connect({ hostname: "127.0.0.1", port: server.apiPort });
    await holder.write(
      new TextEncoder().encode(
        `PUT /cut/held HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc`,
      ),
    );
    await sleep(1_000);
    const signalledAt = Date.now();
    server.process!.kill("SIGTERM");
    const { status, text } = await reply;
    assert.equal(status, 503, text);
    assert.match(text, /<Code>ServiceUnavailable<\/Code>/);
    const exit = await server.process!.status;
    assert.ok(
      Date.now() - signalledAt < SIGTERM_EXIT_BOUND_MS,
      `the node exited ${Date.now() - signalledAt} ms after SIGTERM, past ${SIGTERM_EXIT_BOUND_MS}`,
    );
    assert.equal(exit.code, 0, server.output);
    holder.close();
    server.process = undefined;
    await server.launch();
    const s3 = server.client(credentials);
    try {
      assert.deepEqual(await keysOf(s3, "cut"), [], "nothing was stored");
    } finally {
      s3.destroy();
    }
  });
});

Deno.test("kill -9 during a stream of uploads: every acknowledged object survives a restart", async () => {
  await withStreamServer(async (server, credentials) => {
    await createBucket(server, credentials, "crash");
    const s3 = server.client(credentials);
    let killed: Promise<void> | undefined;
    let result;
    try {
      result = await uploadStream(s3, "crash", 200, 4, (acked) => {
        if (acked.length === 50) killed ??= server.kill();
      });
      await killed;
    } finally {
      s3.destroy();
    }
    assert.ok(killed, "the stream ended before 50 acknowledgements");
    assert.ok(result.acked.length >= 50 && result.acked.length < 200, `${result.acked.length}`);
    // Medium objects (several blocks) were acknowledged before the crash, not only inline ones.
    assert.ok(result.acked.some((u) => Number(u.key.slice(-4)) % 5 === 0));

    await server.launch();
    const after = server.client(credentials);
    try {
      await checkObjects(after, "crash", result.acked, result.attempted);
    } finally {
      after.destroy();
    }
  });
});

Deno.test("SIGHUP (a reload, a closed terminal) leaves the node serving, and says a restart applies changes", async () => {
  const server = await TestServer.start();
  try {
    const credentials = await server.createKey("hup");
    const s3 = server.client(credentials);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "hup" }));
      server.process!.kill("SIGHUP");
      const deadline = Date.now() + 10_000;
      while (!server.output.includes("SIGHUP received") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(server.output, /SIGHUP received: .*restart it to apply changes/);
      await s3.send(new PutObjectCommand({ Bucket: "hup", Key: "after", Body: "still here" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "hup", Key: "after" }));
      assert.equal(await got.Body!.transformToString(), "still here");
    } finally {
      s3.destroy();
    }
    const process = server.process!;
    process.kill("SIGTERM");
    assert.equal((await process.status).code, 0, server.output);
    server.process = undefined;
  } finally {
    await server.close();
  }
});

Deno.test("the metadata store, which holds the keys' secrets, is the node's user's alone; an older one others may read is named", async () => {
  const server = await TestServer.start();
  try {
    // Made under the test's umask (022 as a rule), it would be 0644 without the node's care.
    const store = `${server.dir}/meta/metadata.kv`;
    assert.equal((await Deno.stat(store)).mode! & 0o777, 0o600);
    await server.stop();
    assert.doesNotMatch(server.output, /other users may read it/);

    await Deno.chmod(`${server.dir}/meta`, 0o755);
    await Deno.chmod(store, 0o644);
    await server.launch();
    assert.match(
      server.output,
      /metadata\.kv holds the access keys' secrets and other users may read it \(mode 644\): chmod 600/,
    );
  } finally {
    await server.close();
  }
});

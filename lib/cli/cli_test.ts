import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { Store } from "../model/store.ts";
import { Access } from "../model/access.ts";
import { createAdminHandler } from "../api/admin/admin_api.ts";
import { EXIT_CONFIG, runCli } from "./cli.ts";
import { lockDirectory } from "../util/directory_lock.ts";

const TOKEN = "cli-test-admin-token-0123456789";
const ROOT = new URL("../../", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process, capturing its output. */
async function cli(...args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    stdout: (text) => stdout += text,
    stderr: (text) => stderr += text,
  });
  return { code, stdout, stderr };
}

/** Runs `deno run main.ts ARGS` as a user would, in another process. */
async function remise(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", `${ROOT}main.ts`, ...args],
    cwd: ROOT,
    env: { REMISE_CONFIG: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

interface Env {
  dir: string;
  config: string;
  port: number;
  access: Access;
}

/** A temporary store served by the admin API on a loopback port, and a config naming it. */
async function withServer(
  fn: (env: Env) => Promise<void>,
  token: string | null = TOKEN,
  status: (standard: Record<string, unknown>) => Record<string, unknown> = (s) => s,
) {
  const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
  const db = await KvStore.open(`${dir}/meta.kv`);
  const blocks = await BlockStore.open(`${dir}/data`);
  const access = new Access(new Store(db, blocks, { blockSize: 1 << 20 }));
  const handler = createAdminHandler({
    access,
    token: TOKEN,
    nodeInfo: () =>
      status({
        nodeId: "f00d",
        layoutVersion: 0,
        nodes: [{
          id: "f00d",
          addr: "127.0.0.1:3900",
          up: true,
          lastSeen: null,
          rttMs: null,
          hostname: "host1",
          version: "0.1.0",
          zone: null,
          capacity: null,
          gateway: false,
          partitions: 256,
          dataDisk: null,
          metadataDisk: null,
        }],
        unreached: [
          {
            addr: "192.0.2.7:3901",
            lastError: "its certificate is not signed by this node's ca_cert",
          },
          { addr: "192.0.2.8:3901", lastError: null },
        ],
        notes: ["This node runs alone."],
        warnings: ["Node f00d is down."],
      }),
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
  try {
    const port = server.addr.port;
    const config = `${dir}/remise.toml`;
    await Deno.writeTextFile(
      config,
      [
        `metadata_dir = "${dir}/meta"`,
        `data_dir = "${dir}/data"`,
        `admin_bind_addr = "127.0.0.1:${port}"`,
        token === null ? "" : `admin_token = "${token}"`,
      ].join("\n"),
    );
    await fn({ dir, config, port, access });
  } finally {
    await server.shutdown();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * Runs `remise server` on a configuration written in `dir` (metadata in
 * `metadataDir`, S3 on `apiPort`), which must refuse to start; its stderr.
 */
async function refusedStart(
  dir: string,
  options: { metadataDir?: string; apiPort?: number } = {},
): Promise<{ config: string; stderr: string }> {
  const config = `${dir}/remise.toml`;
  await Deno.writeTextFile(
    config,
    `metadata_dir = "${options.metadataDir ?? `${dir}/meta`}"\ndata_dir = "${dir}/data"\n` +
      `api_bind_addr = "127.0.0.1:${options.apiPort ?? closedPort()}"\n` +
      `admin_bind_addr = "127.0.0.1:${closedPort()}"\nadmin_token = "${TOKEN}"\n`,
  );
  const r = await remise(["server", "-c", config], { REMISE_LOG: "error" });
  assert.equal(r.code, 1, r.stderr);
  return { config, stderr: r.stderr };
}

Deno.test("cli: output cut short by its reader (| head) is no error", async () => {
  let stderr = "";
  const code = await runCli(["--help"], {
    stdout: () => {
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
    stderr: (text) => stderr += text,
  });
  assert.equal(code, 0);
  assert.equal(stderr, "");
});

Deno.test("cli: keys are created, listed, described and deleted", async () => {
  await withServer(async ({ config }) => {
    const created = await cli("-c", config, "key", "create", "k1", "--json");
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    assert.deepEqual(Object.keys(key).sort(), ["accessKeyId", "name", "secretAccessKey"]);
    assert.equal(key.name, "k1");

    const text = await cli("-c", config, "key", "create", "k2");
    assert.equal(text.code, 0);
    assert.match(
      text.stdout,
      /^Created access key "k2"\.\nAccess key id: +GK[0-9a-f]{24}\nSecret access key: +[0-9a-f]{64}\n$/,
    );

    const list = await cli("-c", config, "key", "list");
    assert.equal(list.code, 0);
    const lines = list.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^ACCESS KEY ID +NAME +CREATED$/);
    assert.equal(lines.length, 3);
    const row = lines.find((l) => l.startsWith(key.accessKeyId))!;
    assert.match(row, /^GK[0-9a-f]{24} {2}k1 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Columns are aligned: CREATED starts at the same offset on every line.
    const offsets = lines.map((l) => l.search(/CREATED|\d{4}-\d\d-/));
    assert.equal(new Set(offsets).size, 1);
    const listJson = JSON.parse((await cli("-c", config, "key", "list", "--json")).stdout);
    assert.equal(listJson.length, 2);

    // -c may also follow the sub-command.
    const info = await cli("key", "info", "k1", "-c", config);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`Access key id: +${key.accessKeyId}\n`));
    assert.match(info.stdout, /Secret access key: +\(hidden; --show-secret shows it\)/);
    assert.ok(!info.stdout.includes(key.secretAccessKey));
    assert.match(info.stdout, /Buckets: none/);
    const shown = await cli(
      "-c",
      config,
      "key",
      "info",
      key.accessKeyId.slice(0, 10),
      "--show-secret",
    );
    assert.ok(shown.stdout.includes(key.secretAccessKey));
    const infoJson = JSON.parse((await cli("-c", config, "key", "info", "k1", "--json")).stdout);
    assert.equal(infoJson.secretAccessKey, undefined);
    assert.deepEqual(infoJson.buckets, []);
    const secretJson = JSON.parse(
      (await cli("-c", config, "key", "info", "k1", "--json", "--show-secret")).stdout,
    );
    assert.equal(secretJson.secretAccessKey, key.secretAccessKey);

    // The right to create buckets, the one a key has of its own.
    assert.match(info.stdout, /Can create buckets: +yes\n/);
    const denied = await cli("-c", config, "key", "deny", "--create-bucket", "k1");
    assert.equal(denied.code, 0, denied.stderr);
    assert.equal(denied.stdout, `Access key ${key.accessKeyId} ("k1") may not create buckets.\n`);
    assert.match(
      (await cli("-c", config, "key", "info", "k1")).stdout,
      /Can create buckets: +no\n/,
    );
    const allowed = await cli("-c", config, "key", "allow", "--create-bucket", "k1");
    assert.equal(allowed.stdout, `Access key ${key.accessKeyId} ("k1") may create buckets.\n`);
    const nothing = await cli("-c", config, "key", "deny", "k1");
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /--create-bucket/);

    const missing = await cli("-c", config, "key", "info", "nobody");
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assert.equal(missing.stderr, 'remise: no access key matches "nobody"\n');
    const ambiguous = await cli("-c", config, "key", "info", "GK");
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /^remise: "GK" matches 2 access keys: /);

    const deleted = await cli("-c", config, "key", "delete", "k1");
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `Deleted access key ${key.accessKeyId} ("k1").\n`);
    assert.equal((await cli("-c", config, "key", "info", "k1")).code, 1);
    assert.equal((await cli("-c", config, "key", "delete", "k2", "--yes")).code, 0);
    assert.match((await cli("-c", config, "key", "list")).stdout, /^No access keys\./);
  });
});

Deno.test("cli: buckets and rights", async () => {
  await withServer(async ({ config }) => {
    const key = JSON.parse((await cli("-c", config, "key", "create", "site-key", "--json")).stdout);
    const created = await cli("-c", config, "bucket", "create", "site");
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^Created bucket "site" \(id [0-9a-f]{64}\)\.\n$/);
    assert.match(
      (await cli("-c", config, "bucket", "list")).stdout,
      /^NAME +ID +CREATED\nsite +[0-9a-f]{16} +\d{4}-/,
    );

    const allow = await cli(
      "-c",
      config,
      "bucket",
      "allow",
      "--read",
      "--write",
      "site",
      "--key",
      "site-key",
    );
    assert.equal(allow.code, 0, allow.stderr);
    assert.equal(
      allow.stdout,
      `Rights of key ${key.accessKeyId} ("site-key") on bucket "site": read, write.\n`,
    );
    const info = await cli("-c", config, "bucket", "info", "site");
    assert.match(
      info.stdout,
      /^Name: +site\nId: +[0-9a-f]{64}\nCreated: +\S+\nObjects: +0\nSize: +0 B\n/,
    );
    assert.match(
      info.stdout,
      /\nKeys:\nACCESS KEY ID +NAME +READ +WRITE +OWNER\nGK[0-9a-f]{24} +site-key +yes +yes +no\n$/,
    );
    const keyInfo = await cli("-c", config, "key", "info", "site-key");
    assert.match(
      keyInfo.stdout,
      /\nBuckets:\nNAME +ID +READ +WRITE +OWNER\nsite +[0-9a-f]{16} +yes +yes +no\n$/,
    );

    const deny = await cli(
      "-c",
      config,
      "bucket",
      "deny",
      "--write",
      "site",
      "--key",
      key.accessKeyId,
    );
    assert.match(deny.stdout, /on bucket "site": read\.\n$/);
    const denyAll = await cli(
      "-c",
      config,
      "bucket",
      "deny",
      "--read",
      "--owner",
      "site",
      "--key",
      "site-key",
    );
    assert.match(denyAll.stdout, /on bucket "site": none\.\n$/);
    assert.deepEqual(
      JSON.parse((await cli("-c", config, "bucket", "info", "site", "--json")).stdout).keys,
      [],
    );

    const noRights = await cli("-c", config, "bucket", "allow", "site", "--key", "site-key");
    assert.equal(noRights.code, 1);
    assert.equal(
      noRights.stderr,
      "remise: give at least one of --read, --write, --owner to allow\n",
    );
    const noKey = await cli("-c", config, "bucket", "allow", "--read", "site");
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /^remise: required option '--key <key>' not specified/);

    const invalid = await cli("-c", config, "bucket", "create", "Bad_Name");
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^remise: invalid bucket name "Bad_Name": it .+\n$/);
    const dup = await cli("-c", config, "bucket", "create", "site");
    assert.equal(dup.stderr, 'remise: bucket "site" already exists\n');

    assert.equal(
      (await cli("-c", config, "bucket", "delete", "site")).stdout,
      'Deleted bucket "site".\n',
    );
    const gone = await cli("-c", config, "bucket", "info", "site");
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, 'remise: bucket "site" does not exist\n');
    assert.match((await cli("-c", config, "bucket", "list")).stdout, /^No buckets\./);
  });
});

Deno.test("cli: bucket website", async () => {
  await withServer(async ({ config }) => {
    await cli("-c", config, "bucket", "create", "blog");
    const notServed = await cli("-c", config, "bucket", "info", "blog");
    assert.match(notServed.stdout, /\nWebsite: +not served\n/);

    const website = (...args: string[]) => cli("-c", config, "bucket", "website", "blog", ...args);
    const allow = await website("--allow");
    assert.equal(allow.code, 0, allow.stderr);
    assert.equal(allow.stdout, 'Bucket "blog": website served (index index.html).\n');
    const custom = await website(
      "--allow",
      "--index-document",
      "home.htm",
      "--error-document",
      "errors/404.html",
    );
    assert.equal(
      custom.stdout,
      'Bucket "blog": website served (index home.htm, errors errors/404.html).\n',
    );
    assert.deepEqual(
      JSON.parse((await cli("-c", config, "bucket", "info", "blog", "--json")).stdout).website,
      { indexDocument: "home.htm", errorDocument: "errors/404.html" },
    );

    const badIndex = await website("--allow", "--index-document", "a/b.html");
    assert.equal(badIndex.code, 1);
    assert.match(badIndex.stderr, /^remise: invalid website configuration: the index document/);
    const neither = await website();
    assert.equal(neither.code, 1);
    assert.equal(neither.stderr, "remise: give one of --allow and --deny\n");
    const unknown = await cli("-c", config, "bucket", "website", "nope", "--allow");
    assert.equal(unknown.stderr, 'remise: bucket "nope" does not exist\n');

    const deny = await website("--deny");
    assert.equal(deny.stdout, 'Bucket "blog": website not served.\n');
    assert.equal(
      JSON.parse((await cli("-c", config, "bucket", "info", "blog", "--json")).stdout).website,
      null,
    );
  });
});

Deno.test("cli: status", async () => {
  await withServer(async ({ config }) => {
    const status = await cli("-c", config, "status");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^Layout version: none\n/);
    assert.match(status.stdout, /ID +HOST +ADDRESS/);
    assert.match(status.stdout, /f00d +host1 +127\.0\.0\.1:3900 .* up /);
    assert.match(status.stdout, /\nNote: This node runs alone\.\nWARNING: Node f00d is down\.\n$/);
    assert.match(
      status.stdout,
      /\nNot reached yet: 192\.0\.2\.7:3901 \(its certificate is not signed by this node's ca_cert\)\nNot reached yet: 192\.0\.2\.8:3901\n/,
    );
    const json = JSON.parse((await cli("-c", config, "status", "--json")).stdout);
    assert.equal(json.nodeId, "f00d");
    assert.equal(json.nodes[0].hostname, "host1");
  });
});

Deno.test("cli: status while data moves to a new layout names the versions and the nodes without it", async () => {
  const moving = (s: Record<string, unknown>) => {
    const [self] = s.nodes as Record<string, unknown>[];
    return {
      ...s,
      layoutVersion: 3,
      olderLayoutVersions: [2],
      nodes: [
        { ...self, syncedLayoutVersion: 3 },
        { ...self, id: "beef", up: false, rttMs: 2.5, syncedLayoutVersion: 2 },
      ],
    };
  };
  await withServer(
    async ({ config }) => {
      const status = await cli("-c", config, "status");
      assert.match(
        status.stdout,
        /^Layout version: 3, data still moving from version 2 \(not all there yet on beef\); reads and writes use both placements until it is done\n/,
      );
      // A node down shows no round trip time: the last one is stale.
      assert.match(status.stdout, /\nbeef .* DOWN +- +256 /);
    },
    TOKEN,
    moving,
  );
});

Deno.test("cli: status names a node still fetching the data it lacks", async () => {
  const rebuilt = (s: Record<string, unknown>) => {
    const [self] = s.nodes as Record<string, unknown>[];
    return {
      ...s,
      layoutVersion: 1,
      nodes: [
        { ...self, syncedLayoutVersion: 1 },
        { ...self, id: "beef", syncedLayoutVersion: 0 },
      ],
    };
  };
  await withServer(
    async ({ config }) => {
      const status = await cli("-c", config, "status");
      assert.match(
        status.stdout,
        /^Layout version: 1, beef still fetching the data it lacks \(new, or rebuilt from empty disks\): reads leave it out while the others are up\n/,
      );
    },
    TOKEN,
    rebuilt,
  );
});

Deno.test("cli: a configuration file given as layout assign's -c (the capacity) gets a hint", async () => {
  const run = await cli("layout", "assign", "c0195838", "-z", "site9", "-c", "n1/remise.toml");
  assert.equal(run.code, 1);
  assert.equal(
    run.stderr,
    'remise: invalid capacity "n1/remise.toml" (use a size like 500G); for a configuration file, ' +
      "put -c before the sub-command: remise -c n1/remise.toml layout assign ...\n",
  );
  const plain = await cli("layout", "assign", "c0195838", "-z", "site9", "-c", "lots");
  assert.equal(plain.stderr, 'remise: invalid capacity "lots" (use a size like 500G)\n');
});

Deno.test("cli: the admin token comes from metadata_dir/admin_token when the config sets none", async () => {
  await withServer(async ({ dir, config }) => {
    const noToken = await cli("-c", config, "key", "list");
    assert.equal(noToken.code, 1);
    assert.match(
      noToken.stderr,
      /^remise: no admin token: .* sets no admin_token and .*\/meta\/admin_token does not exist/,
    );
    await Deno.mkdir(`${dir}/meta`, { recursive: true });
    await Deno.writeTextFile(`${dir}/meta/admin_token`, "not-the-right-token-at-all\n");
    const wrong = await cli("-c", config, "key", "list");
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /^remise: the admin API at http:\/\/127\.0\.0\.1:\d+ refused the admin token \(invalid admin token\)/,
    );
    await Deno.writeTextFile(`${dir}/meta/admin_token`, `${TOKEN}\n`);
    const right = await cli("-c", config, "key", "list");
    assert.equal(right.code, 0, right.stderr);
  }, null);
});

Deno.test("cli: configuration errors name the problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
  try {
    const missing = await cli("-c", `${dir}/nope.toml`, "key", "list");
    assert.equal(missing.code, EXIT_CONFIG);
    assert.equal(
      missing.stderr,
      `remise: Cannot read configuration file ${dir}/nope.toml: no such file\n`,
    );
    // Neither -c nor REMISE_CONFIG: the default, where README and the systemd unit put it.
    const unnamed = await remise(["key", "list"]);
    assert.equal(unnamed.code, EXIT_CONFIG);
    assert.match(
      unnamed.stderr,
      /^remise: Cannot read configuration file \/etc\/remise\/remise\.toml: no such file \(name the file with -c FILE or REMISE_CONFIG\)/,
    );
    await Deno.writeTextFile(
      `${dir}/bad.toml`,
      `metadata_dir = "m"\ndata_dir = "d"\nadmin_tokn = "x"\n`,
    );
    const bad = await cli("-c", `${dir}/bad.toml`, "bucket", "list");
    assert.equal(bad.code, EXIT_CONFIG);
    assert.match(bad.stderr, /unknown key "admin_tokn"; did you mean "admin_token"\?/);
    // A cluster's setting without a cluster's certificates: valid, but the node runs alone.
    await Deno.writeTextFile(
      `${dir}/alone.toml`,
      `metadata_dir = "m"\ndata_dir = "d"\nreplication_factor = 3\n`,
    );
    const alone = await remise(["server", "--check-config", "-c", `${dir}/alone.toml`]);
    assert.equal(alone.code, 0, alone.stderr);
    assert.match(
      alone.stderr,
      /sets replication_factor = 3, but without ca_cert, node_cert and node_key this node runs alone/,
    );
    const unknown = await cli("frobnicate");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^remise: unknown command 'frobnicate'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: cert ca and cert node write the files; node id reads node_cert", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
  try {
    const ca = await cli("cert", "ca", "--out", `${dir}/ca`);
    assert.equal(ca.code, 0, ca.stderr);
    assert.match(ca.stdout, /ca\.crt and .*ca\.key\./);
    assert.equal((await Deno.stat(`${dir}/ca/ca.key`)).mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(`${dir}/ca/ca.crt`), /^-----BEGIN CERTIFICATE-----/);
    const again = await cli("cert", "ca", "--out", `${dir}/ca`);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^remise: cannot write the cluster CA to .*: refusing to overwrite existing file/,
    );

    const node = await cli(
      "cert",
      "node",
      "--ca",
      `${dir}/ca`,
      "--name",
      "node1",
      "--host",
      "10.0.0.1",
      "--host",
      "node1.example.org",
      "--out",
      `${dir}/node1`,
    );
    assert.equal(node.code, 0, node.stderr);
    const id = /Node id: ([0-9a-f]{64})\n/.exec(node.stdout)?.[1];
    assert.ok(id, node.stdout);
    assert.equal((await Deno.stat(`${dir}/node1/node.key`)).mode! & 0o777, 0o600);

    const badName = await cli(
      "cert",
      "node",
      "--ca",
      `${dir}/ca`,
      "--name",
      "not a name",
      "--out",
      `${dir}/x`,
    );
    assert.equal(badName.code, 1);
    assert.match(
      badName.stderr,
      /^remise: cannot issue the node certificate: not a valid node name/,
    );
    const noCa = await cli(
      "cert",
      "node",
      "--ca",
      `${dir}/none`,
      "--name",
      "n",
      "--out",
      `${dir}/y`,
    );
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /^remise: cannot read the cluster CA from .*none: /);

    const config = `${dir}/remise.toml`;
    const base = `metadata_dir = "${dir}/meta"\ndata_dir = "${dir}/data"\n`;
    await Deno.writeTextFile(config, base);
    const noCert = await cli("-c", config, "node", "id");
    assert.equal(noCert.code, 1);
    assert.match(
      noCert.stderr,
      /^remise: no node certificate is configured in .*remise\.toml: set ca_cert/,
    );
    await Deno.writeTextFile(
      config,
      base +
        `ca_cert = "${dir}/ca/ca.crt"\nnode_cert = "${dir}/node1/node.crt"\nnode_key = "${dir}/node1/node.key"\n`,
    );
    const nodeId = await cli("-c", config, "node", "id");
    assert.equal(nodeId.code, 0, nodeId.stderr);
    assert.equal(nodeId.stdout, `${id}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli end to end: main.ts as a user runs it", async (t) => {
  await t.step("--version", async () => {
    const r = await remise(["--version"], { REMISE_COMMIT: "abc1234" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `remise 0.1.0 (commit abc1234, deno ${Deno.version.deno})\n`);
  });

  await t.step("--help", async () => {
    const r = await remise(["bucket", "allow", "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: remise bucket allow \[options\] <bucket>/);
    assert.match(r.stdout, /--key <key>/);
  });

  await t.step("key create, bucket create, allow, info over the admin API", async () => {
    await withServer(async ({ config }) => {
      const created = await remise(["-c", config, "key", "create", "k1", "--json"]);
      assert.equal(created.code, 0, created.stderr);
      const key = JSON.parse(created.stdout);
      assert.equal(key.name, "k1");
      // REMISE_CONFIG names the file when -c does not.
      const env = { REMISE_CONFIG: config };
      const bucket = await remise(["bucket", "create", "bucket1"], env);
      assert.equal(bucket.code, 0, bucket.stderr);
      const allow = await remise(["bucket", "allow", "--read", "bucket1", "--key", "k1"], env);
      assert.equal(allow.code, 0, allow.stderr);
      const info = await remise(["bucket", "info", "bucket1", "--json"], env);
      assert.deepEqual(JSON.parse(info.stdout).keys, [
        { accessKeyId: key.accessKeyId, name: "k1", read: true, write: false, owner: false },
      ]);
      const gone = await remise(["-c", config, "bucket", "info", "nope"]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stdout, "");
      assert.equal(gone.stderr, 'remise: bucket "nope" does not exist\n');
    });
  });

  await t.step(
    "a port already taken is named with its setting, without a stack trace",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const { stderr } = await refusedStart(dir, { apiPort: taken.addr.port });
        assert.equal(
          stderr,
          `remise: Cannot listen on 127.0.0.1:${taken.addr.port} (api_bind_addr): the address is ` +
            `already in use (by another program, or another remise)\n`,
        );
      } finally {
        taken.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("a second server on the same metadata_dir is refused", async () => {
    const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
    // Held by this process, as a running node holds it.
    const held = await lockDirectory(dir, "metadata_dir", "another config");
    try {
      const { config, stderr } = await refusedStart(dir, { metadataDir: dir });
      assert.equal(
        stderr,
        `remise: Another remise process is using ${dir} (metadata_dir in ${config}): ` +
          "stop it first, or give this node directories of its own\n",
      );
      // Refused before data_dir is made.
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "remise.lock",
        "remise.toml",
      ]);
    } finally {
      held.close();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a damaged metadata store is refused with the ways back", async () => {
    const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
    try {
      await Deno.mkdir(`${dir}/meta`);
      await Deno.writeFile(`${dir}/meta/metadata.kv`, new TextEncoder().encode("x".repeat(8192)));
      const { stderr } = await refusedStart(dir);
      assert.match(
        stderr,
        /^remise: Cannot open the metadata store at .*: file is not a database\. The metadata store is damaged: restore metadata\.kv from a backup .* start with both empty/,
      );
      assert.doesNotMatch(stderr, /\n {4}at /, "no stack trace");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("an unreachable admin API is named, without a stack trace", async () => {
    const dir = await Deno.makeTempDir({ prefix: "remise-cli-test-" });
    try {
      const port = closedPort();
      const config = `${dir}/remise.toml`;
      await Deno.writeTextFile(
        config,
        `metadata_dir = "${dir}/meta"\ndata_dir = "${dir}/data"\n` +
          `admin_bind_addr = "0.0.0.0:${port}"\nadmin_token = "${TOKEN}"\n`,
      );
      const r = await remise(["-c", config, "key", "list"]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.equal(
        r.stderr,
        `remise: cannot reach the admin API at http://127.0.0.1:${port} ` +
          `(is the server running? connection refused)\n`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

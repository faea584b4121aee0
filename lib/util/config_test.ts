import assert from "node:assert/strict";
import { checkDirectory, type Config, loadConfig, parseAddr, parseConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";

const PATH = "/etc/remise/remise.toml";
const MINIMAL = 'metadata_dir = "/var/lib/remise/meta"\ndata_dir = "/var/lib/remise/data"\n';

/** Asserts that parsing `text` fails with a ConfigError naming the file and every fragment. */
function assertRefused(text: string, ...fragments: string[]): string {
  let message = "";
  assert.throws(() => parseConfig(text, PATH), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    message = e.message;
    assert.ok(message.includes(PATH), `"${message}" should name the file`);
    for (const fragment of fragments) {
      assert.ok(message.includes(fragment), `"${message}" should include ${fragment}`);
    }
    return true;
  });
  return message;
}

Deno.test("a minimal config gets every default", () => {
  assert.deepEqual(
    parseConfig(MINIMAL, PATH),
    {
      configPath: PATH,
      metadataDir: "/var/lib/remise/meta",
      dataDir: "/var/lib/remise/data",
      blockSize: 1024 * 1024,
      minFreeSpace: 128 * 1024 * 1024,
      replicationFactor: 1,
      consistencyMode: "consistent",
      rpcBindAddr: "127.0.0.1:3901",
      bootstrapPeers: [],
      maxConcurrentRpcRequests: 128,
      metaEpidemicFanout: 3,
      apiBindAddr: "127.0.0.1:3900",
      s3Region: "us-east-1",
      adminBindAddr: "127.0.0.1:3903",
    } satisfies Config,
  );
});

Deno.test("a full config sets every key", () => {
  const text = `
metadata_dir = "meta"
data_dir = "/srv/data"
block_size = "4MiB"
min_free_space = "2G"
replication_factor = 3
consistency_mode = "degraded"
rpc_bind_addr = "[::]:3901"
rpc_public_addr = "203.0.113.5:3901"
bootstrap_peers = ["10.0.0.2:3901", "563e1ac8@[fc00:1::1]:3901", "node3.example.org:3901"]
consul_host = "consul.service:8500"
consul_service_name = "remise"
max_concurrent_rpc_requests = 32
meta_epidemic_fanout = 5
ca_cert = "certs/ca.pem"
node_cert = "certs/node.pem"
node_key = "/etc/remise/secret/node.key"
api_bind_addr = "0.0.0.0:3900"
s3_region = "eu-home-1"
root_domain = ".S3.Example.org"
web_bind_addr = "0.0.0.0:3902"
web_root_domain = "web.example.org"
admin_bind_addr = "127.0.0.1:3903"
admin_token = "0123456789abcdef0123"
`;
  assert.deepEqual(
    parseConfig(text, PATH),
    {
      configPath: PATH,
      metadataDir: "/etc/remise/meta",
      dataDir: "/srv/data",
      blockSize: 4 * 1024 * 1024,
      minFreeSpace: 2 * 1024 ** 3,
      replicationFactor: 3,
      consistencyMode: "degraded",
      rpcBindAddr: "[::]:3901",
      rpcPublicAddr: "203.0.113.5:3901",
      bootstrapPeers: ["10.0.0.2:3901", "563e1ac8@[fc00:1::1]:3901", "node3.example.org:3901"],
      consulHost: "consul.service:8500",
      consulServiceName: "remise",
      maxConcurrentRpcRequests: 32,
      metaEpidemicFanout: 5,
      caCert: "/etc/remise/certs/ca.pem",
      nodeCert: "/etc/remise/certs/node.pem",
      nodeKey: "/etc/remise/secret/node.key",
      apiBindAddr: "0.0.0.0:3900",
      s3Region: "eu-home-1",
      rootDomain: "s3.example.org",
      webBindAddr: "0.0.0.0:3902",
      webRootDomain: "web.example.org",
      adminBindAddr: "127.0.0.1:3903",
      adminToken: "0123456789abcdef0123",
    } satisfies Config,
  );
});

Deno.test("the sectioned forms of the original design are accepted", () => {
  const config = parseConfig(
    `${MINIMAL}
[s3_api]
api_bind_addr = "[::]:3900"
s3_region = "garage"
root_domain = ".s3.garage"

[s3_web]
bind_addr = "[::]:3902"
root_domain = ".web.garage"

[admin]
api_bind_addr = "0.0.0.0:3903"
admin_token_file = "secrets/admin_token"
`,
    PATH,
  );
  assert.equal(config.apiBindAddr, "[::]:3900");
  assert.equal(config.s3Region, "garage");
  assert.equal(config.rootDomain, "s3.garage");
  assert.equal(config.webBindAddr, "[::]:3902");
  assert.equal(config.webRootDomain, "web.garage");
  assert.equal(config.adminBindAddr, "0.0.0.0:3903");
  assert.equal(config.adminTokenFile, "/etc/remise/secrets/admin_token");
});

Deno.test("a key given both at the top level and in a section is refused", () => {
  assertRefused(
    `${MINIMAL}s3_region = "a"\n[s3_api]\ns3_region = "b"\n`,
    '"s3_api.s3_region"',
    '"s3_region"',
  );
  assertRefused(
    `${MINIMAL}web_bind_addr = "[::]:3902"\n[s3_web]\nbind_addr = "[::]:3902"\n`,
    "s3_web.bind_addr",
  );
});

Deno.test("unknown keys are refused, with the closest known key suggested", () => {
  assertRefused(
    `${MINIMAL}blok_size = "1M"`,
    'unknown key "blok_size"',
    'did you mean "block_size"?',
  );
  const far = assertRefused(`${MINIMAL}colour = "blue"`, 'unknown key "colour"');
  assert.ok(!far.includes("did you mean"), far);
  assertRefused(`${MINIMAL}[s3_api]\nregion = "x"`, 'unknown key "s3_api.region"');
  assertRefused(
    `${MINIMAL}[s3_web]\nbind_adr = "[::]:3902"`,
    'unknown key "s3_web.bind_adr"',
    'did you mean "s3_web.bind_addr"?',
  );
  assertRefused(`${MINIMAL}[admin]\nadmin_tokn = "x"`, 'did you mean "admin.admin_token"?');
  assertRefused(
    `${MINIMAL}[s3_ap]\napi_bind_addr = "[::]:3900"`,
    'unknown key "s3_ap"',
    '"s3_api"',
  );
  assertRefused(`${MINIMAL}[s3_api]\nblock_size = "1M"`, '"s3_api.block_size"', "top level");
});

Deno.test("missing required keys are named", () => {
  assertRefused('data_dir = "/d"', 'missing required key "metadata_dir"');
  assertRefused('metadata_dir = "/m"', 'missing required key "data_dir"');
  assertRefused('metadata_dir = ""\ndata_dir = "/d"', 'key "metadata_dir" must be a non-empty');
});

Deno.test("every problem of a file is told at once, each once", () => {
  const message = assertRefused(
    [
      'data_dir = "/d"',
      'blok_size = "1M"',
      'api_bind_addr = "localhost"',
      "replication_factor = 0",
      "consul_host = 8500",
      'consul_service_name = "remise"',
      "[admin]",
      'admin_token = "short"',
    ].join("\n"),
    ": 6 problems:\n  - ",
    '\n  - unknown key "blok_size"',
    '\n  - missing required key "metadata_dir"',
    '\n  - key "replication_factor" must be an integer between 1 and 7 (got 0)',
    '\n  - key "api_bind_addr" must be a string "host:port"',
    '\n  - key "admin.admin_token" must be at least 16 characters long',
    '\n  - key "consul_host" must be a non-empty string (got integer 8500)',
  );
  // consul_host is refused for its value, and not also told missing beside consul_service_name.
  assert.doesNotMatch(message, /consul_service_name/);
});

Deno.test("wrong TOML types name the expected and the given type", () => {
  assertRefused(
    `${MINIMAL}api_bind_addr = 3900`,
    'key "api_bind_addr" must be a string "host:port"',
    "integer 3900",
  );
  assertRefused(
    'metadata_dir = 1\ndata_dir = "/d"',
    'key "metadata_dir" must be a non-empty string',
    "integer 1",
  );
  assertRefused(
    `${MINIMAL}max_concurrent_rpc_requests = "16"`,
    "must be a positive integer",
    'string "16"',
  );
  assertRefused(
    `${MINIMAL}meta_epidemic_fanout = 1.5`,
    '"meta_epidemic_fanout" must be a positive integer',
    "float 1.5",
  );
  assertRefused(
    `${MINIMAL}replication_factor = true`,
    '"replication_factor" must be an integer between 1 and 7',
    "boolean true",
  );
  assertRefused(
    `${MINIMAL}bootstrap_peers = "10.0.0.2:3901"`,
    '"bootstrap_peers" must be an array',
  );
  assertRefused(
    `${MINIMAL}bootstrap_peers = [3901]`,
    '"bootstrap_peers[0]" must be a string',
    "integer 3901",
  );
  assertRefused(`${MINIMAL}bootstrap_peers = ["nowhere"]`, '"bootstrap_peers[0]"', '"nowhere"');
  assertRefused(
    `${MINIMAL}s3_region = ["a"]`,
    '"s3_region" must be a non-empty string',
    "got an array",
  );
  assertRefused(`${MINIMAL}s3_api = "x"`, '"s3_api" must be a table [s3_api]');
  assertRefused(
    `${MINIMAL}consistency_mode = "eventual"`,
    '"consistency_mode" must be one of "consistent", "degraded", "dangerous"',
  );
  assertRefused(`${MINIMAL}max_concurrent_rpc_requests = 0`, "must be a positive integer (got 0)");
  assertRefused(`${MINIMAL}root_domain = "s3 example"`, '"root_domain" must be a domain name');
  assertRefused(
    `${MINIMAL}admin_token = "short"`,
    '"admin_token" must be at least 16 characters',
    "5 characters",
  );
  assertRefused(
    `${MINIMAL}admin_token = "0123456789abcdef"\nadmin_token_file = "/t"`,
    '"admin_token" and "admin_token_file" are both set',
  );
  assertRefused(
    `${MINIMAL}[admin]\nmetrics_token = "prometheus"`,
    '"admin.metrics_token" must be at least 16 characters',
    "10 characters",
  );
});

Deno.test("block_size accepts byte counts and sizes within 64 KiB..64 MiB", () => {
  const blockSize = (value: string) =>
    parseConfig(`${MINIMAL}block_size = ${value}`, PATH).blockSize;
  assert.equal(blockSize("65536"), 65536);
  assert.equal(blockSize('"1M"'), 1024 * 1024);
  assert.equal(blockSize('"512K"'), 512 * 1024);
  assert.equal(blockSize('"4MB"'), 4_000_000);
  assert.equal(blockSize('"64MiB"'), 64 * 1024 * 1024);
  assertRefused(
    `${MINIMAL}block_size = "abc"`,
    `key "block_size" must be a positive integer or a size like "1M" (got "abc")`,
  );
  assertRefused(`${MINIMAL}block_size = -5`, 'key "block_size" must be a positive integer');
  assertRefused(`${MINIMAL}block_size = 1.5`, 'key "block_size"', "float 1.5");
  assertRefused(`${MINIMAL}block_size = "1K"`, "between 64 KiB and 64 MiB", "1 KiB");
  assertRefused(`${MINIMAL}block_size = "1G"`, "between 64 KiB and 64 MiB", "1 GiB");
  assertRefused(`${MINIMAL}block_size = true`, '"block_size"', "boolean true");
});

Deno.test("min_free_space accepts byte counts, sizes and 0", () => {
  const minFreeSpace = (value: string) =>
    parseConfig(`${MINIMAL}min_free_space = ${value}`, PATH).minFreeSpace;
  assert.equal(minFreeSpace('"1G"'), 1024 ** 3);
  assert.equal(minFreeSpace('"500MB"'), 500_000_000);
  assert.equal(minFreeSpace("0"), 0);
  assert.equal(minFreeSpace('"0"'), 0);
  assertRefused(
    `${MINIMAL}min_free_space = "lots"`,
    `key "min_free_space" must be a size like "1G", or 0 (got "lots")`,
  );
  assertRefused(`${MINIMAL}min_free_space = -1`, 'key "min_free_space" must be a size');
  assertRefused(`${MINIMAL}min_free_space = false`, '"min_free_space"', "boolean false");
});

Deno.test("legacy replication keys are accepted when they agree", () => {
  const text = `${MINIMAL}data_replication_factor = 3\nmeta_replication_factor = 3\n`;
  assert.equal(parseConfig(text, PATH).replicationFactor, 3);
  assert.equal(parseConfig(`${MINIMAL}meta_replication_factor = 2`, PATH).replicationFactor, 2);
  assert.equal(
    parseConfig(`${MINIMAL}replication_factor = 3\ndata_replication_factor = 3`, PATH)
      .replicationFactor,
    3,
  );
});

Deno.test("legacy replication keys that disagree are refused, naming both", () => {
  assertRefused(
    `${MINIMAL}data_replication_factor = 3\nmeta_replication_factor = 2\n`,
    '"data_replication_factor" (3)',
    '"meta_replication_factor" (2)',
    "must be equal",
  );
  assertRefused(
    `${MINIMAL}replication_factor = 1\nmeta_replication_factor = 3\n`,
    '"replication_factor" (1)',
    '"meta_replication_factor" (3)',
  );
  assertRefused(`${MINIMAL}replication_factor = 8`, "between 1 and 7", "(got 8)");
});

Deno.test("bad addresses are refused, naming the key", () => {
  for (const bad of ["localhost", "127.0.0.1:0", "127.0.0.1:65536", ":3900", "[::1]", "a b:1"]) {
    assertRefused(
      `${MINIMAL}api_bind_addr = "${bad}"`,
      'key "api_bind_addr" must be a string "host:port"',
    );
  }
  assertRefused(`${MINIMAL}rpc_bind_addr = "::1:3901"`, '"rpc_bind_addr"', "in brackets");
  assertRefused(
    `${MINIMAL}[admin]\napi_bind_addr = "x:99999"`,
    '"admin.api_bind_addr"',
    "port between 1 and 65535",
  );
});

Deno.test("parseAddr splits host and port", () => {
  assert.deepEqual(parseAddr("127.0.0.1:3900", "k", PATH), { hostname: "127.0.0.1", port: 3900 });
  assert.deepEqual(parseAddr("[::1]:3900", "k", PATH), { hostname: "::1", port: 3900 });
  assert.deepEqual(parseAddr("node-1.example.org:1", "k", PATH), {
    hostname: "node-1.example.org",
    port: 1,
  });
  assert.throws(() => parseAddr("x:0", "api_bind_addr", PATH), /remise\.toml: key "api_bind_addr"/);
});

Deno.test("certificates go together: all three or none", () => {
  assertRefused(
    `${MINIMAL}ca_cert = "ca.pem"`,
    'missing required keys "node_cert" and "node_key"',
    "all three or none",
  );
  assertRefused(
    `${MINIMAL}ca_cert = "ca.pem"\nnode_cert = "n.pem"`,
    'missing required key "node_key"',
  );
});

Deno.test("consul_host needs consul_service_name", () => {
  assertRefused(`${MINIMAL}consul_host = "c:8500"`, 'missing required key "consul_service_name"');
  assertRefused(`${MINIMAL}consul_service_name = "remise"`, '"consul_host"');
});

Deno.test("relative paths are resolved against the config file's directory", () => {
  const config = parseConfig(
    'metadata_dir = "./meta"\ndata_dir = "../data/blocks"\nadmin_token_file = "token"',
    "/srv/remise/conf/remise.toml",
  );
  assert.equal(config.metadataDir, "/srv/remise/conf/meta");
  assert.equal(config.dataDir, "/srv/remise/data/blocks");
  assert.equal(config.adminTokenFile, "/srv/remise/conf/token");
});

Deno.test("a TOML syntax error gives line and column", () => {
  assertRefused(`${MINIMAL}block_size = "1M\n`, "TOML syntax error at line 3, column");
});

Deno.test("loadConfig reads the file and the admin token file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, "  0123456789abcdef0123\n");
    await Deno.writeTextFile(`${dir}/remise.toml`, `${MINIMAL}admin_token_file = "token"\n`);
    const config = await loadConfig(`${dir}/remise.toml`);
    assert.equal(config.configPath, `${dir}/remise.toml`);
    assert.equal(config.adminToken, "0123456789abcdef0123");

    await Deno.writeTextFile(`${dir}/token`, "short\n");
    await assert.rejects(loadConfig(`${dir}/remise.toml`), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /remise\.toml: key "admin_token_file".* at least 16 characters/);
      return true;
    });
    await Deno.remove(`${dir}/token`);
    await assert.rejects(loadConfig(`${dir}/remise.toml`), /"admin_token_file".*cannot be read/);
    await assert.rejects(loadConfig(`${dir}/missing.toml`), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /Cannot read configuration file .*missing\.toml/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkDirectory creates the directories and refuses unusable ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/remise.toml`, 'metadata_dir = "a/meta"\ndata_dir = "b/data"');
    const config = await loadConfig(`${dir}/remise.toml`);
    await checkDirectory(config, "metadata_dir");
    await checkDirectory(config, "data_dir");
    assert.ok((await Deno.stat(`${dir}/a/meta`)).isDirectory);
    assert.ok((await Deno.stat(`${dir}/b/data`)).isDirectory);
    assert.deepEqual([...Deno.readDirSync(`${dir}/b/data`)], []);
    // Made private: the metadata holds the keys' secrets, the data dir every object.
    assert.equal((await Deno.stat(`${dir}/a/meta`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/b/data`)).mode! & 0o777, 0o700);

    await Deno.writeTextFile(`${dir}/file`, "not a directory");
    const underFile = { ...config, dataDir: `${dir}/file/data` };
    await assert.rejects(checkDirectory(underFile, "data_dir"), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`${dir}/remise.toml`), e.message);
      assert.ok(e.message.includes(`key "data_dir"`), e.message);
      assert.ok(e.message.includes(`${dir}/file/data`), e.message);
      return true;
    });
    const isFile = { ...config, metadataDir: `${dir}/file` };
    await assert.rejects(checkDirectory(isFile, "metadata_dir"), /key "metadata_dir".*file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The configuration file: one TOML document, checked key by key, so that a
 * mistake stops start-up with a message naming the file and the key.
 *
 * `parseConfig` is pure; `loadConfig` and `checkDirectory` are the adapters
 * that read the file and touch the disk.
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { formatByteSize, parseByteSize } from "./byte_size.ts";
import { ConfigError, errorMessage, fileErrorReason } from "./errors.ts";
import { isOutOfSpace } from "./free_space.ts";
import { DEFAULT_BLOCK_SIZE_BYTES } from "./limits.ts";

/** Quorums: consistent (read and write), degraded (read from one), dangerous (write to one). */
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];

/** A validated configuration; paths are absolute when the file's path was. */
export interface Config {
  configPath: string; // Absolute path of the file read.
  metadataDir: string; // metadata_dir: where the Deno KV metadata lives (an SSD).
  dataDir: string; // data_dir: where blocks live (an HDD).
  blockSize: number; // block_size, in bytes.
  minFreeSpace: number; // min_free_space, in bytes: uploads stop while less is free on a disk.
  replicationFactor: number; // replication_factor (or the legacy data_/meta_replication_factor).
  consistencyMode: ConsistencyMode; // consistency_mode.
  rpcBindAddr: string; // rpc_bind_addr: "host:port" for intra-cluster RPC.
  rpcPublicAddr?: string; // rpc_public_addr: "host:port" other nodes use to reach this one.
  bootstrapPeers: string[]; // bootstrap_peers: "host:port" or "<node id>@host:port".
  consulHost?: string; // consul_host: Consul address for peer discovery.
  consulServiceName?: string; // consul_service_name: required with consul_host.
  maxConcurrentRpcRequests: number; // max_concurrent_rpc_requests.
  metaEpidemicFanout: number; // meta_epidemic_fanout: peers each gossip round reaches.
  caCert?: string; // ca_cert: the cluster CA certificate (PEM path).
  nodeCert?: string; // node_cert: this node's certificate; with ca_cert and node_key, or none.
  nodeKey?: string; // node_key: this node's private key.
  apiBindAddr: string; // api_bind_addr (or [s3_api] api_bind_addr).
  apiTlsCert?: string; // api_tls_cert: the S3 API's certificate (PEM path); with api_tls_key.
  apiTlsKey?: string; // api_tls_key: its private key; the S3 API serves HTTPS with both.
  s3Region: string; // s3_region (or [s3_api] s3_region).
  rootDomain?: string; // root_domain (or [s3_api] root_domain), lowercase, no leading dot.
  webBindAddr?: string; // web_bind_addr (or [s3_web] bind_addr).
  webRootDomain?: string; // web_root_domain (or [s3_web] root_domain), normalised likewise.
  adminBindAddr: string; // admin_bind_addr (or [admin] api_bind_addr).
  adminToken?: string; // admin_token (or [admin] admin_token), or admin_token_file's content.
  adminTokenFile?: string; // admin_token_file (or [admin] admin_token_file).
  metricsToken?: string; // metrics_token (or [admin] metrics_token): opens GET /metrics only.
}

/** The consistency modes, in order of decreasing safety. */
export const CONSISTENCY_MODES = ["consistent", "degraded", "dangerous"] as const;
/** Default consistency mode: quorums, the only mode that never loses an acknowledged write. */
export const DEFAULT_CONSISTENCY_MODE: ConsistencyMode = "consistent";
/** Smallest block_size: below it the per-block cost (a file, a hash, a block ref row) dominates. */
export const BLOCK_SIZE_MIN_BYTES = 64 * 1024;
/** Largest block_size: a block is hashed and pushed to replicas as a unit; it must stay small. */
export const BLOCK_SIZE_MAX_BYTES = 64 * 1024 * 1024;
/**
 * Default min_free_space: room for deletes (metadata) and the system's own
 * writes, small enough not to stop a node on a nearly full test machine.
 */
export const DEFAULT_MIN_FREE_SPACE_BYTES = 128 * 1024 * 1024;
/** Default replication factor: a single node is a cluster of one. */
export const DEFAULT_REPLICATION_FACTOR = 1;
/** Largest replication factor: a handful of sites needs no more copies, and each costs a write. */
export const REPLICATION_FACTOR_MAX = 7;
/** Default RPC address: loopback, so a fresh node exposes nothing until told to. */
export const DEFAULT_RPC_BIND_ADDR = "127.0.0.1:3901";
/** Default S3 API address: loopback, the port Garage users know. */
export const DEFAULT_API_BIND_ADDR = "127.0.0.1:3900";
/** Default admin API address: loopback, the port Garage users know. */
export const DEFAULT_ADMIN_BIND_ADDR = "127.0.0.1:3903";
/** Default S3 region: the one AWS SDKs and most clients assume when none is configured. */
export const DEFAULT_S3_REGION = "us-east-1";
/**
 * Requests from peers served at once (beyond: refused as overloaded, and
 * retried shortly by the caller, see ClusterReplication): a quorum write, a
 * block transfer and anti-entropy share it; membership's pings are not
 * counted.
 */
export const DEFAULT_MAX_CONCURRENT_RPC_REQUESTS = 128;
/** Default gossip fanout: reaches every node of a small cluster in a couple of rounds. */
export const DEFAULT_META_EPIDEMIC_FANOUT = 3;
/** Shortest admin token accepted: anything shorter can be guessed. */
export const ADMIN_TOKEN_MIN_CHARS = 16;

/** Every key accepted at the top level. */
// deno-fmt-ignore
const TOP_LEVEL_KEYS = [
  "metadata_dir", "data_dir", "block_size", "min_free_space", "replication_factor",
  "data_replication_factor", "meta_replication_factor", "consistency_mode", "rpc_bind_addr",
  "rpc_public_addr", "bootstrap_peers", "consul_host", "consul_service_name",
  "max_concurrent_rpc_requests", "meta_epidemic_fanout", "ca_cert", "node_cert", "node_key",
  "api_bind_addr", "api_tls_cert", "api_tls_key", "s3_region", "root_domain", "web_bind_addr",
  "web_root_domain", "admin_bind_addr", "admin_token", "admin_token_file", "metrics_token",
];

/** The sectioned forms of the original design: section -> key inside it -> top-level key. */
const SECTIONS: Record<string, Record<string, string>> = {
  s3_api: { api_bind_addr: "api_bind_addr", s3_region: "s3_region", root_domain: "root_domain" },
  s3_web: { bind_addr: "web_bind_addr", root_domain: "web_root_domain" },
  admin: {
    api_bind_addr: "admin_bind_addr",
    admin_token: "admin_token",
    admin_token_file: "admin_token_file",
    metrics_token: "metrics_token",
  },
};

/** replication_factor, and the keys that once set it separately for data and metadata. */
const REPLICATION_KEYS = [
  "replication_factor",
  "data_replication_factor",
  "meta_replication_factor",
];
/** The certificate keys, which go together. */
const CERTIFICATE_KEYS = ["ca_cert", "node_cert", "node_key"] as const;

const ADDR_EXPECTED = 'a string "host:port"';
const DOMAIN_PATTERN = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;

/** A value found in the file, with the name it had there (e.g. "admin.api_bind_addr"). */
interface Entry {
  name: string;
  value: unknown;
}

/** The file's values by top-level key, and the way to report what is wrong with them. */
class Settings {
  readonly #entries = new Map<string, Entry>();
  /** What is wrong, key by key: every problem is told at once, not one per start. */
  readonly #problems: string[] = [];
  constructor(readonly file: string) {}

  fail(message: string): never {
    throw new ConfigError(`${this.#prefix}: ${message}`);
  }
  /** Runs one key's checks; a problem is noted (the key's value is then undefined) and the rest go on. */
  check<T>(checkKey: () => T): T | undefined {
    try {
      return checkKey();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.#problems.push(e.message.replace(`${this.#prefix}: `, ""));
      return undefined;
    }
  }
  /** Throws a ConfigError telling every problem noted, if any. */
  throwProblems(): void {
    const problems = this.#problems;
    if (problems.length === 1) this.fail(problems[0]);
    if (problems.length > 1) {
      throw new ConfigError(
        `${this.#prefix}: ${problems.length} problems:\n${
          problems.map((p) => `  - ${p}`).join("\n")
        }`,
      );
    }
  }
  get #prefix(): string {
    return `Invalid configuration in ${this.file}`;
  }
  /** The value has the right type but not an acceptable value. */
  invalid(entry: Entry, expected: string, got = show(entry.value)): never {
    this.fail(`key "${entry.name}" must be ${expected} (got ${got})`);
  }
  /** The value has the wrong TOML type. */
  wrongType(entry: Entry, expected: string): never {
    const type = typeName(entry.value);
    const got = type === "array"
      ? "an array"
      : type === "table"
      ? "a table"
      : `${type} ${show(entry.value)}`;
    this.invalid(entry, expected, got);
  }
  add(key: string, name: string, value: unknown): void {
    const existing = this.#entries.get(key);
    if (existing) this.fail(`key "${name}" repeats "${existing.name}": give it only once`);
    this.#entries.set(key, { name, value });
  }
  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }
  string(key: string, expected = "a non-empty string"): string | undefined {
    const entry = this.get(key);
    if (!entry) return undefined;
    if (typeof entry.value !== "string") this.wrongType(entry, expected);
    if (entry.value.trim() === "") this.invalid(entry, expected);
    return entry.value;
  }
  integer(entry: Entry, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const expected = max === Number.MAX_SAFE_INTEGER && min === 1
      ? "a positive integer"
      : `an integer between ${min} and ${max}`;
    if (typeof entry.value !== "number" || !Number.isInteger(entry.value)) {
      this.wrongType(entry, expected);
    }
    const n = entry.value;
    if (n < min || n > max) this.invalid(entry, expected);
    return n;
  }
  /** A positive integer. */
  count(key: string): number | undefined {
    const entry = this.get(key);
    return entry && this.integer(entry, 1);
  }
  filePath(key: string, baseDir: string): string | undefined {
    const value = this.string(key, "a non-empty string (a path)");
    return value === undefined ? undefined : isAbsolute(value) ? value : join(baseDir, value);
  }
  addr(key: string): string | undefined {
    const value = this.string(key, ADDR_EXPECTED);
    if (value !== undefined) parseAddr(value, this.get(key)!.name, this.file);
    return value;
  }
  domain(key: string): string | undefined {
    const value = this.string(key, 'a domain name like "s3.example.org"');
    if (value === undefined) return undefined;
    const domain = value.trim().toLowerCase().replace(/^\./, "");
    if (!DOMAIN_PATTERN.test(domain)) {
      this.invalid(this.get(key)!, 'a domain name like "s3.example.org"');
    }
    return domain;
  }
}

/**
 * Parses and validates a configuration file's text. Pure: `path` is used only
 * in messages and to resolve relative paths (against its directory), so it
 * should be absolute. Throws a ConfigError naming the file and the key.
 */
export function parseConfig(text: string, path: string): Config {
  const s = new Settings(path);
  collect(s, parseToml(text, path));
  const baseDir = dirname(path);
  const required = (key: string) =>
    s.check(() => s.filePath(key, baseDir) ?? s.fail(`missing required key "${key}"`));
  // Keys that go together are checked by their presence, so that a value refused on
  // its own is not also told missing.
  const given = (key: string) => s.get(key) !== undefined;

  const consulHost = s.check(() => s.string("consul_host"));
  const consulServiceName = s.check(() => s.string("consul_service_name"));
  s.check(() => {
    if (given("consul_host") && !given("consul_service_name")) {
      s.fail(`missing required key "consul_service_name": it is needed when "consul_host" is set`);
    }
    if (given("consul_service_name") && !given("consul_host")) {
      s.fail(`key "consul_service_name" is set but "consul_host" is not: set both or neither`);
    }
  });

  const certificates = CERTIFICATE_KEYS.map((key) => s.check(() => s.filePath(key, baseDir)));
  s.check(() => {
    const missing = CERTIFICATE_KEYS.filter((key) => !given(key));
    if (missing.length > 0 && missing.length < CERTIFICATE_KEYS.length) {
      const names = missing.map((key) => `"${key}"`).join(" and ");
      s.fail(
        `missing required key${missing.length > 1 ? "s" : ""} ${names}: ` +
          `"ca_cert", "node_cert" and "node_key" go together, give all three or none`,
      );
    }
  });

  const apiTlsCert = s.check(() => s.filePath("api_tls_cert", baseDir));
  const apiTlsKey = s.check(() => s.filePath("api_tls_key", baseDir));
  s.check(() => {
    if (given("api_tls_cert") !== given("api_tls_key")) {
      s.fail(
        `missing required key "${given("api_tls_cert") ? "api_tls_key" : "api_tls_cert"}": ` +
          `"api_tls_cert" and "api_tls_key" go together, give both or none`,
      );
    }
  });

  const adminToken = s.check(() => token(s, "admin_token"));
  const adminTokenFile = s.check(() => s.filePath("admin_token_file", baseDir));
  s.check(() => {
    if (given("admin_token") && given("admin_token_file")) {
      s.fail(
        `keys "${s.get("admin_token")!.name}" and "${s.get("admin_token_file")!.name}" ` +
          `are both set: keep one`,
      );
    }
  });
  const metricsToken = s.check(() => token(s, "metrics_token"));

  const config: Config = {
    configPath: path,
    metadataDir: required("metadata_dir")!,
    dataDir: required("data_dir")!,
    blockSize: s.check(() => blockSize(s))!,
    minFreeSpace: s.check(() => minFreeSpace(s))!,
    replicationFactor: s.check(() => replicationFactor(s))!,
    consistencyMode: s.check(() => consistencyMode(s))!,
    rpcBindAddr: s.check(() => s.addr("rpc_bind_addr") ?? DEFAULT_RPC_BIND_ADDR)!,
    rpcPublicAddr: s.check(() => s.addr("rpc_public_addr")),
    bootstrapPeers: s.check(() => bootstrapPeers(s))!,
    consulHost,
    consulServiceName,
    maxConcurrentRpcRequests: s.check(() =>
      s.count("max_concurrent_rpc_requests") ?? DEFAULT_MAX_CONCURRENT_RPC_REQUESTS
    )!,
    metaEpidemicFanout: s.check(() =>
      s.count("meta_epidemic_fanout") ?? DEFAULT_META_EPIDEMIC_FANOUT
    )!,
    caCert: certificates[0],
    nodeCert: certificates[1],
    nodeKey: certificates[2],
    apiBindAddr: s.check(() => s.addr("api_bind_addr") ?? DEFAULT_API_BIND_ADDR)!,
    apiTlsCert,
    apiTlsKey,
    s3Region: s.check(() => s.string("s3_region") ?? DEFAULT_S3_REGION)!,
    rootDomain: s.check(() => s.domain("root_domain")),
    webBindAddr: s.check(() => s.addr("web_bind_addr")),
    webRootDomain: s.check(() => s.domain("web_root_domain")),
    adminBindAddr: s.check(() => s.addr("admin_bind_addr") ?? DEFAULT_ADMIN_BIND_ADDR)!,
    adminToken,
    adminTokenFile,
    metricsToken,
  };
  s.throwProblems();
  for (const key of Object.keys(config) as (keyof Config)[]) {
    if (config[key] === undefined) delete config[key];
  }
  return config;
}

/** admin_token or metrics_token: a string long enough not to be guessed. */
function token(s: Settings, key: string): string | undefined {
  const value = s.string(key);
  if (value !== undefined && value.length < ADMIN_TOKEN_MIN_CHARS) {
    s.invalid(
      s.get(key)!,
      `at least ${ADMIN_TOKEN_MIN_CHARS} characters long`,
      characterCount(value),
    );
  }
  return value;
}

/**
 * Reads and validates the configuration file at `path` (made absolute), and
 * reads `admin_token_file` if set.
 */
export async function loadConfig(path: string): Promise<Config> {
  const configPath = resolve(path);
  const text = await Deno.readTextFile(configPath).catch((e) => {
    throw new ConfigError(`Cannot read configuration file ${configPath}: ${fileErrorReason(e)}`, {
      cause: e,
    });
  });
  const config = parseConfig(text, configPath);
  const file = config.adminTokenFile;
  if (file === undefined) return config;
  const prefix =
    `Invalid configuration in ${configPath}: key "admin_token_file": token file "${file}"`;
  const token = (await Deno.readTextFile(file).catch((e) => {
    throw new ConfigError(`${prefix} cannot be read: ${errorMessage(e)}`, { cause: e });
  })).trim();
  if (token.length < ADMIN_TOKEN_MIN_CHARS) {
    throw new ConfigError(
      `${prefix} must hold at least ${ADMIN_TOKEN_MIN_CHARS} characters (holds ${token.length})`,
    );
  }
  return { ...config, adminToken: token };
}

/**
 * Creates metadata_dir or data_dir if missing and checks that it is a
 * writable directory, by writing and removing a probe file.
 */
export async function checkDirectory(
  config: Config,
  key: "metadata_dir" | "data_dir",
): Promise<void> {
  const dir = key === "metadata_dir" ? config.metadataDir : config.dataDir;
  try {
    // Made by remise: readable by its user only (it holds the keys' secrets and the data).
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await Deno.stat(dir)).isDirectory) throw new Error("it is not a directory");
    const probe = join(dir, `.remise-write-probe-${crypto.randomUUID()}`);
    try {
      await Deno.writeTextFile(probe, "remise");
    } catch (e) {
      await Deno.remove(probe).catch(() => {});
      // A full disk takes no probe (its file may have been made, empty), yet the node can serve.
      if (isOutOfSpace(e)) return;
      throw e;
    }
    await Deno.remove(probe);
  } catch (e) {
    throw new ConfigError(
      `Invalid configuration in ${config.configPath}: key "${key}": ` +
        `directory "${dir}" cannot be used: ${errorMessage(e)}`,
      { cause: e },
    );
  }
}

/** A parsed "host:port"; an IPv6 hostname is without brackets. */
export interface Addr {
  hostname: string;
  port: number;
}

/**
 * Parses "host:port" or "[ipv6]:port" (port 1..65535); throws a ConfigError
 * naming `key` and the file `path` otherwise.
 */
export function parseAddr(value: string, key: string, path: string): Addr {
  const fail = (hint: string): never => {
    throw new ConfigError(
      `Invalid configuration in ${path}: key "${key}" must be ${ADDR_EXPECTED}${hint} ` +
        `(got ${JSON.stringify(value)})`,
    );
  };
  const match = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d{1,5})$/.exec(value) ??
    /^([A-Za-z0-9._-]+):(\d{1,5})$/.exec(value);
  if (!match) {
    fail(/^[^[]*:.*:/.test(value) ? ' with an IPv6 address in brackets, like "[::1]:3900"' : "");
  }
  const port = Number(match![2]);
  if (port < 1 || port > 65535) fail(" with a port between 1 and 65535");
  return { hostname: match![1], port };
}

function parseToml(text: string, path: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    throw new ConfigError(
      `Invalid configuration in ${path}: TOML syntax error at line ${e.line}, ` +
        `column ${e.column}: ${reason}\n\n${e.codeblock.trimEnd()}`,
      { cause: e },
    );
  }
}

/** Files the document's values under their top-level keys, refusing unknown keys. */
function collect(s: Settings, doc: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(doc)) {
    if (Object.hasOwn(SECTIONS, name)) {
      if (typeName(value) !== "table") {
        s.check(() => s.wrongType({ name, value }, `a table [${name}]`));
        continue;
      }
      const keys = SECTIONS[name];
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
        const full = `${name}.${inner}`;
        s.check(() => {
          if (!Object.hasOwn(keys, inner)) {
            const misplaced = TOP_LEVEL_KEYS.includes(inner)
              ? `; "${inner}" belongs at the top level, before any [section]`
              : "";
            unknownKey(s, full, inner, Object.keys(keys).map((k) => `${name}.${k}`), misplaced);
          }
          s.add(keys[inner], full, innerValue);
        });
      }
    } else if (TOP_LEVEL_KEYS.includes(name)) {
      s.check(() => s.add(name, name, value));
    } else {
      s.check(() => unknownKey(s, name, name, [...TOP_LEVEL_KEYS, ...Object.keys(SECTIONS)], ""));
    }
  }
}

function unknownKey(s: Settings, full: string, name: string, known: string[], hint: string): never {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(name, candidate.slice(candidate.indexOf(".") + 1));
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  s.fail(`unknown key "${full}"${best ? `; did you mean "${best}"?` : ""}${hint}`);
}

/** Levenshtein distance between two strings. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, substitution);
    }
    row = next;
  }
  return row[b.length];
}

function blockSize(s: Settings): number {
  const entry = s.get("block_size");
  if (!entry) return DEFAULT_BLOCK_SIZE_BYTES;
  const expected = 'a positive integer or a size like "1M"';
  const bytes = byteSize(s, entry, expected);
  if (bytes === 0) s.invalid(entry, expected);
  if (bytes < BLOCK_SIZE_MIN_BYTES || bytes > BLOCK_SIZE_MAX_BYTES) {
    const min = formatByteSize(BLOCK_SIZE_MIN_BYTES);
    const range = `between ${min} and ${formatByteSize(BLOCK_SIZE_MAX_BYTES)}`;
    s.invalid(entry, range, `${show(entry.value)}, that is ${formatByteSize(bytes)}`);
  }
  return bytes;
}

function minFreeSpace(s: Settings): number {
  const entry = s.get("min_free_space");
  if (!entry) return DEFAULT_MIN_FREE_SPACE_BYTES;
  return byteSize(s, entry, 'a size like "1G", or 0');
}

/** A setting given as a number of bytes or a size string; never negative. */
function byteSize(s: Settings, entry: Entry, expected: string): number {
  let bytes: number | undefined;
  if (typeof entry.value === "number" && Number.isInteger(entry.value)) {
    bytes = entry.value;
  } else if (typeof entry.value === "string") {
    bytes = parseByteSize(entry.value);
  } else {
    s.wrongType(entry, expected);
  }
  if (bytes === undefined || bytes < 0) s.invalid(entry, expected);
  return bytes;
}

/** "1 character", "12 characters". */
function characterCount(text: string): string {
  return `${text.length} character${text.length === 1 ? "" : "s"}`;
}

function replicationFactor(s: Settings): number {
  const given = REPLICATION_KEYS.flatMap((key) => {
    const entry = s.get(key);
    return entry ? [{ name: entry.name, n: s.integer(entry, 1, REPLICATION_FACTOR_MAX) }] : [];
  });
  for (const other of given.slice(1)) {
    if (other.n !== given[0].n) {
      s.fail(
        `keys "${given[0].name}" (${given[0].n}) and "${other.name}" (${other.n}) must be equal: ` +
          `data and metadata have the same number of replicas; set only "replication_factor"`,
      );
    }
  }
  return given[0]?.n ?? DEFAULT_REPLICATION_FACTOR;
}

function consistencyMode(s: Settings): ConsistencyMode {
  const expected = `one of ${CONSISTENCY_MODES.map((m) => `"${m}"`).join(", ")}`;
  const value = s.string("consistency_mode", expected);
  if (value === undefined) return DEFAULT_CONSISTENCY_MODE;
  if (!(CONSISTENCY_MODES as readonly string[]).includes(value)) {
    s.invalid(s.get("consistency_mode")!, expected);
  }
  return value as ConsistencyMode;
}

function bootstrapPeers(s: Settings): string[] {
  const entry = s.get("bootstrap_peers");
  if (!entry) return [];
  const expected = 'an array of strings "host:port" or "<node id>@host:port"';
  if (!Array.isArray(entry.value)) s.wrongType(entry, expected);
  return entry.value.map((peer: unknown, i: number) => {
    const element = { name: `${entry.name}[${i}]`, value: peer };
    if (typeof peer !== "string") {
      s.wrongType(element, expected.replace("an array of strings", "a string"));
    }
    try {
      parseAddr(peer.slice(peer.indexOf("@") + 1), element.name, s.file);
    } catch {
      s.invalid(element, 'a string "host:port" or "<node id>@host:port"');
    }
    return peer;
  });
}

/** The TOML type of a parsed value. */
function typeName(value: unknown): string {
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "datetime";
  return typeof value === "object" && value !== null ? "table" : typeof value;
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

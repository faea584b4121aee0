/**
 * The `remise` command line: `server` starts a node; `key`, `bucket` and
 * `status` talk to a running node through its admin API; `cert` and `node id`
 * work on files alone.
 *
 * Every failure becomes one line on stderr, `remise: <what went wrong>`, and
 * exit code 1; commander's usage errors keep its wording and exit code.
 *
 * @module
 */
import { addClusterCommands } from "./cluster_commands.ts";
import { addMaintenanceCommands } from "./maintenance_commands.ts";
import { Command, CommanderError, Option } from "commander";
import type { BucketInfoJson, RightsJson } from "../api/admin/admin_api.ts";
import {
  createClusterCa,
  issueNodeCertificate,
  nodeIdFromCertificate,
  readCaFiles,
  writeCaFiles,
  writeNodeFiles,
} from "../net/certs.ts";
import { type Config, loadConfig } from "../util/config.ts";
import { ConfigError, DirectoriesNotReadyError, errorMessage } from "../util/errors.ts";
import { versionString } from "../util/version.ts";
import { AdminClient } from "./admin_client.ts";
import { formatBytes, formatFields, formatTable, formatTime, yesNo } from "./format.ts";

/** The configuration file used when neither -c nor REMISE_CONFIG names one (README, systemd unit). */
export const DEFAULT_CONFIG_PATH = "/etc/remise/remise.toml";
/** The default before 2026-11, still read when only it exists. */
const EARLIER_DEFAULT_CONFIG_PATH = "/etc/remise.toml";
/** Environment variable naming the configuration file. */
export const CONFIG_ENV = "REMISE_CONFIG";
/** Characters of a bucket id shown in tables (ids are 64 hex characters). */
const SHORT_ID_CHARS = 16;

/** The default configuration file, or the earlier default where only that one exists. */
export function defaultConfigPath(): string {
  for (const path of [DEFAULT_CONFIG_PATH, EARLIER_DEFAULT_CONFIG_PATH]) {
    try {
      Deno.statSync(path);
      return path;
    } catch (e) {
      // A file we may not read is still the one meant: its error says so.
      if (!(e instanceof Deno.errors.NotFound)) return path;
    }
  }
  return DEFAULT_CONFIG_PATH;
}

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let data = encoder.encode(text);
  while (data.byteLength > 0) data = data.subarray(file.writeSync(data));
}

/** Standard output and standard error of the process. */
export const processIo: CliIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
};

/** A failure worded for the user; printed as `remise: <message>`. */
class CliError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
  }
}

/**
 * The exit code of a configuration that cannot be used (sysexits' EX_CONFIG):
 * starting again will not help until the file changes, so the systemd unit
 * does not restart on it (RestartPreventExitStatus). Other failures exit 1.
 */
export const EXIT_CONFIG = 78;

/** Runs the command line `args` (without the program name); returns the exit code. */
export async function runCli(args: string[], io: CliIo = processIo): Promise<number> {
  try {
    await buildProgram(io).parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander printed it already
    // The reader left (`remise ... | head`): it has what it wanted.
    if (e instanceof Deno.errors.BrokenPipe) return 0;
    io.stderr(`remise: ${errorMessage(e)}\n`);
    return e instanceof ConfigError && !(e instanceof DirectoriesNotReadyError) ? EXIT_CONFIG : 1;
  }
}

function buildProgram(io: CliIo): Command {
  const print = (text: string) => io.stdout(text.endsWith("\n") ? text : text + "\n");
  const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

  const program = new Command("remise")
    .description("remise: an S3-compatible object store for small geo-distributed clusters")
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (text, write) => write(text.replace(/^error: /, "remise: ")),
    })
    .showHelpAfterError("(add --help for usage)")
    .option(
      "-c, --config <file>",
      `configuration file (default: $${CONFIG_ENV}, else ${DEFAULT_CONFIG_PATH})`,
    )
    .option("-V, --version", "print the version and exit");
  program.on("option:version", () => {
    io.stdout(versionString() + "\n");
    throw new CommanderError(0, "commander.version", versionString());
  });

  /** Adds `-c FILE` to a sub-command, so that it may also come after the sub-command. */
  const withConfig = (cmd: Command) =>
    cmd.option("-c, --config <file>", "configuration file (as the global option)");

  /** The configuration: the command's -c, else the global -c, else $REMISE_CONFIG, else the default. */
  const config = async (cmd: Command): Promise<Config> => {
    const given = (cmd.opts().config ?? program.opts().config) as string | undefined;
    const fromEnv = Deno.env.get(CONFIG_ENV) || undefined;
    const path = given ?? fromEnv ?? defaultConfigPath();
    try {
      return await loadConfig(path);
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      if (e instanceof ConfigError && cause instanceof Deno.errors.NotFound && !given && !fromEnv) {
        throw new ConfigError(`${e.message} (name the file with -c FILE or ${CONFIG_ENV})`, {
          cause: e,
        });
      }
      throw e;
    }
  };
  const client = async (cmd: Command) => await AdminClient.fromConfig(await config(cmd));

  // --- server ---
  program
    .command("server")
    .description("run a remise node")
    .option("-c, --config <file>", "configuration file (as the global option)")
    .option("--dev", "development mode: print ready-to-use credentials")
    .option("--check-config", "validate the configuration and exit")
    .action(async (opts: { config?: string; dev?: boolean; checkConfig?: boolean }) => {
      const path = opts.config ?? program.opts().config ??
        (Deno.env.get(CONFIG_ENV) || undefined) ??
        defaultConfigPath();
      // Loaded on demand: the other commands do not need the server's modules.
      const { runServer } = await import("./server.ts");
      await runServer(path, { dev: opts.dev, checkConfig: opts.checkConfig });
    });

  // --- key ---
  const key = program.command("key").description("manage access keys");
  withConfig(key.command("create").description("create an access key"))
    .argument("<name>", "a name for the key")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const created = await (await client(cmd)).createKey(name);
      if (opts.json) return printJson(created);
      print(`Created access key "${created.name}".`);
      print(formatFields([
        ["Access key id", created.accessKeyId],
        ["Secret access key", created.secretAccessKey],
      ]));
    });
  withConfig(key.command("list").description("list access keys"))
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const keys = await (await client(cmd)).listKeys();
      if (opts.json) return printJson(keys);
      if (keys.length === 0) {
        return print("No access keys. Create one with: remise key create NAME");
      }
      print(formatTable(
        ["ACCESS KEY ID", "NAME", "CREATED"],
        keys.map((k) => [k.accessKeyId, k.name, formatTime(k.createdAt)]),
      ));
    });
  withConfig(key.command("info").description("show an access key and its buckets"))
    .argument("<key>", "access key id, unambiguous id prefix, or name")
    .option("--json", "print JSON")
    .option("--show-secret", "include the secret access key")
    .action(
      async (pattern: string, opts: { json?: boolean; showSecret?: boolean }, cmd: Command) => {
        const info = await (await client(cmd)).keyInfo(pattern);
        if (opts.json) {
          const { secretAccessKey, ...rest } = info;
          return printJson(opts.showSecret ? { ...rest, secretAccessKey } : rest);
        }
        print(formatFields([
          ["Access key id", info.accessKeyId],
          ["Name", info.name],
          ["Created", formatTime(info.createdAt)],
          ["Can create buckets", info.allowCreateBucket ? "yes" : "no"],
          [
            "Secret access key",
            opts.showSecret ? info.secretAccessKey : "(hidden; --show-secret shows it)",
          ],
        ]));
        if (info.buckets.length === 0) return print("\nBuckets: none");
        print("\nBuckets:");
        print(formatTable(
          ["NAME", "ID", "READ", "WRITE", "OWNER"],
          info.buckets.map((b) => [b.name, b.id.slice(0, SHORT_ID_CHARS), ...rightsCells(b)]),
        ));
      },
    );
  for (const change of ["allow", "deny"] as const) {
    withConfig(
      key.command(change).description(
        change === "allow"
          ? "let a key create buckets (it owns those it creates)"
          : "stop a key from creating buckets",
      ),
    )
      .argument("<key>", "access key id, unambiguous id prefix, or name")
      .requiredOption("--create-bucket", "the right to create buckets (the only one a key has)")
      .action(async (pattern: string, _opts: unknown, cmd: Command) => {
        const admin = await client(cmd);
        const info = await admin.keyInfo(pattern);
        const changed = await admin.changeKeyRights(change, info.accessKeyId);
        print(
          `Access key ${changed.accessKeyId} ("${changed.name}") ` +
            `${changed.allowCreateBucket ? "may" : "may not"} create buckets.`,
        );
      });
  }
  withConfig(key.command("delete").description("delete an access key and its rights"))
    .argument("<key>", "access key id, unambiguous id prefix, or name")
    .addOption(new Option("-y, --yes", "accepted for scripts; deleting does not ask").hideHelp())
    .action(async (pattern: string, _opts: unknown, cmd: Command) => {
      const admin = await client(cmd);
      const info = await admin.keyInfo(pattern);
      await admin.deleteKey(info.accessKeyId);
      print(`Deleted access key ${info.accessKeyId} ("${info.name}").`);
    });

  // --- bucket ---
  const bucket = program.command("bucket").description("manage buckets and rights on them");
  withConfig(bucket.command("create").description("create a bucket"))
    .argument("<name>", "bucket name")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const created = await (await client(cmd)).createBucket(name);
      print(`Created bucket "${created.name}" (id ${created.id}).`);
    });
  withConfig(bucket.command("list").description("list buckets"))
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const buckets = await (await client(cmd)).listBuckets();
      if (opts.json) return printJson(buckets);
      if (buckets.length === 0) {
        return print("No buckets. Create one with: remise bucket create NAME");
      }
      print(formatTable(
        ["NAME", "ID", "CREATED"],
        buckets.map((b) => [b.name, b.id.slice(0, SHORT_ID_CHARS), formatTime(b.createdAt)]),
      ));
    });
  withConfig(bucket.command("info").description("show a bucket, its size and its keys"))
    .argument("<name>", "bucket name")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const info = await (await client(cmd)).bucketInfo(name);
      if (opts.json) return printJson(info);
      print(formatFields([
        ["Name", info.name],
        ["Id", info.id],
        ["Created", formatTime(info.createdAt)],
        ["Objects", String(info.objects)],
        ["Size", formatBytes(info.bytes)],
        ["Website", websiteText(info)],
        ["Public read", info.publicRead ? "yes (bucket policy)" : "no"],
        ["Public access block", publicAccessBlockText(info)],
        ["CORS rules", String(info.corsRules)],
        ["Lifecycle rules", String(info.lifecycleRules)],
        ["Versioning", info.versioning ?? "never enabled"],
        ["Default encryption", defaultEncryptionText(info)],
        ["Object lock", objectLockText(info)],
        [
          "Older versions",
          `${info.noncurrentVersions} (${formatBytes(info.noncurrentBytes)})`,
        ],
      ]));
      if (info.keys.length === 0) return print("\nKeys: none");
      print("\nKeys:");
      print(formatTable(
        ["ACCESS KEY ID", "NAME", "READ", "WRITE", "OWNER"],
        info.keys.map((k) => [k.accessKeyId, k.name, ...rightsCells(k)]),
      ));
    });
  withConfig(bucket.command("delete").description("delete an empty bucket"))
    .argument("<name>", "bucket name")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await (await client(cmd)).deleteBucket(name);
      print(`Deleted bucket "${name}".`);
    });
  for (const change of ["allow", "deny"] as const) {
    withConfig(
      bucket.command(change).description(
        change === "allow" ? "give a key rights on a bucket" : "take rights on a bucket from a key",
      ),
    )
      .argument("<bucket>", "bucket name")
      .requiredOption("--key <key>", "access key id, unambiguous id prefix, or name")
      .option("--read", "the right to read objects")
      .option("--write", "the right to write and delete objects")
      .option("--owner", "the right to change the bucket's settings")
      .action(async (name: string, opts: { key: string } & Partial<RightsJson>, cmd: Command) => {
        const rights = { read: !!opts.read, write: !!opts.write, owner: !!opts.owner };
        if (!rights.read && !rights.write && !rights.owner) {
          throw new CliError(`give at least one of --read, --write, --owner to ${change}`);
        }
        const admin = await client(cmd);
        const keyInfo = await admin.keyInfo(opts.key);
        const info = await admin.changeRights(change, name, keyInfo.accessKeyId, rights);
        print(
          `Rights of key ${keyInfo.accessKeyId} ("${keyInfo.name}") on bucket "${info.name}": ` +
            `${rightsText(info, keyInfo.accessKeyId)}.`,
        );
      });
  }

  withConfig(
    bucket.command("website").description(
      "serve a bucket as a static website on web_bind_addr, or stop serving it",
    ),
  )
    .argument("<bucket>", "bucket name")
    .option("--allow", "serve the bucket: its objects become readable by anyone")
    .option("--deny", "stop serving the bucket")
    .option("--index-document <name>", "served for paths ending in /", "index.html")
    .option("--error-document <key>", "served, with status 404, for missing pages")
    .action(async (
      name: string,
      opts: { allow?: boolean; deny?: boolean; indexDocument: string; errorDocument?: string },
      cmd: Command,
    ) => {
      if (!opts.allow === !opts.deny) throw new CliError("give one of --allow and --deny");
      const website = opts.allow
        ? { indexDocument: opts.indexDocument, errorDocument: opts.errorDocument }
        : null;
      const info = await (await client(cmd)).setWebsite(name, website);
      print(`Bucket "${info.name}": website ${websiteText(info)}.`);
    });

  addClusterCommands(program, { client, withConfig, print, printJson });
  addMaintenanceCommands(program, { client, withConfig, print, printJson });

  // --- cert ---
  const cert = program.command("cert").description(
    "make the certificates of the cluster (no server needed)",
  );
  cert
    .command("ca")
    .description("create the cluster CA: DIR/ca.crt and DIR/ca.key")
    .requiredOption("--out <dir>", "directory to write to (created if missing)")
    .action(async (opts: { out: string }) => {
      const ca = await createClusterCa();
      await writeCaFiles(opts.out, ca).catch((e) => {
        throw new CliError(`cannot write the cluster CA to ${opts.out}: ${errorMessage(e)}`, {
          cause: e,
        });
      });
      print(`Wrote ${opts.out}/ca.crt and ${opts.out}/ca.key.`);
      print("Keep ca.key secret and off the servers: whoever has it can add nodes to the cluster.");
    });
  cert
    .command("node")
    .description("issue a node certificate: DIR/node.crt and DIR/node.key")
    .requiredOption("--ca <dir>", "directory holding ca.crt and ca.key")
    .requiredOption("--name <name>", "the node's name (a DNS name)")
    .option("--host <host...>", "more DNS names or IP addresses peers may dial", [])
    .requiredOption("--out <dir>", "directory to write to (created if missing)")
    .action(async (opts: { ca: string; name: string; host: string[]; out: string }) => {
      const ca = await readCaFiles(opts.ca).catch((e) => {
        throw new CliError(`cannot read the cluster CA from ${opts.ca}: ${errorMessage(e)}`, {
          cause: e,
        });
      });
      const pair = await issueNodeCertificate(ca, { name: opts.name, hosts: opts.host }).catch(
        (e) => {
          throw new CliError(`cannot issue the node certificate: ${errorMessage(e)}`, { cause: e });
        },
      );
      await writeNodeFiles(opts.out, pair).catch((e) => {
        throw new CliError(`cannot write the node certificate to ${opts.out}: ${errorMessage(e)}`, {
          cause: e,
        });
      });
      print(`Wrote ${opts.out}/node.crt and ${opts.out}/node.key for node "${opts.name}".`);
      print(`Node id: ${await nodeIdFromCertificate(pair.certPem)}`);
    });

  // --- node ---
  const node = program.command("node").description("this node's identity");
  withConfig(node.command("id").description("print the node id (from node_cert)"))
    .action(async (_opts: unknown, cmd: Command) => {
      const cfg = await config(cmd);
      if (!cfg.nodeCert) {
        throw new CliError(
          `no node certificate is configured in ${cfg.configPath}: set ca_cert, node_cert and ` +
            `node_key (make them with "remise cert ca" and "remise cert node")`,
        );
      }
      const path = cfg.nodeCert;
      const pem = await Deno.readTextFile(path).catch((e) => {
        throw new CliError(`cannot read node_cert ${path}: ${errorMessage(e)}`, { cause: e });
      });
      const id = await nodeIdFromCertificate(pem).catch((e) => {
        throw new CliError(`node_cert ${path} is not a usable certificate: ${errorMessage(e)}`, {
          cause: e,
        });
      });
      print(id);
    });

  return program;
}

function rightsCells(r: RightsJson): string[] {
  return [yesNo(r.read), yesNo(r.write), yesNo(r.owner)];
}

/** "served (index index.html, errors 404.html)" or "not served". */
function websiteText(info: BucketInfoJson): string {
  const w = info.website;
  if (!w) return "not served";
  if (info.publicAccessBlock?.includes("RestrictPublicBuckets")) {
    return "not served (the public access block restricts public buckets)";
  }
  if (w.redirectAllTo) return `redirects every request to ${w.redirectAllTo}`;
  const errors = w.errorDocument ? `, errors ${w.errorDocument}` : "";
  const rules = w.routingRules ? `, ${w.routingRules} routing rules` : "";
  return `served (index ${w.indexDocument}${errors}${rules})`;
}

/** "off", or "on" with the default retention. */
function objectLockText(info: BucketInfoJson): string {
  const lock = info.objectLock;
  if (lock === null) return "off";
  return lock.defaultRetention ? `on, new objects retained ${lock.defaultRetention}` : "on";
}

/** "none", or the default algorithm and whether SSE-C uploads are blocked. */
function defaultEncryptionText(info: BucketInfoJson): string {
  const e = info.defaultEncryption;
  if (e === null) return "none";
  const uploads = e.sseCBlocked ? "SSE-C uploads blocked" : "SSE-C uploads allowed";
  return e.algorithm
    ? `SSE-S3 (${e.algorithm}) for uploads without encryption, ${uploads}`
    : uploads;
}

function publicAccessBlockText(info: BucketInfoJson): string {
  const on = info.publicAccessBlock;
  if (on === null) return "none";
  return on.length === 0 ? "set, every setting off" : on.join(", ");
}

/** "read, write" or "none": the rights a key has on a bucket. */
function rightsText(info: BucketInfoJson, accessKeyId: string): string {
  const row = info.keys.find((k) => k.accessKeyId === accessKeyId);
  if (!row) return "none";
  return (["read", "write", "owner"] as const).filter((r) => row[r]).join(", ") || "none";
}

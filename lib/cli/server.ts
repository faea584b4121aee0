/**
 * `remise server`: opens the metadata store and the block store, serves the
 * S3 API and the admin API, runs background workers, and shuts down cleanly
 * on SIGTERM/SIGINT.
 */
import { checkDirectories, type Config, loadConfig, parseAddr } from "../util/config.ts";
import { log, setLogFilter } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import { toHex } from "../util/hash.ts";
import { BLOCK_GC_INTERVAL_MS } from "../util/limits.ts";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { Store } from "../model/store.ts";
import { Access } from "../model/access.ts";
import { createS3Handler } from "../api/s3/s3_api.ts";
import { createAdminHandler } from "../api/admin/admin_api.ts";
import { VERSION } from "../util/version.ts";

/** In-flight requests get this long to finish after a shutdown signal. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Name of the access key `--dev` creates on first start. */
const DEV_KEY_NAME = "dev";

/** The admin token: from the config, else from (or created in) `<metadata_dir>/admin_token`. */
async function adminToken(config: Config): Promise<string> {
  if (config.adminToken) return config.adminToken;
  const path = `${config.metadataDir}/admin_token`;
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const token = toHex(crypto.getRandomValues(new Uint8Array(24)));
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
  return token;
}

async function devCredentials(access: Access, config: Config): Promise<void> {
  let key = (await access.listKeys()).find((k) => k.name.v === DEV_KEY_NAME);
  if (!key) key = await access.createKey(DEV_KEY_NAME);
  const api = parseAddr(config.apiBindAddr, "api_bind_addr", config.configPath);
  const host = api.hostname === "0.0.0.0" || api.hostname === "::" ? "127.0.0.1" : api.hostname;
  const endpoint = `http://${host.includes(":") ? `[${host}]` : host}:${api.port}`;
  console.log(
    [
      "",
      "remise dev store is ready. Paste these lines into a shell:",
      "",
      `export AWS_ENDPOINT_URL=${endpoint}`,
      `export AWS_REGION=${config.s3Region}`,
      `export AWS_ACCESS_KEY_ID=${key.id}`,
      `export AWS_SECRET_ACCESS_KEY=${key.secret}`,
      "",
      "then try:",
      `  aws --endpoint-url ${endpoint} s3 mb s3://my-bucket`,
      `  aws --endpoint-url ${endpoint} s3 ls`,
      "",
    ].join("\n"),
  );
}

export async function runServer(
  configPath: string,
  options: { dev?: boolean; checkConfig?: boolean },
): Promise<void> {
  setLogFilter(Deno.env.get("REMISE_LOG") ?? "info");
  const config = await loadConfig(configPath);
  const apiAddr = parseAddr(config.apiBindAddr, "api_bind_addr", config.configPath);
  const adminAddr = parseAddr(config.adminBindAddr, "admin_bind_addr", config.configPath);
  if (options.checkConfig) {
    console.log(`${config.configPath}: configuration is valid`);
    return;
  }
  await checkDirectories(config);
  const db = await KvStore.open(`${config.metadataDir}/metadata.kv`);
  const blockStore = await BlockStore.open(config.dataDir);
  const store = new Store(db, blockStore, { blockSize: config.blockSize, nowMs: clockFromEnv() });
  const access = new Access(store);
  const token = await adminToken(config);
  const startedMs = Date.now();

  const s3 = Deno.serve(
    {
      hostname: apiAddr.hostname,
      port: apiAddr.port,
      onListen: (a) =>
        log("remise::server", "info", `S3 API listening on http://${a.hostname}:${a.port}`),
    },
    createS3Handler(
      { store, access, region: config.s3Region, rootDomain: config.rootDomain },
      store.nowMs,
    ),
  );
  const admin = Deno.serve(
    {
      hostname: adminAddr.hostname,
      port: adminAddr.port,
      onListen: (a) =>
        log("remise::server", "info", `admin API listening on http://${a.hostname}:${a.port}`),
    },
    createAdminHandler({
      access,
      token,
      nodeInfo: () => ({
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - startedMs) / 1000),
        s3Region: config.s3Region,
        apiBindAddr: config.apiBindAddr,
        replicationFactor: config.replicationFactor,
      }),
    }),
  );

  const gc = setInterval(() => {
    store.blocks.collectGarbage().catch((e) =>
      log("remise::block", "warn", `garbage collection failed: ${errorMessage(e)}`)
    );
  }, BLOCK_GC_INTERVAL_MS);

  if (options.dev) await devCredentials(access, config);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(
      "remise::server",
      "info",
      `${signal} received: finishing requests in flight, then stopping`,
    );
    clearInterval(gc);
    const timeout = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS));
    await Promise.race([Promise.all([s3.shutdown(), admin.shutdown()]), timeout]);
    db.close();
    log("remise::server", "info", "stopped");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
  await Promise.all([s3.finished, admin.finished]);
}

/**
 * The node's clock. `REMISE_TEST_CLOCK_OFFSET_MS` shifts it, so that tests can
 * run nodes whose clocks disagree.
 */
function clockFromEnv(): () => number {
  const offset = Number(Deno.env.get("REMISE_TEST_CLOCK_OFFSET_MS") ?? "0");
  if (!Number.isFinite(offset) || offset === 0) return Date.now;
  return () => Date.now() + offset;
}

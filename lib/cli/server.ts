/**
 * `remise server`: opens the metadata store and the block store, serves the
 * S3 API and the admin API, runs background workers, and shuts down cleanly
 * on SIGTERM/SIGINT.
 */
import { Ballast } from "../util/ballast.ts";
import { type Addr, checkDirectory, type Config, loadConfig, parseAddr } from "../util/config.ts";
import { bindFailure, listenError } from "../util/listen_error.ts";
import { lockDirectory, lockDirectoryInUse } from "../util/directory_lock.ts";
import { checkKeyPair, checkNodeCertificate, type ConfiguredPem } from "./certificate_files.ts";
import { log, setLogFilter } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import { toHex } from "../util/hash.ts";
import { WorkerHashing } from "../util/block_hashing.ts";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { checkDataDirMarker } from "../block/data_dir_marker.ts";
import { checkMetadataAge, recordMetadataCurrent } from "./metadata_age.ts";
import { Store } from "../model/store.ts";
import { Access } from "../model/access.ts";
import { createS3Handler } from "../api/s3/s3_api.ts";
import { RequestMetrics } from "../util/request_metrics.ts";
import { createWebHandler } from "../web/website.ts";
import { createAdminHandler } from "../api/admin/admin_api.ts";
import { commit, VERSION } from "../util/version.ts";
import {
  PEERS_AT_START_WAIT_MS,
  TOMBSTONE_GC_DELAY_MS,
  TOMBSTONE_GC_INTERVAL_MS,
} from "../util/limits.ts";
import { ConfigError } from "../util/errors.ts";
import { TlsTransport } from "../net/tls_transport.ts";
import { type DiskSpace, System } from "../rpc/system.ts";
import { ClusterReplication } from "../rpc/replication.ts";
import { setUpTableSync } from "../table/table_sync.ts";
import { startNodeServices } from "./node_services.ts";
import { startLayoutSync } from "./layout_sync.ts";
import type { AntiEntropyWorker } from "../table/anti_entropy.ts";
import type { WorkerStatus } from "../util/worker.ts";
import { diskWarnings, FreeSpace, reserveWarning, withFullDiskAdvice } from "../util/free_space.ts";

/** In-flight requests get this long to finish after a shutdown signal. */
const SHUTDOWN_GRACE_MS = 10_000;
/** After the grace period, connections get this long to close before the node stops anyway. */
const SHUTDOWN_CLOSE_MS = 2_000;
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
  // Full rights: the dev key owns every bucket, including those made with the CLI.
  for (const bucket of await access.listAllBuckets()) {
    const p = access.permissionOf(bucket, key.id);
    if (!p.read || !p.write || !p.owner) {
      await access.setPermission(bucket, key.id, { read: true, write: true, owner: true });
    }
  }
  const api = endpoint(config);
  console.log(
    [
      "",
      "remise dev store is ready. Paste these lines into a shell:",
      "",
      `export AWS_ENDPOINT_URL=${api}`,
      `export AWS_REGION=${config.s3Region}`,
      `export AWS_ACCESS_KEY_ID=${key.id}`,
      `export AWS_SECRET_ACCESS_KEY=${key.secret}`,
      "",
      "then try:",
      `  aws --endpoint-url ${api} s3 mb s3://my-bucket`,
      `  aws --endpoint-url ${api} s3 ls`,
      ...websiteHint(config),
      "",
    ].join("\n"),
  );
}

/** The S3 endpoint a client on this machine reaches. */
function endpoint(config: Config): string {
  const api = parseAddr(config.apiBindAddr, "api_bind_addr", config.configPath);
  const host = api.hostname === "0.0.0.0" || api.hostname === "::" ? "127.0.0.1" : api.hostname;
  const scheme = config.apiTlsCert ? "https" : "http";
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${api.port}`;
}

/** How to reach the dev store's websites, when it serves them. */
function websiteHint(config: Config): string[] {
  if (config.webBindAddr === undefined) return [];
  const web = parseAddr(config.webBindAddr, "web_bind_addr", config.configPath);
  const host = config.webRootDomain ? `my-bucket.${config.webRootDomain}` : "127.0.0.1";
  return [
    "",
    "a bucket with a website configuration is served as a website:",
    `  aws --endpoint-url ${
      endpoint(config)
    } s3 website s3://my-bucket --index-document index.html`,
    `  then open http://${host}:${web.port}/`,
  ];
}

export async function runServer(
  configPath: string,
  options: { dev?: boolean; checkConfig?: boolean },
): Promise<void> {
  setLogFilter(Deno.env.get("REMISE_LOG") ?? "info");
  const config = await loadConfig(configPath);
  const apiAddr = parseAddr(config.apiBindAddr, "api_bind_addr", config.configPath);
  const adminAddr = parseAddr(config.adminBindAddr, "admin_bind_addr", config.configPath);
  const apiTls = config.apiTlsCert && config.apiTlsKey
    ? await apiTlsFiles(config, config.apiTlsCert, config.apiTlsKey)
    : undefined;
  const cluster = await clusterSettings(config);
  if (options.checkConfig) {
    console.log(`${config.configPath}: configuration is valid`);
    return;
  }
  try {
    await runNode(config, { apiAddr, adminAddr, apiTls, cluster, dev: options.dev });
  } catch (e) {
    throw await withFullDiskAdvice(e, [
      { key: "metadata_dir", path: config.metadataDir },
      { key: "data_dir", path: config.dataDir },
    ]);
  }
}

/** The node itself, from its directories to its shutdown. */
async function runNode(
  config: Config,
  { apiAddr, adminAddr, apiTls, cluster, dev }: {
    apiAddr: Addr;
    adminAddr: Addr;
    apiTls: Awaited<ReturnType<typeof apiTlsFiles>> | undefined;
    cluster: ClusterSettings | undefined;
    dev?: boolean;
  },
): Promise<void> {
  await checkDirectory(config, "metadata_dir");
  const locks = [await lockDirectory(config.metadataDir, "metadata_dir", config.configPath)];
  const ballast = new Ballast(config.metadataDir, config.minFreeSpace);
  await ballast.releaseIfFull().catch((e) =>
    log("remise::disk", "warn", `cannot check ${ballast.path}: ${errorMessage(e)}`)
  );
  const db = await openMetadataStore(config);
  const tombstoneMs = testDurationMs("REMISE_TEST_TOMBSTONE_GC_MS");
  const tombstoneDelayMs = tombstoneMs ?? TOMBSTONE_GC_DELAY_MS;
  try {
    // A data_dir in use is locked before its marker is read, so that a second process on it
    // (a copied configuration) is refused before it can write a marker of its own.
    const dataLock = await lockDirectoryInUse(config.dataDir, "data_dir", config.configPath);
    if (dataLock) locks.push(dataLock);
    // Before data_dir is made: a node whose metadata names its data disk does not make an
    // empty one on the system disk where that disk was not mounted.
    await checkDataDirMarker(db, config.dataDir);
    await checkDirectory(config, "data_dir");
    // An empty one, once the marker says this is the node's data disk (not an empty mount point).
    if (!dataLock) locks.push(await lockDirectory(config.dataDir, "data_dir", config.configPath));
    // Before the node joins its cluster, whose replicas would take restored entries back.
    if (config.replicationFactor > 1) {
      await checkMetadataAge(db, config.metadataDir, tombstoneDelayMs);
    }
    await recordMetadataCurrent(db, config.metadataDir, Date.now());
  } catch (e) {
    db.close();
    for (const lock of locks) lock.close();
    throw e;
  }
  // Not at start: a node that starts has recovery to do first, and most test servers never last.
  const ballastTimer = setInterval(() => {
    ballast.keep().catch((e) =>
      log("remise::disk", "warn", `cannot keep ${ballast.path}: ${errorMessage(e)}`)
    );
  }, BALLAST_CHECK_INTERVAL_MS);
  const metadataCurrentTimer = setInterval(() => {
    recordMetadataCurrent(db, config.metadataDir, Date.now()).catch((e) =>
      log("remise::server", "warn", `cannot record the metadata's time: ${errorMessage(e)}`)
    );
  }, METADATA_CURRENT_INTERVAL_MS);
  // One core stays for the request thread (each worker is also ~15 MiB).
  const hashing = new WorkerHashing(Math.min(Math.max(navigator.hardwareConcurrency - 1, 1), 4));
  const dataSpace = new FreeSpace("data disk", config.dataDir, config.minFreeSpace);
  const metadataSpace = new FreeSpace("metadata disk", config.metadataDir, config.minFreeSpace);
  db.writeOutcomes = metadataSpace;
  db.makeRoom = () =>
    ballast.releaseAfterFailedCommit().catch((e) => {
      log("remise::disk", "warn", `cannot remove ${ballast.path}: ${errorMessage(e)}`);
      return false;
    });
  const disks = { data: dataSpace, metadata: metadataSpace };
  await Promise.all([dataSpace.refresh(), metadataSpace.refresh()]).catch((e) =>
    log("remise::server", "warn", `cannot read the free space of the disks: ${errorMessage(e)}`)
  );
  // Said at start too: a min_free_space larger than the disk would otherwise show only as 507s.
  for (const space of [dataSpace, metadataSpace]) {
    const warning = reserveWarning("This node", space.disk, space.space, cluster !== undefined);
    if (warning) log("remise::server", "warn", warning);
  }
  const blockStore = await BlockStore.open(config.dataDir, hashing, dataSpace);

  const token = await adminToken(config);
  const startedMs = Date.now();
  const clock = clockFromEnv();
  const system = cluster && await openCluster(config, cluster, db, disks, clock);
  const replication = system ? new ClusterReplication(system, config.consistencyMode) : undefined;
  const store = new Store(db, blockStore, {
    blockSize: config.blockSize,
    nowMs: clock,
    replication,
    antiEntropy: system !== undefined,
    metadataSpace,
  });
  const tableSync = store.merkle && replication
    ? setUpTableSync(store.tables, db, store.merkle, replication)
    : undefined;
  const access = new Access(store);
  // Every RPC handler is registered by now: peers that see this node up
  // never meet one of its paths missing (a key lock's would count as granted).
  if (system) await startCluster(config, system);
  const services = startNodeServices(store, db, {
    buckets: () => access.listAllBuckets(),
    tombstones: system
      ? {
        delayMs: tombstoneDelayMs,
        intervalMs: tombstoneMs ?? TOMBSTONE_GC_INTERVAL_MS,
      }
      : undefined,
    antiEntropy: tableSync
      ? async () => {
        const pass = await tableSync.worker.runOnce();
        return JSON.stringify(pass);
      }
      : undefined,
  });
  const stopLayoutSync = system && tableSync && replication
    ? startLayoutSync(system, tableSync, services, (n) => replication.writeQuorum(n))
    : undefined;
  if (tableSync) {
    // A node that was away catches up at once rather than at the first periodic pass;
    // then, its peers reached, an emptied data disk is refilled.
    tableSync.buildMissingIndexes().then(() => {
      tableSync.worker.start();
      return tableSync.worker.runOnce();
    }).then(
      () => services.refillEmptyDataDir(),
      (e) => log("remise::table", "error", `cannot start anti-entropy: ${errorMessage(e)}`),
    ).catch((e) => log("remise::block", "error", `cannot refill data_dir: ${errorMessage(e)}`));
  }

  const drain = new RequestDrain();
  const s3Metrics = new RequestMetrics("remise_s3", "S3 requests");
  const webMetrics = new RequestMetrics("remise_web", "website requests");
  const s3 = serveS3Api(
    config,
    {
      hostname: apiAddr.hostname,
      port: apiAddr.port,
      ...apiTls,
      onListen: (a) =>
        log(
          "remise::server",
          "info",
          `S3 API listening on ${apiTls ? "https" : "http"}://${a.hostname}:${a.port}`,
        ),
    },
    drain.wrap(createS3Handler(
      {
        store,
        access,
        region: config.s3Region,
        rootDomain: config.rootDomain,
        metrics: s3Metrics,
        // Alone, the node stores everything: an upload it cannot keep is refused before its body.
        // In a cluster, the other replicas take what this node cannot keep (or, too full
        // themselves, refuse it: 507 through outOfSpaceError).
        uploadSpace: system ? undefined : [metadataSpace, dataSpace],
        stopping: () => drain.draining,
        bodyIdleMs: testDurationMs("REMISE_TEST_BODY_IDLE_MS"),
      },
      store.nowMs,
    )),
  );
  const webAddr = config.webBindAddr === undefined
    ? undefined
    : parseAddr(config.webBindAddr, "web_bind_addr", config.configPath);
  const web = webAddr && serveOn(
    "web_bind_addr",
    config.webBindAddr!,
    {
      hostname: webAddr.hostname,
      port: webAddr.port,
      onListen: (a) =>
        log("remise::server", "info", `websites served on http://${a.hostname}:${a.port}`),
    },
    drain.wrap(
      createWebHandler({ store, access, rootDomain: config.webRootDomain, metrics: webMetrics }),
    ),
  );
  const admin = serveOn(
    "admin_bind_addr",
    config.adminBindAddr,
    {
      hostname: adminAddr.hostname,
      port: adminAddr.port,
      onListen: (a) =>
        log("remise::server", "info", `admin API listening on http://${a.hostname}:${a.port}`),
    },
    createAdminHandler({
      access,
      token,
      metricsToken: config.metricsToken,
      consistencyMode: config.consistencyMode,
      metrics: {
        version: versionText(),
        families: () => [
          ...s3Metrics.families(),
          ...webMetrics.families(),
          ...store.blocks.pushes.families(
            system?.peers().map((p) => p.id).filter((id) => id !== system.nodeId),
          ),
        ],
        diskSpace: () => readNodeDisks(disks),
      },
      system,
      maintenance: {
        workers: () => [
          ...services.registry.list(),
          ...(tableSync ? [workerStatusOfAntiEntropy(tableSync.worker.status())] : []),
        ],
        repair: (kind) => services.repair(kind),
        blockErrors: () => services.resyncQueue.errors(),
      },
      nodeInfo: () => singleNodeStatus(config, system?.nodeId ?? "single", startedMs, disks),
    }),
  );

  if (dev) await devCredentials(access, config);

  let stopping = false;
  const stopped = Promise.withResolvers<void>();
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(
      "remise::server",
      "info",
      `${signal} received: finishing requests in flight, then stopping`,
    );
    // Requests in flight finish (uploads included) while new ones are turned away.
    await drain.drain(SHUTDOWN_GRACE_MS);
    // What is left are answers being sent and connections a client holds open (part of a body
    // sent, then nothing): a short wait, not another grace period.
    const timeout = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_CLOSE_MS));
    await Promise.race([Promise.all([s3.shutdown(), admin.shutdown(), web?.shutdown()]), timeout]);
    try {
      stopLayoutSync?.();
      // Releases not started are noted: the next process takes them up.
      store.releases.stop();
      await services.stop();
      await tableSync?.worker.stop();
      await system?.stop().catch(() => {});
      clearInterval(metadataCurrentTimer);
      clearInterval(ballastTimer);
      await recordMetadataCurrent(db, config.metadataDir, Date.now()).catch(() => {});
      db.close();
      for (const lock of locks) lock.close();
      hashing.close();
      log("remise::server", "info", "stopped");
    } finally {
      stopped.resolve();
    }
  };
  Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
  // Left to its default, SIGHUP (a reload, a closed terminal) would kill the node uncleanly.
  Deno.addSignalListener("SIGHUP", () =>
    log(
      "remise::server",
      "warn",
      "SIGHUP received: remise reads its configuration only as it starts; restart it to apply changes",
    ));
  // The servers end as a shutdown begins: the process exits once it is done
  // (workers stopped, metadata store closed), or when that takes too long.
  // A server's `finished` also waits for its connections, which a client
  // holding a request body open keeps for as long as it likes: it is not
  // waited for once the shutdown is done.
  await Promise.race([Promise.all([s3.finished, admin.finished, web?.finished]), stopped.promise]);
  if (stopping) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      stopped.promise,
      new Promise((resolve) => timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)),
    ]);
    clearTimeout(timer);
  }
}

/** `remise status` of a node that runs alone: itself, its disks, and what needs a look. */
async function singleNodeStatus(
  config: Config,
  nodeId: string,
  startedMs: number,
  disks: NodeDisks,
): Promise<Record<string, unknown>> {
  const { data: dataDisk, metadata: metadataDisk } = await readNodeDisks(disks);
  return {
    nodeId,
    layoutVersion: 0,
    version: versionText(),
    uptimeSeconds: Math.round((Date.now() - startedMs) / 1000),
    s3Region: config.s3Region,
    apiBindAddr: config.apiBindAddr,
    replicationFactor: config.replicationFactor,
    nodes: [{
      id: "single",
      addr: config.apiBindAddr,
      up: true,
      lastSeen: new Date().toISOString(),
      rttMs: null,
      hostname: Deno.hostname(),
      version: versionText(),
      zone: null,
      capacity: null,
      gateway: false,
      partitions: 256,
      dataDisk: dataDisk ?? null,
      metadataDisk: metadataDisk ?? null,
    }],
    // Running alone is a choice, not something to fix: a note, so that an empty warnings list
    // means a healthy node to monitoring as it does for a cluster's.
    notes: [
      "This node runs alone, without certificates: it stores everything and has no cluster layout.",
    ],
    warnings: diskWarnings("This node", dataDisk, metadataDisk, false),
  };
}

let cachedVersionText: string | undefined;
/** "0.1.0 (abc1234)": the version and commit this node reports (git runs once). */
function versionText(): string {
  return cachedVersionText ??= `${VERSION} (${commit()})`;
}

/** How often a node records that its metadata is current (see metadata_age.ts). */
const METADATA_CURRENT_INTERVAL_MS = 3600_000;
/** How often the ballast is checked for, and made when missing (a stat when it is there). */
const BALLAST_CHECK_INTERVAL_MS = 30_000;

/** Counts S3 and website requests in flight; once draining, answers new ones 503 so that clients retry elsewhere. */
class RequestDrain {
  #active = 0;
  #draining = false;
  #idle?: () => void;

  get draining(): boolean {
    return this.#draining;
  }

  wrap(handler: (req: Request) => Promise<Response>): (req: Request) => Promise<Response> {
    return async (req) => {
      if (this.#draining) {
        await req.body?.cancel().catch(() => {});
        return new Response(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>' +
            "<Message>The node is shutting down; please retry.</Message></Error>",
          {
            status: 503,
            headers: { "content-type": "application/xml", connection: "close", "retry-after": "1" },
          },
        );
      }
      this.#active++;
      try {
        return await handler(req);
      } finally {
        if (--this.#active === 0) this.#idle?.();
      }
    };
  }

  /** Turns new requests away and waits (at most `timeoutMs`) for those in flight. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (this.#active === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idle = resolve),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }
}

function workerStatusOfAntiEntropy(s: ReturnType<AntiEntropyWorker["status"]>): WorkerStatus {
  return {
    name: s.name,
    state: s.state === "running" ? "busy" : "idle",
    progress: `${s.partitionsSynced} partitions synced, ${s.entriesExchanged} entries exchanged`,
    errors: s.errors,
    lastError: s.lastError,
    lastRunMs: s.lastRunMs,
  };
}

const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || host.startsWith("127.");

/** A file the configuration names under `key` (a certificate, a key). */
async function configuredPem(config: Config, path: string, key: string): Promise<ConfiguredPem> {
  try {
    return { key, path, pem: await Deno.readTextFile(path) };
  } catch (e) {
    throw new ConfigError(
      `Invalid configuration in ${config.configPath}: cannot read ${key} "${path}": ${
        errorMessage(e)
      }`,
    );
  }
}

/** SQLite's words for a database file that is damaged, or not one. */
const DAMAGED_DATABASE = /malformed|not a database|corrupt/i;

/**
 * The metadata store holds every key's secret: a new one is made readable by
 * this user only, whatever the umask and the directory's mode (SQLite gives
 * its journal files the database file's mode); an older one that others may
 * read is named in a warning.
 */
async function keepMetadataPrivate(path: string): Promise<void> {
  try {
    (await Deno.open(path, { write: true, createNew: true, mode: 0o600 })).close();
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const mode = (await Deno.stat(path)).mode ?? 0;
  if ((mode & 0o077) !== 0) {
    log(
      "remise::server",
      "warn",
      `${path} holds the access keys' secrets and other users may read it ` +
        `(mode ${(mode & 0o777).toString(8)}): chmod 600 it and the metadata.kv-* files beside it`,
    );
  }
}

/** Opens the node's metadata store; a damaged one is refused with the ways back. */
async function openMetadataStore(config: Config): Promise<KvStore> {
  const path = `${config.metadataDir}/metadata.kv`;
  await keepMetadataPrivate(path);
  try {
    return await KvStore.open(path);
  } catch (e) {
    if (!DAMAGED_DATABASE.test(errorMessage(e))) throw e;
    throw new Error(
      `${errorMessage(e)}. The metadata store is damaged: restore metadata.kv from a backup ` +
        '(README, "Backing up metadata"), or, on a node of a cluster, move metadata_dir and ' +
        "data_dir aside and start with both empty: the node then fetches everything from the others.",
      { cause: e },
    );
  }
}

/** `Deno.serve` on the address of a setting; a bind that fails names both. */
function serveOn(
  setting: string,
  addr: string,
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler,
): Deno.HttpServer {
  try {
    return Deno.serve(options, handler);
  } catch (e) {
    throw listenError(setting, addr, e);
  }
}

/**
 * Starts the S3 API's server; a bind that fails names api_bind_addr, a
 * certificate or key that TLS cannot use is a ConfigError.
 */
function serveS3Api(
  config: Config,
  options: Deno.ServeTcpOptions & Partial<Deno.TlsCertifiedKeyPem>,
  handler: Deno.ServeHandler,
): Deno.HttpServer {
  try {
    return Deno.serve(options, handler);
  } catch (e) {
    if (bindFailure(e) !== undefined) throw listenError("api_bind_addr", config.apiBindAddr, e);
    if (!options.cert) throw e;
    throw new ConfigError(
      `Invalid configuration in ${config.configPath}: api_tls_cert "${config.apiTlsCert}" and ` +
        `api_tls_key "${config.apiTlsKey}" are not a usable certificate and key: ${
          errorMessage(e)
        }`,
    );
  }
}

/** What a node needs to join its cluster: its certificates, read, and the address peers dial. */
interface ClusterSettings {
  caPem: string;
  certPem: string;
  keyPem: string;
  publicAddr: string;
}

/**
 * The cluster settings, checked (and the certificates read) before anything
 * is created, so that `--check-config` sees what start-up would refuse.
 * Undefined without certificates: the node runs alone, which is refused when
 * the configuration asks for peers.
 */
async function clusterSettings(config: Config): Promise<ClusterSettings | undefined> {
  const rpc = parseAddr(config.rpcBindAddr, "rpc_bind_addr", config.configPath);
  if (!config.caCert || !config.nodeCert || !config.nodeKey) {
    const why = config.bootstrapPeers.length > 0
      ? "it lists bootstrap_peers"
      : config.consulHost
      ? "it sets consul_host"
      : !isLoopback(rpc.hostname)
      ? `rpc_bind_addr (${config.rpcBindAddr}) is not a loopback address`
      : undefined;
    if (why === undefined) {
      if (config.replicationFactor > 1) {
        log(
          "remise::server",
          "warn",
          `${config.configPath} sets replication_factor = ${config.replicationFactor}, but without ` +
            "ca_cert, node_cert and node_key this node runs alone and keeps one copy of each " +
            'object (see README, "Three sites, three nodes")',
        );
      }
      return undefined;
    }
    throw new ConfigError(
      `Invalid configuration in ${config.configPath}: ${why}, so nodes must authenticate each other, ` +
        `but ca_cert, node_cert and node_key are not set. Create them with ` +
        "`remise cert ca --out DIR` (once per cluster) and " +
        "`remise cert node --ca DIR --name NAME --host HOST --out DIR` (per node), " +
        "then set ca_cert, node_cert and node_key.",
    );
  }
  const publicAddr = config.rpcPublicAddr ?? config.rpcBindAddr;
  if (config.rpcPublicAddr === undefined && (rpc.hostname === "0.0.0.0" || rpc.hostname === "::")) {
    throw new ConfigError(
      `Invalid configuration in ${config.configPath}: rpc_bind_addr listens on all interfaces; ` +
        `set rpc_public_addr to the address other nodes reach this one at`,
    );
  }
  const ca = await configuredPem(config, config.caCert, "ca_cert");
  const cert = await configuredPem(config, config.nodeCert, "node_cert");
  const key = await configuredPem(config, config.nodeKey, "node_key");
  checkNodeCertificate(config.configPath, { ca, cert, key }, Date.now());
  return { caPem: ca.pem, certPem: cert.pem, keyPem: key.pem, publicAddr };
}

/** The S3 API's certificate and key, checked to belong together. */
async function apiTlsFiles(
  config: Config,
  certPath: string,
  keyPath: string,
): Promise<{ cert: string; key: string }> {
  const cert = await configuredPem(config, certPath, "api_tls_cert");
  const key = await configuredPem(config, keyPath, "api_tls_key");
  checkKeyPair(config.configPath, cert, key);
  return { cert: cert.pem, key: key.pem };
}

/**
 * The node's membership of the cluster, with the settings `clusterSettings`
 * checked; it serves no RPC until `startCluster`, so that the handlers of
 * the store register first.
 */
async function openCluster(
  config: Config,
  settings: ClusterSettings,
  db: KvStore,
  disks: NodeDisks,
  nowMs: () => number,
): Promise<System> {
  const transport = new TlsTransport({
    ...settings,
    bindAddr: config.rpcBindAddr,
    maxConcurrentRequests: config.maxConcurrentRpcRequests,
  });
  return await System.open({
    transport,
    db,
    publicAddr: settings.publicAddr,
    bootstrapPeers: config.bootstrapPeers,
    consul: config.consulHost && config.consulServiceName
      ? { host: config.consulHost, service: config.consulServiceName }
      : undefined,
    replicationFactor: config.replicationFactor,
    version: versionText(),
    hostname: Deno.hostname(),
    diskSpace: () => readNodeDisks(disks),
    nowMs,
  });
}

/** Serves the cluster's RPC and gossip, then waits a little for a majority of the nodes. */
async function startCluster(config: Config, system: System): Promise<void> {
  await system.start();
  log(
    "remise::server",
    "info",
    `cluster RPC listening on ${config.rpcBindAddr} as node ${system.nodeId}`,
  );
  // S3 opens once the node can reach a quorum, or after a few seconds: a site cut off serves what
  // it can all the same.
  if (!await system.majorityUp(PEERS_AT_START_WAIT_MS)) {
    log("remise::server", "warn", "less than a majority of the nodes up: serving anyway");
  }
}

/** The node's data and metadata disks, each with its reserve. */
interface NodeDisks {
  data: FreeSpace;
  metadata: FreeSpace;
}

/**
 * The free and total space of the node's disks, read now, and their reserve
 * (for status, gossip and /metrics); a disk that cannot be read is undefined.
 */
async function readNodeDisks(
  disks: NodeDisks,
): Promise<{ data?: DiskSpace; metadata?: DiskSpace }> {
  await Promise.all([disks.data.refresh(), disks.metadata.refresh()].map((r) => r.catch(() => {})));
  return { data: disks.data.space, metadata: disks.metadata.space };
}

/** A duration shortened for tests (a positive number of ms in `name`), else undefined. */
function testDurationMs(name: string): number | undefined {
  const ms = Number(Deno.env.get(name) ?? "0");
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
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

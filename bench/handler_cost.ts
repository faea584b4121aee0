/**
 * The cost of small S3 requests inside remise, without HTTP: the S3 handler
 * is called directly, with signed `Request`s, by `--concurrency` loops, on a
 * store in a temporary directory. Prints ops/s and the process's CPU per
 * request (user and system, the signing of requests included), which varies
 * much less than throughput on a shared machine: compare it before and after
 * a change on the request path.
 *
 *   deno run -A --unstable-kv bench/handler_cost.ts [--concurrency 32] [--seconds 3] [--ops PUT,GET,HEAD]
 *
 * GET and HEAD read the keys the PUT made. Add `--cpu-prof --cpu-prof-dir=DIR`
 * to `deno run` for a profile of exactly this work (see profile_top.ts).
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { KvStore } from "../lib/db/kv_store.ts";
import { BlockStore } from "../lib/block/block_store.ts";
import { WorkerHashing } from "../lib/util/block_hashing.ts";
import { Store } from "../lib/model/store.ts";
import { Access } from "../lib/model/access.ts";
import { createS3Handler } from "../lib/api/s3/s3_api.ts";
import { RequestMetrics } from "../lib/util/request_metrics.ts";
import { SigV4Signer } from "./sigv4.ts";
import { FreeSpace } from "../lib/util/free_space.ts";
import { DEFAULT_MIN_FREE_SPACE_BYTES } from "../lib/util/config.ts";

/** A request body as `Deno.serve` gives one: a byte stream (BYOB readers fill their own buffers). */
function requestBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (sent) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      sent = true;
      controller.enqueue(bytes.slice());
    },
  });
}

const { values: args } = parseArgs({
  options: {
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "3" },
    ops: { type: "string", default: "PUT,GET,HEAD" },
    size: { type: "string", default: "4096" },
  },
});
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const HOST = "127.0.0.1:3900";
const REGION = "us-east-1";

const dir = await Deno.makeTempDir({ prefix: "remise-handler-cost-" });
const db = await KvStore.open(`${dir}/meta.kv`);
const hashing = new WorkerHashing(1);
try {
  // Disks keep their reserve, as on a server (the default min_free_space).
  const space = new FreeSpace("disk", dir, DEFAULT_MIN_FREE_SPACE_BYTES);
  await space.refresh();
  const store = new Store(db, await BlockStore.open(`${dir}/data`, hashing, space), {
    blockSize: 1024 * 1024,
  });
  const access = new Access(store);
  const key = await access.createKey("bench");
  const bucket = await access.createBucket("bench", key.id);
  await access.setPermission(bucket, key.id, { read: true, write: true, owner: true });
  // Requests are counted for /metrics, as the server does.
  const handler = createS3Handler({
    store,
    access,
    region: REGION,
    rootDomain: "s3.localhost",
    metrics: new RequestMetrics("remise_s3", "S3 requests"),
    uploadSpace: [space, space],
  });
  const signer = new SigV4Signer({ accessKey: key.id, secretKey: key.secret, region: REGION });
  const body = new Uint8Array(Number(args.size)).fill(65);
  let keysPerLoop = 0;

  for (const method of args.ops.split(",").map((m) => m.trim().toUpperCase())) {
    if (method !== "PUT" && keysPerLoop === 0) {
      throw new Error(`${method} reads the keys a PUT made: list PUT first in --ops`);
    }
    let done = 0;
    let failed = 0;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const end = started + seconds * 1000;
    const counts = await Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
      let i = 0;
      while (performance.now() < end) {
        const path = `/bench/k/${loop}/${method === "PUT" ? i : i % keysPerLoop}`;
        i++;
        const headers: Record<string, string> = {
          ...signer.sign({ method, host: HOST, path }),
          host: HOST,
        };
        if (method === "PUT") headers["content-length"] = String(body.byteLength);
        const res = await handler(
          new Request(`http://${HOST}${path}`, {
            method,
            headers,
            body: method === "PUT" ? requestBody(body) : undefined,
            duplex: "half",
          } as RequestInit),
        );
        await res.arrayBuffer();
        if (res.status >= 300) failed++;
        done++;
      }
      return i;
    }));
    const elapsed = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    if (method === "PUT") keysPerLoop = Math.min(...counts);
    console.log(
      `${method} c=${concurrency}: ${Math.round(done / elapsed)} ops/s, CPU ${
        Math.round((cpu.user + cpu.system) / done)
      } us a request (user ${Math.round(cpu.user / done)}, system ${
        Math.round(cpu.system / done)
      })${failed ? `, ${failed} failed` : ""}`,
    );
  }
} finally {
  hashing.close();
  db.close();
  await Deno.remove(dir, { recursive: true });
}

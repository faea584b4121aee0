/**
 * A replica that lags, or hangs (SIGSTOP: its connections stay open and
 * nothing answers, as behind a link that silently drops everything), is worse
 * than one that dies: what is sent to it waits. Uploads through the other
 * nodes go on at their pace; the blocks they push to it are bounded
 * (push_backlog.ts), not held in memory until it has them or its connection
 * is given up; it fetches what it missed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { TestCluster } from "./cluster_harness.ts";
import { blockFiles, getBytes } from "./_s3_helpers.ts";

const MiB = 1024 * 1024;
/** BLOCK_PUSH_BACKLOG_PER_PEER_BYTES */
const BACKLOG_BOUND = 32 * MiB;

const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("hex");
function randomBytes(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
  return data;
}

const blockNames = async (dir: string) =>
  new Set((await blockFiles(dir)).map((f) => f.slice(f.lastIndexOf("/") + 1)));

/** Waits until node `n` holds every block node 0 holds. */
async function catchUp(cluster: TestCluster, n: number, what: string): Promise<void> {
  const expected = await blockNames(cluster.nodes[0].server.dir);
  await cluster.waitFor(
    what,
    async () => {
      const held = await blockNames(cluster.nodes[n].server.dir);
      return [...expected].filter((b) => !held.has(b)).length;
    },
    (missing) => missing === 0,
    120_000,
  );
}

Deno.test("a hung replica: uploads go on through the others with a bounded backlog, and it catches up once it answers", async () => {
  const cluster = await TestCluster.start(3, {
    extraConfig: "replication_factor = 3",
    blockSize: 64 * 1024,
  });
  const ids = await cluster.layoutOneZoneEach();
  const key = JSON.parse((await cluster.cli(0, ["key", "create", "h", "--json"])).stdout);
  const clients = cluster.nodes.map((n) => n.server.client(key));
  const node0 = cluster.nodes[0].server;
  const pushMetric = async (name: string) => {
    const text = await (await fetch(`${node0.adminEndpoint}/metrics`, {
      headers: { authorization: `Bearer ${node0.adminToken}` },
    })).text();
    const line = text.split("\n").find((l) =>
      l.startsWith(`${name}{node="${ids[1].slice(0, 16)}"}`)
    );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  const hungPid = cluster.nodes[1].server.process!.pid;
  const objects = new Map<string, string>();
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "hung" }));
    Deno.kill(hungPid, "SIGSTOP");
    try {
      // 8 × 16 MiB, 2,048 blocks: four times what may wait for the hung node.
      let largestBacklog = 0;
      for (let i = 0; i < 8; i++) {
        const data = randomBytes(16 * MiB);
        await clients[0].send(new PutObjectCommand({ Bucket: "hung", Key: `o${i}`, Body: data }));
        objects.set(`o${i}`, md5(data));
        largestBacklog = Math.max(
          largestBacklog,
          await pushMetric("remise_block_push_backlog_bytes"),
        );
      }
      // Blocks beyond the bound are skipped (push_backlog_test.ts), or, on a
      // machine too busy to send 32 MiB within the 8 s the hung node's
      // connection is given after its last answer, their pushes fail as the
      // connection is dropped: either way the node fetches them once back.
      assert.ok(
        largestBacklog <= BACKLOG_BOUND,
        `${largestBacklog} bytes waited for the hung node`,
      );
      for (const client of [clients[0], clients[2]]) {
        for (const [name, sum] of objects) {
          assert.equal(md5(await getBytes(client, "hung", name)), sum, name);
        }
        const listed = await client.send(new ListObjectsV2Command({ Bucket: "hung" }));
        assert.deepEqual(listed.Contents?.map((o) => o.Key), [...objects.keys()]);
      }
      await clients[2].send(new PutObjectCommand({ Bucket: "hung", Key: "gone", Body: "x" }));
      await clients[0].send(new DeleteObjectCommand({ Bucket: "hung", Key: "gone" }));
    } finally {
      Deno.kill(hungPid, "SIGCONT");
    }
    assert.ok((await blockNames(node0.dir)).size >= 2048);
    await catchUp(cluster, 1, "the hung node to fetch the blocks it missed");
    for (const [name, sum] of objects) {
      assert.equal(md5(await getBytes(clients[1], "hung", name)), sum, name);
    }
    const listed = await clients[1].send(new ListObjectsV2Command({ Bucket: "hung" }));
    assert.deepEqual(listed.Contents?.map((o) => o.Key), [...objects.keys()], "no key came back");
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("a replica far slower than the others: its coordinator's memory does not grow with what is uploaded", async () => {
  const cluster = await TestCluster.start(3, { extraConfig: "replication_factor = 3" });
  await cluster.layoutOneZoneEach();
  const key = JSON.parse((await cluster.cli(0, ["key", "create", "s", "--json"])).stdout);
  const s3 = cluster.nodes[0].server.client(key);
  const coordinator = cluster.nodes[0].server.process!.pid;
  const peakRss = async () =>
    Number(
      (await Deno.readTextFile(`/proc/${coordinator}/status`)).match(/VmHWM:\s+(\d+)/)![1],
    ) * 1024;
  // Node 2 runs a fifth of the time.
  const slowPid = cluster.nodes[2].server.process!.pid;
  let slowing = true;
  const slower = (async () => {
    while (slowing) {
      Deno.kill(slowPid, "SIGSTOP");
      await new Promise((r) => setTimeout(r, 400));
      Deno.kill(slowPid, "SIGCONT");
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "slow" }));
    const peaks: number[] = [];
    for (let i = 0; i < 4; i++) {
      await s3.send(
        new PutObjectCommand({ Bucket: "slow", Key: `o${i}`, Body: randomBytes(64 * MiB) }),
      );
      peaks.push(await peakRss());
    }
    // Holding every block for the slow node took ~100 MiB more per upload.
    const growth = peaks[3] - peaks[0];
    assert.ok(growth < 128 * MiB, `peak RSS grew by ${growth / MiB} MiB over three 64 MiB uploads`);
  } finally {
    slowing = false;
    await slower;
  }
  try {
    await catchUp(cluster, 2, "the slow node to hold every block");
  } finally {
    s3.destroy();
    await cluster.close();
  }
});

/**
 * A 3-node cluster in 3 zones with replication factor 3, as real processes:
 * data written through one node is read through the others, and the cluster
 * keeps serving and keeps every acknowledged write through node failures.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { request } from "node:http";
import { TestCluster } from "./cluster_harness.ts";
import type { Credentials } from "./harness.ts";
import {
  assertOneConditionalWriterWins,
  blockFiles,
  errorCodeOf,
  getBytes,
  referencedBlocks,
  signedFetch,
} from "./_s3_helpers.ts";

const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("hex");

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function formCluster(options: { env?: (i: number) => Record<string, string> } = {}) {
  const cluster = await TestCluster.start(3, {
    extraConfig: "replication_factor = 3",
    blockSize: 65536,
    env: options.env,
  });
  const ids = await cluster.layoutOneZoneEach();
  const created = JSON.parse((await cluster.cli(0, ["key", "create", "app", "--json"])).stdout);
  const credentials: Credentials = {
    accessKeyId: created.accessKeyId,
    secretAccessKey: created.secretAccessKey,
  };
  const clients = cluster.nodes.map((n) => n.server.client(credentials));
  return { cluster, ids, clients, credentials };
}

Deno.test("replication: objects written through one node are read through every other, and survive failures", async (t) => {
  const { cluster, clients, credentials } = await formCluster();
  const objects = new Map<string, string>(); // key -> md5
  try {
    await t.step(
      "small, multi-block and multipart objects are readable through every node",
      async () => {
        await clients[0].send(new CreateBucketCommand({ Bucket: "replicated" }));
        for (let i = 0; i < 20; i++) {
          const data = bytes(i % 3 === 0 ? 100 + i : 200_000 + i * 1000, i);
          await clients[0].send(
            new PutObjectCommand({ Bucket: "replicated", Key: `obj-${i}`, Body: data }),
          );
          objects.set(`obj-${i}`, md5(data));
        }
        const big = bytes(11 * 1024 * 1024, 99);
        await new Upload({
          client: clients[0],
          params: { Bucket: "replicated", Key: "multipart", Body: big },
          partSize: 5 * 1024 * 1024,
        })
          .done();
        objects.set("multipart", md5(big));
        for (const client of clients) {
          for (const [key, sum] of objects) {
            assert.equal(md5(await getBytes(client, "replicated", key)), sum, key);
          }
          const listed = await client.send(new ListObjectsV2Command({ Bucket: "replicated" }));
          assert.equal(listed.KeyCount, objects.size);
        }
      },
    );

    await t.step("tags set through one node are read through the others", async () => {
      for (const [i, value] of [[1, "first"], [2, "second"]] as const) {
        await clients[i].send(
          new PutObjectTaggingCommand({
            Bucket: "replicated",
            Key: "obj-1",
            Tagging: { TagSet: [{ Key: "set-by", Value: value }] },
          }),
        );
      }
      for (const client of clients) {
        const got = await client.send(
          new GetObjectTaggingCommand({ Bucket: "replicated", Key: "obj-1" }),
        );
        assert.deepEqual(got.TagSet, [{ Key: "set-by", Value: "second" }]);
      }
    });

    await t.step(
      "SSE-C, SSE-S3 and object lock set through one node hold through the others",
      async () => {
        const key = { SSECustomerAlgorithm: "AES256", SSECustomerKey: "R".repeat(32) };
        const secret = bytes(300_000, 7);
        await clients[0].send(
          new CreateBucketCommand({ Bucket: "locked", ObjectLockEnabledForBucket: true }),
        );
        const { VersionId: id } = await clients[0].send(
          new PutObjectCommand({ Bucket: "locked", Key: "sealed", Body: secret, ...key }),
        );
        await clients[1].send(
          new PutObjectLegalHoldCommand({
            Bucket: "locked",
            Key: "sealed",
            LegalHold: { Status: "ON" },
          }),
        );
        for (const client of clients) {
          const got = await client.send(
            new GetObjectCommand({ Bucket: "locked", Key: "sealed", ...key }),
          );
          assert.equal(got.ObjectLockLegalHoldStatus, "ON");
          assert.equal(md5(await got.Body!.transformToByteArray()), md5(secret));
          const refused = await client.send(
            new GetObjectCommand({ Bucket: "locked", Key: "sealed" }),
          ).then(() => "read without its key", (e) => e.name);
          assert.equal(refused, "InvalidRequest");
          const deleted = await client.send(
            new DeleteObjectCommand({ Bucket: "locked", Key: "sealed", VersionId: id }),
          ).then(() => "deleted", (e) => e.name);
          assert.equal(deleted, "AccessDenied");
        }
        // SSE-S3: the key travels with the object's entry, so every node decrypts.
        await clients[2].send(
          new PutObjectCommand({
            Bucket: "locked",
            Key: "managed",
            Body: secret,
            ServerSideEncryption: "AES256",
          }),
        );
        for (const client of clients) {
          const got = await client.send(new GetObjectCommand({ Bucket: "locked", Key: "managed" }));
          assert.equal(got.ServerSideEncryption, "AES256");
          assert.equal(md5(await got.Body!.transformToByteArray()), md5(secret));
        }
      },
    );

    await t.step(
      "of conditional PUTs of one key at once through one node, one succeeds",
      async () => {
        await clients[1].send(new CreateBucketCommand({ Bucket: "conditional" }));
        await assertOneConditionalWriterWins(() => clients[1], "conditional", {
          rounds: 6,
          writers: 3,
          bodySize: (round) => round % 2 === 0 ? 100 : 150_000,
        });
      },
    );

    await t.step(
      "of conditional PUTs of one key at once through different nodes, one succeeds",
      async () => {
        await clients[2].send(new CreateBucketCommand({ Bucket: "conditional-nodes" }));
        await assertOneConditionalWriterWins((writer) => clients[writer], "conditional-nodes", {
          rounds: 6,
          writers: 3,
          bodySize: (round) => round % 2 === 0 ? 100 : 150_000,
        });
      },
    );

    await t.step("versions written through different nodes are listed alike by all", async () => {
      await clients[1].send(new CreateBucketCommand({ Bucket: "versioned" }));
      await clients[1].send(
        new PutBucketVersioningCommand({
          Bucket: "versioned",
          VersioningConfiguration: { Status: "Enabled" },
        }),
      );
      const ids: string[] = [];
      for (const i of [0, 1, 2]) {
        const put = await clients[i].send(
          new PutObjectCommand({ Bucket: "versioned", Key: "doc", Body: `through node ${i}` }),
        );
        ids.unshift(put.VersionId!);
      }
      const marker = (await clients[0].send(
        new DeleteObjectCommand({ Bucket: "versioned", Key: "doc" }),
      )).VersionId!;
      await clients[2].send(
        new DeleteObjectCommand({ Bucket: "versioned", Key: "doc", VersionId: ids[1] }),
      );
      for (const client of clients) {
        const listed = await client.send(new ListObjectVersionsCommand({ Bucket: "versioned" }));
        assert.deepEqual(listed.DeleteMarkers?.map((m) => [m.VersionId, m.IsLatest]), [
          [marker, true],
        ]);
        assert.deepEqual(listed.Versions?.map((v) => v.VersionId), [ids[0], ids[2]]);
        const oldest = await client.send(
          new GetObjectCommand({ Bucket: "versioned", Key: "doc", VersionId: ids[2] }),
        );
        assert.equal(await oldest.Body!.transformToString(), "through node 0");
      }
    });

    await t.step(
      "a bucket's settings and a key changed through one node hold at once through the others",
      async () => {
        // Nodes 1 and 2 serve the bucket and the key first, so they hold them
        // in their request path's cache when node 0 changes them.
        await clients[0].send(new CreateBucketCommand({ Bucket: "settings" }));
        const created = JSON.parse(
          (await cluster.cli(0, ["key", "create", "short-lived", "--json"]))
            .stdout,
        );
        await cluster.cli(0, ["bucket", "allow", "settings", "--key", "short-lived", "--read"]);
        const shortLived = cluster.nodes[1].server.client({
          accessKeyId: created.accessKeyId,
          secretAccessKey: created.secretAccessKey,
        });
        await clients[1].send(new PutObjectCommand({ Bucket: "settings", Key: "doc", Body: "0" }));
        await shortLived.send(new HeadObjectCommand({ Bucket: "settings", Key: "doc" }));
        const anonymousGet = () =>
          fetch(`${cluster.nodes[2].server.endpoint}/settings/doc`).then(async (res) => {
            await res.body?.cancel();
            return res.status;
          });
        assert.equal(await anonymousGet(), 403);

        await clients[0].send(
          new PutBucketVersioningCommand({
            Bucket: "settings",
            VersioningConfiguration: { Status: "Enabled" },
          }),
        );
        await clients[0].send(
          new PutBucketPolicyCommand({
            Bucket: "settings",
            Policy: JSON.stringify({
              Version: "2012-10-17",
              Statement: [{
                Effect: "Allow",
                Principal: "*",
                Action: ["s3:GetObject"],
                Resource: ["arn:aws:s3:::settings/*"],
              }],
            }),
          }),
        );
        await cluster.cli(0, ["key", "delete", "short-lived"]);

        for (const body of ["1", "2"]) {
          await clients[1].send(
            new PutObjectCommand({ Bucket: "settings", Key: "doc", Body: body }),
          );
        }
        const listed = await clients[1].send(
          new ListObjectVersionsCommand({ Bucket: "settings", Prefix: "doc" }),
        );
        assert.equal(listed.Versions?.length, 3, "the null version and two versions");
        assert.equal(await anonymousGet(), 200, "public read through another node");
        const refused = await shortLived.send(
          new HeadObjectCommand({ Bucket: "settings", Key: "doc" }),
        )
          .then(() => "served", (e) => e.$metadata?.httpStatusCode);
        assert.equal(refused, 403, "the deleted key is refused through another node");
        shortLived.destroy();
      },
    );

    await t.step(
      "a key deleted without versioning is absent through every node, not a delete marker",
      async () => {
        await clients[0].send(
          new PutObjectCommand({ Bucket: "replicated", Key: "gone", Body: "x" }),
        );
        await clients[1].send(new DeleteObjectCommand({ Bucket: "replicated", Key: "gone" }));
        for (const node of cluster.nodes) {
          for (const query of [undefined, { versionId: "null" }]) {
            const res = await signedFetch(node.server, credentials, {
              method: "GET",
              path: "/replicated/gone",
              query,
            });
            const code = errorCodeOf(await res.text());
            assert.equal(res.status, 404, `${code} through ${node.server.endpoint}`);
            if (!query) assert.equal(code, "NoSuchKey");
            assert.equal(res.headers.get("x-amz-delete-marker"), null);
            assert.equal(res.headers.get("x-amz-version-id"), null);
          }
        }
        const again = await clients[2].send(
          new DeleteObjectCommand({ Bucket: "replicated", Key: "gone", VersionId: "null" }),
        );
        assert.equal(again.DeleteMarker, undefined);
      },
    );

    await t.step("a replica killed in the middle of an upload: the upload completes", async () => {
      // A presigned PUT sent in two halves, with the replica killed in between.
      const data = bytes(3 * 1024 * 1024, 77);
      const half = data.byteLength / 2;
      const url = new URL(
        await getSignedUrl(
          clients[0],
          new PutObjectCommand({ Bucket: "replicated", Key: "mid-kill" }),
        ),
      );
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(url, {
          method: "PUT",
          headers: { "content-length": String(data.byteLength) },
        }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.write(data.subarray(0, half), async () => {
          // Let the first blocks reach the replicas first.
          await new Promise((r) => setTimeout(r, 200));
          await cluster.nodes[2].server.kill();
          req.end(data.subarray(half));
        });
      });
      assert.equal(status, 200);
      objects.set("mid-kill", md5(data));
      for (const client of clients.slice(0, 2)) {
        assert.equal(md5(await getBytes(client, "replicated", "mid-kill")), md5(data));
      }
    });

    await t.step("with one node killed, reads and writes go on", async () => {
      await cluster.nodes[2].server.kill(); // already down: the step above killed it
      for (let i = 20; i < 30; i++) {
        const data = bytes(150_000 + i, i);
        await clients[0].send(
          new PutObjectCommand({ Bucket: "replicated", Key: `obj-${i}`, Body: data }),
        );
        objects.set(`obj-${i}`, md5(data));
      }
      // Conditional writes too, whether or not the dead node led their bucket.
      const created = await clients[0].send(
        new PutObjectCommand({
          Bucket: "replicated",
          Key: "obj-30",
          Body: "first",
          IfNoneMatch: "*",
        }),
      );
      const again = await clients[1].send(
        new PutObjectCommand({
          Bucket: "replicated",
          Key: "obj-30",
          Body: "second",
          IfNoneMatch: "*",
        }),
      ).then(() => undefined, (e) => e);
      assert.equal(again?.name, "PreconditionFailed", String(again));
      await clients[1].send(
        new PutObjectCommand({
          Bucket: "replicated",
          Key: "obj-30",
          Body: "third",
          IfMatch: created.ETag,
        }),
      );
      objects.set("obj-30", md5(new TextEncoder().encode("third")));
      for (const client of clients.slice(0, 2)) {
        for (const [key, sum] of objects) {
          assert.equal(md5(await getBytes(client, "replicated", key)), sum, key);
        }
      }
    });

    await t.step(
      "with two nodes down, writes fail with 503 and nothing half-written appears",
      async () => {
        await cluster.nodes[1].server.kill();
        await cluster.waitFor(
          "node 0 sees the others down",
          () => cluster.status(0),
          (s) => s.nodes.filter((n) => n.up).length === 1,
        );
        const failed = await clients[0].send(
          new PutObjectCommand({ Bucket: "replicated", Key: "never", Body: bytes(100_000, 7) }),
        ).then(() => undefined, (e) => e);
        assert.ok(failed, "the write must fail");
        assert.equal(failed.$metadata?.httpStatusCode, 503, String(failed));
        assert.equal(failed.name, "ServiceUnavailable");
        // The nodes that failed, and their addresses, are in the node's log, not in the answer.
        assert.doesNotMatch(failed.message, /\d+\.\d+\.\d+\.\d+|[0-9a-f]{16}/, failed.message);
        // A load balancer asking node 0 whether it can serve is told no.
        const ready = await fetch(`${cluster.nodes[0].server.adminEndpoint}/ready`);
        assert.equal(ready.status, 503);
        assert.equal((await ready.json()).status, "unavailable");
        const { warnings } = await cluster.status(0);
        assert.ok(warnings.some((w) => /write quorum/.test(w)), JSON.stringify(warnings));
        // The CLI's changes too are refused as a matter of nodes down, not as a fault of remise.
        const keyRes = await cluster.nodes[0].server.admin("POST", "/v1/keys", { name: "late" });
        const keyError = await keyRes.json();
        assert.equal(keyRes.status, 503, JSON.stringify(keyError));
        assert.equal(keyError.code, "ServiceUnavailable");
        assert.match(keyError.error, /^Not enough nodes are up \(see `remise status`\): Cannot /);
      },
    );

    await t.step(
      "after restarts, the cluster serves everything acknowledged and nothing else",
      async () => {
        await cluster.nodes[1].server.launch();
        await cluster.nodes[2].server.launch();
        for (const i of [0, 1, 2]) {
          await cluster.waitFor(
            `node ${i} sees 3 up`,
            () => cluster.status(i),
            (s) => s.nodes.filter((n) => n.up).length === 3,
          );
        }
        for (const client of clients) {
          for (const [key, sum] of objects) {
            assert.equal(md5(await getBytes(client, "replicated", key)), sum, key);
          }
          const missing = await client.send(
            new HeadObjectCommand({ Bucket: "replicated", Key: "never" }),
          ).then(
            () => "exists",
            (e) => e.$metadata?.httpStatusCode,
          );
          assert.equal(missing, 404);
        }
      },
    );
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

Deno.test("replication: a node that was down catches up on its own; corrupted blocks are served right and scrubbed", async (t) => {
  const { cluster, clients } = await formCluster();
  const objects = new Map<string, string>();
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "catchup" }));
    await cluster.nodes[2].server.kill();
    for (let i = 0; i < 12; i++) {
      const data = bytes(i % 2 ? 300 : 180_000 + i, 100 + i);
      await clients[0].send(
        new PutObjectCommand({ Bucket: "catchup", Key: `while-down-${i}`, Body: data }),
      );
      objects.set(`while-down-${i}`, md5(data));
    }
    const restartedAt = Date.now();
    await cluster.nodes[2].server.launch();
    // A request right after the restart is served (the node opens S3 once it sees a majority up;
    // system_test.ts checks the wait itself).
    const first = await getBytes(clients[2], "catchup", "while-down-0");
    assert.equal(md5(first), objects.get("while-down-0"));

    await t.step("the restarted node receives what it missed without any command", async () => {
      await cluster.waitFor(
        "node 2's anti-entropy pass and block resync",
        async () => JSON.parse((await cluster.cli(2, ["worker", "list", "--json"])).stdout),
        (workers: { name: string; state: string; queueLength?: number; lastRunMs?: number }[]) => {
          const ae = workers.find((w) => w.name === "anti-entropy");
          const resync = workers.find((w) => w.name === "block resync");
          return !!ae && (ae.lastRunMs ?? 0) > restartedAt && ae.state === "idle" &&
            resync?.queueLength === 0;
        },
        60_000,
      );
    });

    await t.step(
      "alone and in degraded mode, it serves every object from its own disk",
      async () => {
        await cluster.nodes[0].server.kill();
        await cluster.nodes[1].server.kill();
        const server = cluster.nodes[2].server;
        await server.stop();
        await Deno.writeTextFile(server.configPath, '\nconsistency_mode = "degraded"\n', {
          append: true,
        });
        await server.launch();
        for (const [key, sum] of objects) {
          assert.equal(md5(await getBytes(clients[2], "catchup", key)), sum, key);
        }
        await server.stop();
        const text = await Deno.readTextFile(server.configPath);
        await Deno.writeTextFile(
          server.configPath,
          text.replace('consistency_mode = "degraded"', ""),
        );
        for (const i of [0, 1, 2]) {
          await cluster.nodes[i].server.launch();
        }
        for (const i of [0, 1, 2]) {
          await cluster.waitFor(
            `node ${i} sees 3 up`,
            () => cluster.status(i),
            (s) => s.nodes.filter((n) => n.up).length === 3,
          );
        }
      },
    );

    await t.step("a corrupted block file is never served, and scrub repairs it", async () => {
      const files = await blockFiles(cluster.nodes[1].server.dir);
      assert.ok(files.length > 0);
      const victim = files[0];
      const original = await Deno.readFile(victim);
      const damaged = original.slice();
      damaged[0] ^= 0xff;
      await Deno.writeFile(victim, damaged);
      for (const [key, sum] of objects) {
        assert.equal(md5(await getBytes(clients[1], "catchup", key)), sum, key);
      }
      await cluster.cli(1, ["repair", "scrub"]);
      const hash = victim.slice(victim.lastIndexOf("/") + 1);
      await cluster.waitFor(
        "the corrupted block to be replaced by a good copy",
        async () => sha256(await Deno.readFile(victim)),
        (h) => h === hash,
        30_000,
      );
    });
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("replication: with node clocks skewed by minutes, the newest write, part and bucket setting still win, and status names the clocks that are off", async () => {
  const offsets = [0, -5 * 60_000, 7 * 60_000];
  const { cluster, clients } = await formCluster({
    env: (i) => ({ REMISE_TEST_CLOCK_OFFSET_MS: String(offsets[i]) }),
  });
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "skew" }));
    // The node whose clock is ahead writes first, then the ones behind: each later write must win.
    for (const [round, node] of [2, 0, 1, 2, 1].entries()) {
      const body = `round ${round} through node ${node}`;
      await clients[node].send(new PutObjectCommand({ Bucket: "skew", Key: "k", Body: body }));
      for (const client of clients) {
        const got = new TextDecoder().decode(await getBytes(client, "skew", "k"));
        assert.equal(got, body, `after round ${round}`);
      }
    }
    // A part uploaded again, and a bucket's setting changed again, through a node behind the
    // one that made the change before: the later change wins.
    const upload = await clients[2].send(
      new CreateMultipartUploadCommand({ Bucket: "skew", Key: "mpu" }),
    );
    const part = (node: number, body: string) =>
      clients[node].send(
        new UploadPartCommand({
          Bucket: "skew",
          Key: "mpu",
          UploadId: upload.UploadId,
          PartNumber: 1,
          Body: body,
        }),
      );
    await part(2, "first part, through the node ahead");
    const { ETag } = await part(1, "second part, through the node behind");
    await clients[0].send(
      new CompleteMultipartUploadCommand({
        Bucket: "skew",
        Key: "mpu",
        UploadId: upload.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
      }),
    );
    assert.equal(
      new TextDecoder().decode(await getBytes(clients[0], "skew", "mpu")),
      "second part, through the node behind",
    );
    for (const [node, Status] of [[2, "Enabled"], [1, "Suspended"]] as const) {
      await clients[node].send(
        new PutBucketVersioningCommand({
          Bucket: "skew",
          VersioningConfiguration: { Status },
        }),
      );
    }
    const versioning = await clients[0].send(new GetBucketVersioningCommand({ Bucket: "skew" }));
    assert.equal(versioning.Status, "Suspended");
    // The operator is told which clocks are off, and by how much.
    const [id1, id2] = [await cluster.nodeId(1), await cluster.nodeId(2)];
    const status = await cluster.waitFor(
      "node 0 to warn of both skewed clocks",
      () => cluster.status(0),
      (s) => s.warnings.filter((w) => w.startsWith("The clock of node")).length === 2,
    );
    const skew = status.warnings.filter((w) => w.startsWith("The clock of node")).sort();
    assert.match(
      skew.join("\n"),
      new RegExp(`node ${id1.slice(0, 16)} is 300 s behind this node's`),
    );
    assert.match(
      skew.join("\n"),
      new RegExp(`node ${id2.slice(0, 16)} is 420 s ahead of this node's`),
    );
    // And in /metrics, for an alert.
    const node0 = cluster.nodes[0].server;
    const metrics = await (await fetch(`${node0.adminEndpoint}/metrics`, {
      headers: { authorization: `Bearer ${node0.adminToken}` },
    })).text();
    const offset = new RegExp(
      `^remise_cluster_node_clock_offset_seconds\\{node="${id2.slice(0, 16)}"\\} (\\S+)$`,
      "m",
    ).exec(metrics);
    assert.ok(offset && Math.abs(Number(offset[1]) - 420) < 5, metrics);
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("replication: a 4th node joins and the layout changes while a writer runs; a removed node hands over its data", async (t) => {
  const { cluster, clients, ids } = await formCluster();
  const objects = new Map<string, string>();
  let writing = true;
  const failures: string[] = [];
  await clients[0].send(new CreateBucketCommand({ Bucket: "moving" }));
  const writer = (async () => {
    for (let i = 0; writing && i < 400; i++) {
      const data = bytes(i % 3 ? 500 : 100_000 + i, 1000 + i);
      try {
        await clients[0].send(
          new PutObjectCommand({ Bucket: "moving", Key: `w-${i}`, Body: data }),
        );
        objects.set(`w-${i}`, md5(data));
      } catch (e) {
        failures.push(`w-${i}: ${e}`);
      }
    }
  })();
  try {
    await t.step(
      "a 4th node joins and takes a role; version 2 is applied while writes go on",
      async () => {
        const i = await cluster.addNode();
        const newId = await cluster.nodeId(i);
        await cluster.waitFor(
          "node 0 sees 4 up",
          () => cluster.status(0),
          (s) => s.nodes.filter((n) => n.up).length === 4,
        );
        await cluster.cli(0, ["layout", "assign", newId, "-z", "dc1", "-c", "10G"]);
        await cluster.cli(0, ["layout", "remove", ids[1]]);
        await cluster.cli(0, ["layout", "apply", "--version", "2"]);
        const layoutOf = async (n: number) =>
          JSON.parse((await cluster.cli(n, ["layout", "show", "--json"])).stdout);
        await cluster.waitFor(
          "the old layout version to be retired once every node has synced",
          async () => (await layoutOf(0)).activeVersions,
          (v) => v.length === 1 && v[0] === 2,
          120_000,
        );
        writing = false;
        await writer;
        assert.ok(objects.size > 0);
        assert.deepEqual(failures, [], "no write failed during the change");
      },
    );

    await t.step(
      "every acknowledged object is readable through every node in the new layout",
      async () => {
        const newClient = cluster.nodes[3].server.client({
          accessKeyId: (await clients[0].config.credentials()).accessKeyId,
          secretAccessKey: (await clients[0].config.credentials()).secretAccessKey,
        });
        try {
          for (const client of [clients[0], clients[2], newClient]) {
            for (const [key, sum] of objects) {
              assert.equal(md5(await getBytes(client, "moving", key)), sum, key);
            }
          }
        } finally {
          newClient.destroy();
        }
      },
    );

    await t.step(
      "the removed node hands over its blocks, and the new node holds every block",
      async () => {
        await cluster.waitFor(
          "every node to have synced version 2 (old version retired)",
          async () => {
            const statuses = await Promise.all([0, 2, 3].map((n) => cluster.status(n)));
            return statuses.map((s) => s.layoutVersion);
          },
          (v) => v.every((x) => x === 2),
          30_000,
        );
        await cluster.waitFor(
          "the removed node to hand over and delete its blocks",
          async () => (await blockFiles(cluster.nodes[1].server.dir)).length,
          (n) => n === 0,
          60_000,
        );
        const onNew = new Set(
          (await blockFiles(cluster.nodes[3].server.dir)).map((f) =>
            f.slice(f.lastIndexOf("/") + 1)
          ),
        );
        const onOld = new Set(
          (await blockFiles(cluster.nodes[0].server.dir)).map((f) =>
            f.slice(f.lastIndexOf("/") + 1)
          ),
        );
        for (const hash of onOld) assert.ok(onNew.has(hash), `block ${hash} is on the new node`);
      },
    );

    await t.step(
      "the removed node hands over its table entries, and keeps no reference to blocks",
      async () => {
        const removedDir = cluster.nodes[1].server.dir;
        await cluster.waitFor(
          "the removed node to hand over and delete its table entries",
          () => entriesByTable(removedDir),
          (counts) => Object.keys(counts).length === 0,
          60_000,
        );
        assert.equal(await referencedBlocks(removedDir), 0, "its block references were undone");
        // What it handed over is still there, on the nodes that hold it now.
        assert.ok(await objectEntries(cluster.nodes[3].server.dir) >= objects.size);
        for (const [key, sum] of objects) {
          assert.equal(md5(await getBytes(clients[2], "moving", key)), sum, key);
        }
      },
    );
  } finally {
    writing = false;
    await writer.catch(() => {});
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

/** Entries (live or tombstones) of one table stored in a node's metadata. */
async function tableEntries(dir: string, table: string): Promise<number> {
  const kv = await Deno.openKv(`${dir}/meta/metadata.kv`);
  try {
    let n = 0;
    for await (const _ of kv.list({ prefix: ["t", table] })) n++;
    return n;
  } finally {
    kv.close();
  }
}

/** How many entries (live or tombstones) of each table a node's metadata stores; tables without any are left out. */
async function entriesByTable(dir: string): Promise<Record<string, number>> {
  const kv = await Deno.openKv(`${dir}/meta/metadata.kv`);
  try {
    const counts: Record<string, number> = {};
    for await (const { key } of kv.list({ prefix: ["t"] })) {
      const table = String(key[1]);
      counts[table] = (counts[table] ?? 0) + 1;
    }
    return counts;
  } finally {
    kv.close();
  }
}

/** Object table entries (live or tombstones) stored in a node's metadata. */
const objectEntries = (dir: string) => tableEntries(dir, "object");

Deno.test("replication: tombstones are collected only once every replica has them", async () => {
  const { cluster, clients } = await formCluster({
    env: () => ({ REMISE_TEST_TOMBSTONE_GC_MS: "1500" }),
  });
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "tombs" }));
    for (let i = 0; i < 5; i++) {
      await clients[0].send(new PutObjectCommand({ Bucket: "tombs", Key: `k${i}`, Body: `v${i}` }));
    }
    // One object of blocks: its version entries and block references end as tombstones too.
    await clients[0].send(
      new PutObjectCommand({ Bucket: "tombs", Key: "blocks", Body: bytes(3_000_000, 9) }),
    );
    await cluster.nodes[2].server.kill();
    for (const key of ["k0", "k1", "k2", "k3", "k4", "blocks"]) {
      await clients[0].send(new DeleteObjectCommand({ Bucket: "tombs", Key: key }));
    }
    await new Promise((r) => setTimeout(r, 5_000));
    assert.equal(
      await objectEntries(cluster.nodes[0].server.dir),
      6,
      "kept while a replica lacks them",
    );
    assert.ok(await tableEntries(cluster.nodes[0].server.dir, "version") > 0);
    await cluster.nodes[2].server.launch();
    for (const i of [0, 1, 2]) {
      await cluster.waitFor(
        `tombstones gone on node ${i}`,
        () => objectEntries(cluster.nodes[i].server.dir),
        (n) => n === 0,
        60_000,
      );
      await cluster.waitFor(
        `deleted version entries and block references gone on node ${i}`,
        async () => [
          await tableEntries(cluster.nodes[i].server.dir, "version"),
          await tableEntries(cluster.nodes[i].server.dir, "block_ref"),
        ],
        ([versions, refs]) => versions === 0 && refs === 0,
        60_000,
      );
    }
    for (const client of clients) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: "tombs" }));
      assert.equal(listed.KeyCount, 0, "deleted objects never come back");
    }
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("replication: a data disk replaced and marked again is refilled as the node starts", async () => {
  // Logs at info: whether node 2 holds all the data of the layout is told there.
  const { cluster, clients } = await formCluster({ env: () => ({ REMISE_LOG: "info" }) });
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "refill" }));
    const objects = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const data = bytes(150_000 + i, 300 + i);
      await clients[0].send(new PutObjectCommand({ Bucket: "refill", Key: `k${i}`, Body: data }));
      objects.set(`k${i}`, md5(data));
    }
    const expected = (await blockFiles(cluster.nodes[0].server.dir)).length;
    assert.ok(expected > 0);
    const server = cluster.nodes[2].server;
    await cluster.waitFor(
      "node 2 to hold every block",
      async () => (await blockFiles(server.dir)).length,
      (n) => n === expected,
    );
    // Node 2 is done with the layout's data (whose sync would queue every block),
    // and nothing is left queued from the uploads: only the refill may bring blocks back.
    await cluster.waitFor(
      "node 2 to hold all the data of layout version 1",
      () => Promise.resolve(server.output),
      (output) => output.includes("this node has all the data of layout version 1"),
      60_000,
    );
    await cluster.waitFor(
      "node 2's block resync queue to be empty",
      async () => JSON.parse((await cluster.cli(2, ["worker", "list", "--json"])).stdout),
      (workers: { name: string; queueLength?: number }[]) =>
        workers.find((w) => w.name === "block resync")?.queueLength === 0,
    );
    const dataDir = `${server.dir}/data`;
    const marker = await Deno.readTextFile(`${dataDir}/remise-data-dir`);
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.mkdir(dataDir);
    // What the refusal to start on an unmarked data_dir tells the operator to do.
    await Deno.writeTextFile(`${dataDir}/remise-data-dir`, marker);
    await server.launch();
    await cluster.waitFor(
      "node 2's block files to come back without any read",
      async () => (await blockFiles(server.dir)).length,
      (n) => n === expected,
      60_000,
    );
    for (const [key, sum] of objects) {
      assert.equal(md5(await getBytes(clients[2], "refill", key)), sum, key);
    }
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("replication: a node that lost both disks is rebuilt from the others with empty directories", async () => {
  const { cluster, clients } = await formCluster();
  const objects = new Map<string, Uint8Array>();
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "rebuilt" }));
    for (let i = 0; i < 60; i++) {
      const data = bytes(i % 10 === 0 ? 300_000 + i : 50 + i, 500 + i);
      await clients[0].send(new PutObjectCommand({ Bucket: "rebuilt", Key: `k-${i}`, Body: data }));
      objects.set(`k-${i}`, data);
    }
    // Node 2's disks are replaced: the same certificate, empty metadata_dir and data_dir, as the
    // README tells. Degraded mode makes its reads its own copy's, to see what it holds.
    const victim = cluster.nodes[2].server;
    await victim.stop();
    await Deno.remove(`${victim.dir}/meta`, { recursive: true });
    await Deno.remove(`${victim.dir}/data`, { recursive: true });
    await Deno.writeTextFile(
      victim.configPath,
      `${await Deno.readTextFile(victim.configPath)}\nconsistency_mode = "degraded"\n`,
    );
    await victim.launch();
    const wanted = (await blockFiles(cluster.nodes[0].server.dir)).length;
    await cluster.waitFor(
      "node 2 to hold every entry (of every table) and every block again",
      async () => {
        let readable = 0;
        for (const [key, data] of objects) {
          if (md5(await getBytes(clients[2], "rebuilt", key)) === md5(data)) readable++;
        }
        return { readable, blocks: (await blockFiles(victim.dir)).length };
      },
      (held) => held.readable === objects.size && held.blocks === wanted,
      60_000,
    );
    // Holding everything again, it reports layout version 1 synced: reads count on it again.
    const victimId = await cluster.nodeId(2);
    await cluster.waitFor(
      "node 0 to see node 2 synced again",
      () => cluster.status(0),
      (s) => s.nodes.find((n) => n.id === victimId)?.syncedLayoutVersion === 1,
      30_000,
    );
    // With the others gone, node 2 alone serves every object, byte for byte.
    await cluster.nodes[0].server.stop();
    await cluster.nodes[1].server.stop();
    for (const [key, data] of objects) {
      assert.equal(md5(await getBytes(clients[2], "rebuilt", key)), md5(data), key);
    }
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

Deno.test("replication: a node lost for good is replaced, and the old layout is retired without it", async () => {
  const { cluster, clients, ids } = await formCluster();
  const objects = new Map<string, string>();
  try {
    await clients[0].send(new CreateBucketCommand({ Bucket: "replaced" }));
    for (let i = 0; i < 30; i++) {
      const data = bytes(i % 5 === 0 ? 200_000 + i : 100 + i, 700 + i);
      await clients[0].send(
        new PutObjectCommand({ Bucket: "replaced", Key: `k-${i}`, Body: data }),
      );
      objects.set(`k-${i}`, md5(data));
    }
    // Node 1's site burned down: a new node takes its zone, and node 1 leaves the layout.
    await cluster.nodes[1].server.kill();
    const i = await cluster.addNode();
    const newId = await cluster.nodeId(i);
    await cluster.waitFor(
      "node 0 to see the new node",
      () => cluster.status(0),
      (s) => s.nodes.some((n) => n.id === newId && n.up),
    );
    await cluster.cli(0, ["layout", "assign", newId, "-z", "dc2", "-c", "10G"]);
    await cluster.cli(0, ["layout", "remove", ids[1]]);
    await cluster.cli(0, ["layout", "apply", "--version", "2"]);
    // The nodes of version 2 sync from the replicas still up (a quorum of version 1's), so
    // version 1, which names the dead node, is retired rather than kept for ever.
    await cluster.waitFor(
      "layout version 1 to be retired",
      async () => JSON.parse((await cluster.cli(0, ["layout", "show", "--json"])).stdout),
      (l) => l.activeVersions.length === 1 && l.activeVersions[0] === 2,
      60_000,
    );
    const newClient = cluster.nodes[i].server.client({
      accessKeyId: (await clients[0].config.credentials()).accessKeyId,
      secretAccessKey: (await clients[0].config.credentials()).secretAccessKey,
    });
    try {
      for (const [key, sum] of objects) {
        assert.equal(md5(await getBytes(newClient, "replaced", key)), sum, key);
      }
    } finally {
      newClient.destroy();
    }
  } finally {
    for (const c of clients) c.destroy();
    await cluster.close();
  }
});

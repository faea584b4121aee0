/**
 * A disk at its reserve (`min_free_space`): uploads are refused with 507
 * InsufficientCapacity, while reads and deletes go on and nothing stored
 * changes; in a cluster, a node at its reserve stores nothing new and the
 * other replicas take the writes, its clients' among them. A reserve larger than any disk stands for a full
 * disk, so that no test needs a file system of its own.
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { deterministicBytes, type TestServer, withServer } from "./harness.ts";
import { TestCluster } from "./cluster_harness.ts";
import { assertS3Error, blockFiles, getBytes, sameBytes, snapshotBucket } from "./_s3_helpers.ts";

/** A reserve no test machine's disk can keep: every disk is "full". */
const UNREACHABLE_RESERVE = 'min_free_space = "4000T"';

/** Restarts a server with `line` added to its configuration, or with it removed. */
async function restartWith(server: TestServer, line: string, present: boolean): Promise<void> {
  const config = (await Deno.readTextFile(server.configPath)).replace(`\n${line}`, "");
  await Deno.writeTextFile(server.configPath, present ? `${config}\n${line}` : config);
  await server.restart();
}

Deno.test("a node whose disks are at their reserve refuses uploads, and serves and deletes", async () => {
  await withServer(async (server, s3, credentials) => {
    const bucket = "full";
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const large = deterministicBytes(2_500_000, 1);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "large", Body: large }));
    for (const key of ["small-1", "small-2", "small-3"]) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}` }));
    }
    const upload = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: "multipart" }),
    );
    const before = await snapshotBucket(s3, bucket);
    // A healthy node alone: nothing to warn of (a monitor checks for an empty list), a note.
    const healthy = await (await server.admin("GET", "/v1/status")).json();
    assert.deepEqual(healthy.warnings, []);
    assert.match(healthy.notes[0], /^This node runs alone/);

    await restartWith(server, UNREACHABLE_RESERVE, true);
    const s3Full = server.client(credentials);
    try {
      const refused = await assertS3Error(
        s3Full.send(new PutObjectCommand({ Bucket: bucket, Key: "new", Body: "x" })),
        "InsufficientCapacity",
        507,
      );
      assert.match(refused.message, /Not enough free space on the (metadata|data) disk/);
      await assertS3Error(
        s3Full.send(
          new PutObjectCommand({ Bucket: bucket, Key: "large", Body: deterministicBytes(2e6, 2) }),
        ),
        "InsufficientCapacity",
        507,
      );
      await assertS3Error(
        s3Full.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "other" })),
        "InsufficientCapacity",
        507,
      );
      await assertS3Error(
        s3Full.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: "multipart",
            UploadId: upload.UploadId,
            PartNumber: 1,
            Body: deterministicBytes(1e6, 3),
          }),
        ),
        "InsufficientCapacity",
        507,
      );
      await assertS3Error(
        s3Full.send(
          new CopyObjectCommand({ Bucket: bucket, Key: "copy", CopySource: `${bucket}/large` }),
        ),
        "InsufficientCapacity",
        507,
      );
      const post = await createPresignedPost(s3Full, { Bucket: bucket, Key: "form" });
      const form = new FormData();
      for (const [name, value] of Object.entries(post.fields)) form.append(name, value);
      form.append("file", new Blob(["form body"]));
      const posted = await fetch(post.url, { method: "POST", body: form });
      assert.equal(posted.status, 507, await posted.text());

      // New entries are refused too: a bucket is one.
      await assertS3Error(
        s3Full.send(new CreateBucketCommand({ Bucket: "new-bucket" })),
        "InsufficientCapacity",
        507,
      );

      // Nothing changed: every object reads back as it was.
      assert.deepEqual(await snapshotBucket(s3Full, bucket), before);
      assert.ok(sameBytes(await getBytes(s3Full, bucket, "large"), large));

      // Deletes, which make room, go on.
      await s3Full.send(new DeleteObjectCommand({ Bucket: bucket, Key: "small-1" }));
      const deleted = await s3Full.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: [{ Key: "small-2" }, { Key: "large" }] },
        }),
      );
      assert.equal(deleted.Errors?.length ?? 0, 0);
      const listed = await s3Full.send(new ListObjectsV2Command({ Bucket: bucket }));
      assert.deepEqual(listed.Contents?.map((o) => o.Key), ["small-3"]);

      // `remise status` tells the operator why.
      const status = await (await server.admin("GET", "/v1/status")).json();
      for (const disk of ["data disk", "metadata disk"]) {
        assert.ok(
          status.warnings.some((w: string) =>
            w.startsWith(`This node: its ${disk} has`) && w.includes("less than its min_free_space")
          ),
          JSON.stringify(status.warnings),
        );
        // And the node's log, from its start, before any upload fails.
        assert.match(
          server.output,
          new RegExp(`This node: its ${disk} has .* free, less than its min_free_space`),
        );
      }
    } finally {
      s3Full.destroy();
    }

    await restartWith(server, UNREACHABLE_RESERVE, false);
    const s3Again = server.client(credentials);
    try {
      await s3Again.send(new PutObjectCommand({ Bucket: bucket, Key: "new", Body: "x" }));
      await s3Again.send(new HeadObjectCommand({ Bucket: bucket, Key: "new" }));
      await s3Again.send(new CreateBucketCommand({ Bucket: "new-bucket" }));
      const buckets = await s3Again.send(new ListBucketsCommand({}));
      assert.deepEqual(buckets.Buckets?.map((b) => b.Name), ["full", "new-bucket"]);
    } finally {
      s3Again.destroy();
    }
  });
});

Deno.test("in a cluster, a node at its reserve stores nothing new, and its clients' uploads go to the others", async () => {
  const cluster = await TestCluster.start(3, {
    extraConfig: "replication_factor = 3",
    blockSize: 65536,
  });
  const clients = [];
  try {
    await cluster.layoutOneZoneEach();
    const created = JSON.parse((await cluster.cli(0, ["key", "create", "app", "--json"])).stdout);
    const credentials = {
      accessKeyId: created.accessKeyId,
      secretAccessKey: created.secretAccessKey,
    };
    await restartWith(cluster.nodes[2].server, UNREACHABLE_RESERVE, true);
    clients.push(...cluster.nodes.map((n) => n.server.client(credentials)));
    await clients[0].send(new CreateBucketCommand({ Bucket: "cluster-full" }));

    // Two of three replicas have room: a write quorum.
    const data = deterministicBytes(300_000, 4);
    await clients[0].send(
      new PutObjectCommand({ Bucket: "cluster-full", Key: "stored", Body: data }),
    );
    for (const client of clients) {
      assert.ok(sameBytes(await getBytes(client, "cluster-full", "stored"), data));
    }
    // The full node still takes uploads from its clients: the other two keep them.
    const viaFull = deterministicBytes(200_000, 6);
    await clients[2].send(
      new PutObjectCommand({ Bucket: "cluster-full", Key: "via-2", Body: viaFull }),
    );
    await clients[2].send(
      new PutObjectCommand({ Bucket: "cluster-full", Key: "tiny-2", Body: "x" }),
    );
    const { UploadId } = await clients[2].send(
      new CreateMultipartUploadCommand({ Bucket: "cluster-full", Key: "mpu-2" }),
    );
    const part = await clients[2].send(
      new UploadPartCommand({
        Bucket: "cluster-full",
        Key: "mpu-2",
        UploadId,
        PartNumber: 1,
        Body: viaFull,
      }),
    );
    await clients[2].send(
      new CompleteMultipartUploadCommand({
        Bucket: "cluster-full",
        Key: "mpu-2",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    for (const client of clients) {
      assert.ok(sameBytes(await getBytes(client, "cluster-full", "via-2"), viaFull));
      assert.ok(sameBytes(await getBytes(client, "cluster-full", "mpu-2"), viaFull));
      assert.equal(new TextDecoder().decode(await getBytes(client, "cluster-full", "tiny-2")), "x");
    }

    // Every node's `remise status` names the full node, once its status has spread.
    const fullId = await cluster.nodeId(2);
    await cluster.waitFor(
      "node 0 warns that node 2's data disk is under its reserve",
      () => cluster.status(0),
      (s) =>
        s.warnings.some((w) =>
          w.startsWith(`Node ${fullId.slice(0, 16)}: its data disk has`) &&
          w.includes("it stores no new blocks")
        ),
      15_000,
    );

    // One of three has room: no quorum for the blocks.
    await restartWith(cluster.nodes[1].server, UNREACHABLE_RESERVE, true);
    const refused = await assertS3Error(
      clients[0].send(
        new PutObjectCommand({
          Bucket: "cluster-full",
          Key: "refused",
          Body: deterministicBytes(300_000, 5),
        }),
      ),
      "InsufficientCapacity",
      507,
    );
    assert.match(refused.message, /too little free space on 2 replicas/);
    // An object small enough to live in the metadata is refused as well: the
    // full replicas take no new entries.
    await assertS3Error(
      clients[0].send(new PutObjectCommand({ Bucket: "cluster-full", Key: "tiny", Body: "tiny" })),
      "InsufficientCapacity",
      507,
    );
    await assertS3Error(
      clients[0].send(new HeadObjectCommand({ Bucket: "cluster-full", Key: "refused" })),
      "NotFound",
      404,
    );
    assert.ok(sameBytes(await getBytes(clients[1], "cluster-full", "stored"), data));

    // Given room again, the node that was full receives the blocks it missed.
    const names = async (i: number) =>
      (await blockFiles(cluster.nodes[i].server.dir)).map((f) => f.slice(f.lastIndexOf("/") + 1));
    assert.deepEqual(await names(2), [], "the full node stored no block");
    await restartWith(cluster.nodes[2].server, UNREACHABLE_RESERVE, false);
    await cluster.cli(2, ["repair", "blocks"]);
    const storedBlocks = [data, viaFull].reduce((n, d) => n + Math.ceil(d.byteLength / 65536), 0);
    const caughtUp = await cluster.waitFor(
      "node 2 fetches the blocks of the objects written while it was full",
      () => names(2),
      (n) => n.length === storedBlocks,
      30_000,
    );
    const onNode0 = new Set(await names(0));
    assert.ok(caughtUp.every((name) => onNode0.has(name)));
  } finally {
    for (const client of clients) client.destroy();
    await cluster.close();
  }
});

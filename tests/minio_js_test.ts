/**
 * The MinIO JavaScript SDK (npm `minio`, which many Node applications use
 * for any S3 store) against a real `remise server`: its own SigV4 signer,
 * multipart uploads, server-side compose, presigned URLs and form policies,
 * tags, versioning, object lock, and the errors it turns into codes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import * as Minio from "minio";
import { deterministicBytes, withServer } from "./harness.ts";

const MiB = 1024 * 1024;
const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("hex");

async function readAll(stream: Readable): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk as Uint8Array);
  return new Uint8Array(Buffer.concat(chunks));
}

function collect<T>(stream: NodeJS.ReadableStream): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.on("data", (item: T) => items.push(item));
    stream.on("end", () => resolve(items));
    stream.on("error", reject);
  });
}

/** The code of the S3Error a call fails with. */
async function errorCode(call: Promise<unknown>): Promise<string> {
  return await call.then(() => "no error", (e) => (e as { code?: string }).code ?? String(e));
}

Deno.test("MinIO JavaScript SDK: buckets, objects, multipart, presigned URLs, tags, locks", async (t) => {
  await withServer(async (server, _s3, credentials) => {
    const url = new URL(server.endpoint);
    const client = new Minio.Client({
      endPoint: url.hostname,
      port: Number(url.port),
      useSSL: false,
      accessKey: credentials.accessKeyId,
      secretKey: credentials.secretAccessKey,
      region: server.options.region ?? "test-region",
      pathStyle: true,
      partSize: 5 * MiB,
    });
    const bucket = "minio-js";

    await t.step("buckets: make, exists, list; a second make is refused", async () => {
      await client.makeBucket(bucket);
      assert.equal(await client.bucketExists(bucket), true);
      assert.equal(await client.bucketExists("no-such-bucket"), false);
      assert.ok((await client.listBuckets()).some((b) => b.name === bucket));
      assert.equal(await errorCode(client.makeBucket(bucket)), "BucketAlreadyOwnedByYou");
    });

    await t.step("objects: put with metadata, stat, get, ranges, copy, list, remove", async () => {
      const put = await client.putObject(bucket, "docs/hello.txt", "hello world", 11, {
        "Content-Type": "text/plain",
        "X-Amz-Meta-Owner": "family",
      });
      assert.equal(put.etag, md5(new TextEncoder().encode("hello world")));
      const stat = await client.statObject(bucket, "docs/hello.txt");
      assert.equal(stat.size, 11);
      assert.equal(stat.metaData["content-type"], "text/plain");
      assert.equal(stat.metaData["owner"], "family");
      const body = new TextDecoder().decode(
        await readAll(await client.getObject(bucket, "docs/hello.txt")),
      );
      assert.equal(body, "hello world");
      const part = await readAll(await client.getPartialObject(bucket, "docs/hello.txt", 6, 5));
      assert.equal(new TextDecoder().decode(part), "world");
      await client.copyObject(
        bucket,
        "docs/copy.txt",
        `/${bucket}/docs/hello.txt`,
        new Minio.CopyConditions(),
      );
      const listed = await collect<Minio.BucketItem>(client.listObjectsV2(bucket, "", true));
      assert.deepEqual(listed.map((o) => o.name), ["docs/copy.txt", "docs/hello.txt"]);
      const top = await collect<Minio.BucketItem>(client.listObjectsV2(bucket, "", false));
      assert.deepEqual(top.map((o) => o.prefix), ["docs/"]);
      await client.removeObjects(bucket, ["docs/copy.txt"]);
      assert.equal(await errorCode(client.statObject(bucket, "docs/copy.txt")), "NotFound");
      assert.equal(await errorCode(client.getObject(bucket, "docs/nope")), "NoSuchKey");
    });

    await t.step(
      "a 12 MiB stream goes up as a multipart upload; compose copies parts",
      async () => {
        const data = deterministicBytes(12 * MiB + 100, 21);
        const stream = Readable.from([Buffer.from(data)], { objectMode: false });
        const put = await client.putObject(bucket, "big.bin", stream, data.byteLength);
        // A multipart upload (under Deno, the SDK's splitter sends it as one part).
        assert.match(put.etag, /-\d+$/);
        assert.equal(md5(await readAll(await client.getObject(bucket, "big.bin"))), md5(data));
        await client.composeObject(
          new Minio.CopyDestinationOptions({ Bucket: bucket, Object: "twice.bin" }),
          [
            new Minio.CopySourceOptions({ Bucket: bucket, Object: "big.bin" }),
            new Minio.CopySourceOptions({ Bucket: bucket, Object: "big.bin" }),
          ],
        );
        const twice = await readAll(await client.getObject(bucket, "twice.bin"));
        assert.equal(md5(twice), md5(new Uint8Array(Buffer.concat([data, data]))));
        const incomplete = await collect(client.listIncompleteUploads(bucket, "", true));
        assert.deepEqual(incomplete, []);
      },
    );

    await t.step("presigned GET and PUT URLs, and a form policy", async () => {
      const getUrl = await client.presignedGetObject(bucket, "docs/hello.txt", 60);
      assert.equal(await (await fetch(getUrl)).text(), "hello world");
      const putUrl = await client.presignedPutObject(bucket, "presigned.txt", 60);
      const put = await fetch(putUrl, { method: "PUT", body: "sent by URL" });
      await put.body?.cancel();
      assert.equal(put.status, 200);
      const policy = client.newPostPolicy();
      policy.setBucket(bucket);
      policy.setKey("posted.txt");
      policy.setExpires(new Date(Date.now() + 60_000));
      policy.setContentType("text/plain");
      const { postURL, formData } = await client.presignedPostPolicy(policy);
      const form = new FormData();
      for (const [name, value] of Object.entries(formData)) form.append(name, value as string);
      form.append("file", new Blob(["posted"]), "posted.txt");
      const posted = await fetch(postURL, { method: "POST", body: form });
      await posted.body?.cancel();
      assert.equal(posted.status, 204);
      const stat = await client.statObject(bucket, "posted.txt");
      assert.equal(stat.metaData["content-type"], "text/plain");
      // A URL whose signature no longer matches is refused.
      const bad = await fetch(getUrl.replace("hello.txt", "other.txt"));
      await bad.body?.cancel();
      assert.equal(bad.status, 403);
    });

    await t.step("object and bucket tags", async () => {
      await client.setObjectTagging(bucket, "docs/hello.txt", { kind: "greeting" });
      assert.deepEqual(await client.getObjectTagging(bucket, "docs/hello.txt"), [
        { Key: "kind", Value: "greeting" },
      ]);
      // The SDK types a version id as required; empty, it is not sent.
      await client.removeObjectTagging(bucket, "docs/hello.txt", { versionId: "" });
      assert.deepEqual(await client.getObjectTagging(bucket, "docs/hello.txt"), []);
      await client.setBucketTagging(bucket, { team: "home" });
      assert.deepEqual(await client.getBucketTagging(bucket), [{ Key: "team", Value: "home" }]);
      await client.removeBucketTagging(bucket);
      assert.equal(await errorCode(client.getBucketTagging(bucket)), "NoSuchTagSet");
    });

    await t.step("versioning, object lock, retention and legal hold", async () => {
      const locked = "minio-js-locked";
      await client.makeBucket(locked, "", { ObjectLocking: true });
      assert.deepEqual(await client.getBucketVersioning(locked), { Status: "Enabled" });
      await client.setObjectLockConfig(locked, { mode: "GOVERNANCE", unit: "Days", validity: 1 });
      // The SDK's types say void; it answers the configuration.
      const lock = await client.getObjectLockConfig(locked) as unknown as { mode?: string };
      assert.equal(lock.mode, "GOVERNANCE");
      const { versionId } = await client.putObject(locked, "backup.tar", "archive");
      assert.ok(versionId);
      const retention = await client.getObjectRetention(locked, "backup.tar", { versionId });
      assert.equal(retention?.mode, "GOVERNANCE");
      await client.setObjectLegalHold(locked, "backup.tar", { status: "ON", versionId });
      assert.deepEqual(
        await client.getObjectLegalHold(locked, "backup.tar", { versionId }),
        { Status: "ON" },
      );
      assert.equal(
        await errorCode(client.removeObject(locked, "backup.tar", { versionId })),
        "AccessDenied",
      );
      await client.setObjectLegalHold(locked, "backup.tar", { status: "OFF", versionId });
      // The owner's key may bypass GOVERNANCE retention.
      await client.removeObject(locked, "backup.tar", { versionId, governanceBypass: true });
      assert.equal(await errorCode(client.statObject(locked, "backup.tar")), "NotFound");
    });

    await t.step("a bucket with objects is not removed; an empty one is", async () => {
      assert.equal(await errorCode(client.removeBucket(bucket)), "BucketNotEmpty");
      const all = await collect<Minio.BucketItem>(client.listObjectsV2(bucket, "", true));
      await client.removeObjects(bucket, all.map((o) => o.name!));
      await client.removeBucket(bucket);
      assert.equal(await client.bucketExists(bucket), false);
    });
  });
});

/**
 * CopyObject and DeleteObjects through the AWS SDK against a real
 * `remise server`: copies within and across buckets, metadata directives,
 * copy-source conditionals, copies that share blocks with their source, batch
 * deletes with odd keys, Quiet mode, and the MalformedXML refusals. After
 * every refused request the store must hold exactly what it held before.
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
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { deterministicBytes, TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  checksumOf,
  getBytes,
  keysOf,
  md5Base64,
  md5Hex,
  objectPath,
  sameBytes,
  signedFetch,
  snapshotStore,
} from "./_s3_helpers.ts";

const MiB = 1024 * 1024;
const SRC = "source";
const DST = "destination";
const DEL = "deletes";
const enc = new TextEncoder();

/** Total bytes of the files under `dir` (the block store). */
async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) total += await diskBytes(path);
      else if (entry.isFile) total += (await Deno.stat(path)).size;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return total;
}

/** The XML body of a DeleteObjects request for `keys`. */
function deleteXml(keys: string[], quiet = false): string {
  const esc = (s: string) =>
    s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#13;");
  return `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${
    quiet ? "<Quiet>true</Quiet>" : ""
  }${keys.map((k) => `<Object><Key>${esc(k)}</Key></Object>`).join("")}</Delete>`;
}

Deno.test("S3 CopyObject and DeleteObjects", async (t) => {
  const server = await TestServer.start();
  const credentials = await server.createKey("owner");
  const s3 = server.client(credentials);
  try {
    for (const b of [SRC, DST, DEL]) await s3.send(new CreateBucketCommand({ Bucket: b }));
    const small = enc.encode("a small object, stored inline");
    const big = deterministicBytes(3 * MiB + 12345, 7);
    await s3.send(
      new PutObjectCommand({
        Bucket: SRC,
        Key: "a.txt",
        Body: small,
        ContentType: "text/plain",
        CacheControl: "max-age=60",
        ContentDisposition: "inline",
        Metadata: { color: "blue", size: "small" },
      }),
    );
    const bigPut = await s3.send(
      new PutObjectCommand({
        Bucket: SRC,
        Key: "dir/big.bin",
        Body: big,
        ContentType: "application/x-big",
        Metadata: { kind: "big" },
      }),
    );
    const srcHead = await s3.send(new HeadObjectCommand({ Bucket: SRC, Key: "a.txt" }));

    /** Runs `fn` (a refused request) and checks the whole store did not change. */
    const unchanged = async (fn: () => Promise<unknown>) => {
      const before = await snapshotStore(s3);
      await fn();
      assert.deepEqual(
        await snapshotStore(s3),
        before,
        "the store changed after a refused request",
      );
    };

    await t.step("CopyObject in the same bucket keeps data and metadata (COPY)", async () => {
      const res = await s3.send(
        new CopyObjectCommand({ Bucket: SRC, Key: "a-copy.txt", CopySource: `${SRC}/a.txt` }),
      );
      assert.equal(res.CopyObjectResult?.ETag, `"${md5Hex(small)}"`);
      assert.ok(res.CopyObjectResult?.LastModified instanceof Date);
      const head = await s3.send(new HeadObjectCommand({ Bucket: SRC, Key: "a-copy.txt" }));
      assert.equal(head.ETag, srcHead.ETag);
      assert.equal(head.ContentType, "text/plain");
      assert.equal(head.CacheControl, "max-age=60");
      assert.equal(head.ContentDisposition, "inline");
      assert.deepEqual(head.Metadata, { color: "blue", size: "small" });
      assert.ok(sameBytes(await getBytes(s3, SRC, "a-copy.txt"), small));
    });

    await t.step("CopyObject to another bucket, a multi-block object", async () => {
      const res = await s3.send(
        new CopyObjectCommand({
          Bucket: DST,
          Key: "big-copy.bin",
          CopySource: `${SRC}/dir/big.bin`,
        }),
      );
      assert.equal(res.CopyObjectResult?.ETag, bigPut.ETag);
      const head = await s3.send(new HeadObjectCommand({ Bucket: DST, Key: "big-copy.bin" }));
      assert.equal(head.ContentLength, big.byteLength);
      assert.equal(head.ContentType, "application/x-big");
      assert.deepEqual(head.Metadata, { kind: "big" });
      assert.ok(sameBytes(await getBytes(s3, DST, "big-copy.bin"), big));
    });

    await t.step(
      "a copy keeps the source's checksum, or gets one in the algorithm asked",
      async () => {
        const copy = (key: string, source: string, algorithm?: "SHA256") =>
          s3.send(
            new CopyObjectCommand({
              Bucket: DST,
              Key: key,
              CopySource: `${SRC}/${source}`,
              ChecksumAlgorithm: algorithm,
            }),
          );
        const head = (key: string, partNumber?: number) =>
          s3.send(
            new HeadObjectCommand({
              Bucket: DST,
              Key: key,
              PartNumber: partNumber,
              ChecksumMode: "ENABLED",
            }),
          );
        // The SDK sent the source's CRC32 with its PutObject.
        const kept = await copy("sum-kept.bin", "dir/big.bin");
        assert.equal(kept.CopyObjectResult?.ChecksumCRC32, checksumOf("CRC32", big));
        const sources = { "dir/big.bin": big, "a.txt": small };
        for (const [source, data] of Object.entries(sources)) {
          const key = `sum-${source}`;
          const copied = await copy(key, source, "SHA256");
          const sha256 = checksumOf("SHA256", data);
          assert.equal(copied.CopyObjectResult?.ChecksumSHA256, sha256, key);
          assert.equal(copied.CopyObjectResult?.ChecksumType, "FULL_OBJECT", key);
          const got = await head(key);
          assert.equal(got.ChecksumSHA256, sha256, key);
          assert.equal(got.ChecksumCRC32, undefined, key);
        }

        // A multipart source: its parts' checksums are in its algorithm. A copy in another
        // algorithm has the whole object's checksum only; a copy in the same keeps them.
        const parts = [deterministicBytes(5 * MiB, 31), deterministicBytes(1000, 32)];
        const created = await s3.send(
          new CreateMultipartUploadCommand({
            Bucket: SRC,
            Key: "mp.bin",
            ChecksumAlgorithm: "CRC32",
          }),
        );
        const completed = [];
        for (const [i, body] of parts.entries()) {
          const part = await s3.send(
            new UploadPartCommand({
              Bucket: SRC,
              Key: "mp.bin",
              UploadId: created.UploadId,
              PartNumber: i + 1,
              Body: body,
              ChecksumAlgorithm: "CRC32",
            }),
          );
          completed.push({ PartNumber: i + 1, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32 });
        }
        await s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: SRC,
            Key: "mp.bin",
            UploadId: created.UploadId,
            MultipartUpload: { Parts: completed },
          }),
        );
        await copy("mp-same.bin", "mp.bin");
        assert.equal((await head("mp-same.bin", 1)).ChecksumCRC32, checksumOf("CRC32", parts[0]));
        await copy("mp-sha256.bin", "mp.bin", "SHA256");
        const firstPart = await head("mp-sha256.bin", 1);
        assert.equal(firstPart.ChecksumSHA256, undefined, "no part checksum in SHA-256 is known");
        assert.equal(firstPart.ChecksumCRC32, undefined);
        const whole = new Uint8Array(parts[0].byteLength + parts[1].byteLength);
        whole.set(parts[0]);
        whole.set(parts[1], parts[0].byteLength);
        assert.equal((await head("mp-sha256.bin")).ChecksumSHA256, checksumOf("SHA256", whole));

        await unchanged(async () => {
          const res = await signedFetch(server, credentials, {
            method: "PUT",
            path: objectPath(DST, "sum-refused.bin"),
            headers: {
              "x-amz-copy-source": `/${SRC}/a.txt`,
              "x-amz-checksum-algorithm": "BLAKE3",
            },
          });
          await assertErrorResponse(res, 400, "InvalidRequest");
        });
      },
    );

    await t.step("CopySource with an escaped key and a leading slash", async () => {
      const key = "odd key/ünï+&=.txt";
      await s3.send(new PutObjectCommand({ Bucket: SRC, Key: key, Body: enc.encode("odd") }));
      await s3.send(
        new CopyObjectCommand({
          Bucket: DST,
          Key: "odd-copy",
          CopySource: `/${SRC}/${encodeURIComponent(key).replace(/%2F/g, "/")}`,
        }),
      );
      assert.deepEqual(await getBytes(s3, DST, "odd-copy"), enc.encode("odd"));
    });

    await t.step("MetadataDirective COPY ignores new metadata; REPLACE replaces it", async () => {
      await s3.send(
        new CopyObjectCommand({
          Bucket: DST,
          Key: "copy-directive",
          CopySource: `${SRC}/a.txt`,
          MetadataDirective: "COPY",
          Metadata: { ignored: "yes" },
          ContentType: "application/ignored",
        }),
      );
      const copied = await s3.send(new HeadObjectCommand({ Bucket: DST, Key: "copy-directive" }));
      assert.deepEqual(copied.Metadata, { color: "blue", size: "small" });
      assert.equal(copied.ContentType, "text/plain");

      await s3.send(
        new CopyObjectCommand({
          Bucket: DST,
          Key: "replace-directive",
          CopySource: `${SRC}/a.txt`,
          MetadataDirective: "REPLACE",
          Metadata: { shape: "round" },
          ContentType: "application/json",
        }),
      );
      const replaced = await s3.send(
        new HeadObjectCommand({ Bucket: DST, Key: "replace-directive" }),
      );
      assert.deepEqual(replaced.Metadata, { shape: "round" });
      assert.equal(replaced.ContentType, "application/json");
      assert.equal(replaced.CacheControl, undefined, "REPLACE drops the source's Cache-Control");
      assert.equal(replaced.ETag, srcHead.ETag);
      assert.ok(sameBytes(await getBytes(s3, DST, "replace-directive"), small));

      await unchanged(() =>
        assertS3Error(
          s3.send(
            new CopyObjectCommand({
              Bucket: DST,
              Key: "bad-directive",
              CopySource: `${SRC}/a.txt`,
              MetadataDirective: "MERGE" as "COPY",
            }),
          ),
          "InvalidArgument",
          400,
        )
      );
    });

    await t.step(
      "copying an object onto itself: REPLACE or a storage class works, COPY alone is InvalidRequest",
      async () => {
        await s3.send(
          new PutObjectCommand({ Bucket: DST, Key: "self", Body: big, Metadata: { v: "1" } }),
        );
        await unchanged(() =>
          assertS3Error(
            s3.send(new CopyObjectCommand({ Bucket: DST, Key: "self", CopySource: `${DST}/self` })),
            "InvalidRequest",
            400,
          )
        );
        await unchanged(() =>
          assertS3Error(
            s3.send(
              new CopyObjectCommand({
                Bucket: DST,
                Key: "self",
                CopySource: `${DST}/self`,
                MetadataDirective: "COPY",
              }),
            ),
            "InvalidRequest",
            400,
          )
        );
        const res = await s3.send(
          new CopyObjectCommand({
            Bucket: DST,
            Key: "self",
            CopySource: `${DST}/self`,
            MetadataDirective: "REPLACE",
            Metadata: { v: "2" },
            ContentType: "application/x-self",
          }),
        );
        assert.equal(res.CopyObjectResult?.ETag, `"${md5Hex(big)}"`);
        const head = await s3.send(new HeadObjectCommand({ Bucket: DST, Key: "self" }));
        assert.deepEqual(head.Metadata, { v: "2" });
        assert.equal(head.ContentType, "application/x-self");
        assert.ok(sameBytes(await getBytes(s3, DST, "self"), big), "data intact after self-copy");
        // `aws s3 cp s3://b/k s3://b/k --storage-class STANDARD_IA` sends COPY with a class.
        const reclassed = await s3.send(
          new CopyObjectCommand({
            Bucket: DST,
            Key: "self",
            CopySource: `${DST}/self`,
            StorageClass: "STANDARD_IA",
          }),
        );
        assert.equal(reclassed.CopyObjectResult?.ETag, `"${md5Hex(big)}"`);
        const after = await s3.send(new HeadObjectCommand({ Bucket: DST, Key: "self" }));
        assert.deepEqual(after.Metadata, { v: "2" }, "COPY keeps the metadata");
        assert.ok(sameBytes(await getBytes(s3, DST, "self"), big), "data intact after reclassing");
      },
    );

    await t.step(
      "copying an object onto itself with a checksum algorithm gives it that checksum",
      async () => {
        // `copy_object(..., CopySource=same, ChecksumAlgorithm=...)`: how AWS documents adding or
        // changing an object's checksum.
        const objects: [string, Uint8Array][] = [
          ["self-checksum-big", big],
          ["self-checksum-small", small],
        ];
        for (const [key, body] of objects) {
          await s3.send(
            new PutObjectCommand({ Bucket: DST, Key: key, Body: body, Metadata: { v: "1" } }),
          );
          const before = await s3.send(
            new HeadObjectCommand({ Bucket: DST, Key: key, ChecksumMode: "ENABLED" }),
          );
          assert.equal(before.ChecksumSHA256, undefined);
          const res = await s3.send(
            new CopyObjectCommand({
              Bucket: DST,
              Key: key,
              CopySource: `${DST}/${key}`,
              ChecksumAlgorithm: "SHA256",
            }),
          );
          assert.equal(res.CopyObjectResult?.ChecksumSHA256, checksumOf("SHA256", body));
          assert.equal(res.CopyObjectResult?.ETag, `"${md5Hex(body)}"`);
          const head = await s3.send(
            new HeadObjectCommand({ Bucket: DST, Key: key, ChecksumMode: "ENABLED" }),
          );
          assert.equal(head.ChecksumSHA256, checksumOf("SHA256", body));
          assert.equal(head.ChecksumType, "FULL_OBJECT");
          assert.equal(head.ChecksumCRC32, undefined, "the new checksum replaces the old");
          assert.deepEqual(head.Metadata, { v: "1" }, "COPY keeps the metadata");
          assert.ok(sameBytes(await getBytes(s3, DST, key), body), "data intact");
          // Nothing asked for but the copy: still refused.
          await unchanged(() =>
            assertS3Error(
              s3.send(
                new CopyObjectCommand({ Bucket: DST, Key: key, CopySource: `${DST}/${key}` }),
              ),
              "InvalidRequest",
              400,
            )
          );
        }
      },
    );

    await t.step("copy-source conditionals: 412 PreconditionFailed when they fail", async () => {
      const etag = srcHead.ETag!;
      const modified = srcHead.LastModified!;
      const past = new Date(modified.getTime() - 3600_000);
      const future = new Date(Date.now() + 3600_000);
      const copy = (extra: Record<string, unknown>, key = "conditional") =>
        s3.send(
          new CopyObjectCommand({ Bucket: DST, Key: key, CopySource: `${SRC}/a.txt`, ...extra }),
        );
      for (
        const failing of [
          { CopySourceIfMatch: `"${md5Hex("not it")}"` },
          { CopySourceIfNoneMatch: etag },
          { CopySourceIfNoneMatch: "*" },
          { CopySourceIfModifiedSince: future },
          { CopySourceIfModifiedSince: new Date(modified.getTime() + 1000) },
          { CopySourceIfUnmodifiedSince: past },
          { CopySourceIfNoneMatch: etag, CopySourceIfModifiedSince: past },
        ]
      ) {
        await unchanged(async () => {
          await assertS3Error(copy(failing), "PreconditionFailed", 412);
          await assertS3Status(
            s3.send(new HeadObjectCommand({ Bucket: DST, Key: "conditional" })),
            404,
          );
        });
      }
      const passing: Record<string, unknown>[] = [
        { CopySourceIfMatch: etag },
        { CopySourceIfMatch: "*" },
        { CopySourceIfNoneMatch: `"${md5Hex("not it")}"` },
        { CopySourceIfModifiedSince: past },
        { CopySourceIfUnmodifiedSince: future },
        { CopySourceIfUnmodifiedSince: modified },
        // AWS: If-Match true and If-Unmodified-Since false -> the copy happens.
        { CopySourceIfMatch: etag, CopySourceIfUnmodifiedSince: past },
      ];
      for (const [i, ok] of passing.entries()) {
        const res = await copy(ok, `conditional-${i}`);
        assert.equal(res.CopyObjectResult?.ETag, etag, `passing case ${i}: ${JSON.stringify(ok)}`);
        assert.ok(sameBytes(await getBytes(s3, DST, `conditional-${i}`), small));
      }
    });

    await t.step("copy from a missing source key or bucket; into a missing bucket", async () => {
      await unchanged(async () => {
        await assertS3Error(
          s3.send(new CopyObjectCommand({ Bucket: DST, Key: "x", CopySource: `${SRC}/nope` })),
          "NoSuchKey",
          404,
        );
        await assertS3Error(
          s3.send(
            new CopyObjectCommand({ Bucket: DST, Key: "x", CopySource: `no-such-bucket/a.txt` }),
          ),
          "NoSuchBucket",
          404,
        );
        await assertS3Error(
          s3.send(
            new CopyObjectCommand({
              Bucket: "no-such-bucket",
              Key: "x",
              CopySource: `${SRC}/a.txt`,
            }),
          ),
          "NoSuchBucket",
          404,
        );
      });
    });

    await t.step("a copy shares blocks with its source and outlives it", async () => {
      const dataDir = `${server.dir}/data`;
      const payload = deterministicBytes(4 * MiB + 99, 8);
      await s3.send(new PutObjectCommand({ Bucket: SRC, Key: "shared.bin", Body: payload }));
      const before = await diskBytes(dataDir);
      assert.ok(before >= payload.byteLength, `the data dir holds the blocks (${before} bytes)`);
      await s3.send(
        new CopyObjectCommand({
          Bucket: DST,
          Key: "shared-copy.bin",
          CopySource: `${SRC}/shared.bin`,
        }),
      );
      await s3.send(
        new CopyObjectCommand({
          Bucket: SRC,
          Key: "shared-copy-2.bin",
          CopySource: `${SRC}/shared.bin`,
          MetadataDirective: "REPLACE",
        }),
      );
      const after = await diskBytes(dataDir);
      assert.ok(
        after - before < MiB,
        `copies must not duplicate blocks: the data dir grew by ${after - before} bytes`,
      );
      await s3.send(new DeleteObjectCommand({ Bucket: SRC, Key: "shared.bin" }));
      await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: SRC, Key: "shared.bin" })), 404);
      assert.ok(sameBytes(await getBytes(s3, DST, "shared-copy.bin"), payload));
      await s3.send(new DeleteObjectCommand({ Bucket: DST, Key: "shared-copy.bin" }));
      assert.ok(sameBytes(await getBytes(s3, SRC, "shared-copy-2.bin"), payload));
      // Still readable after a restart.
      await server.restart();
      assert.ok(sameBytes(await getBytes(s3, SRC, "shared-copy-2.bin"), payload));
      assert.ok(sameBytes(await getBytes(s3, DST, "big-copy.bin"), big));
    });

    await t.step("DeleteObjects of several keys lists each as Deleted", async () => {
      const keys = ["k1", "k2", "k3", "k4", "k5"];
      for (const k of keys) {
        await s3.send(new PutObjectCommand({ Bucket: DEL, Key: k, Body: enc.encode(k) }));
      }
      const res = await s3.send(
        new DeleteObjectsCommand({
          Bucket: DEL,
          Delete: {
            Objects: [{ Key: "k1" }, { Key: "k3" }, { Key: "k5" }, { Key: "never-existed" }],
          },
        }),
      );
      assert.deepEqual(
        (res.Deleted ?? []).map((d) => d.Key).sort(),
        ["k1", "k3", "k5", "never-existed"],
      );
      assert.deepEqual(res.Errors ?? [], []);
      assert.deepEqual(await keysOf(s3, DEL), ["k2", "k4"]);
    });

    await t.step(
      "DeleteObjects: version null is the object; any other version is NoSuchVersion",
      async () => {
        for (const k of ["v1", "v2"]) {
          await s3.send(new PutObjectCommand({ Bucket: DEL, Key: k, Body: enc.encode(k) }));
        }
        const res = await s3.send(
          new DeleteObjectsCommand({
            Bucket: DEL,
            Delete: {
              Objects: [{ Key: "v1", VersionId: "null" }, { Key: "v2", VersionId: "abc" }],
            },
          }),
        );
        assert.deepEqual(res.Deleted?.map((d) => [d.Key, d.VersionId]), [["v1", "null"]]);
        assert.deepEqual(res.Errors?.map((e) => [e.Key, e.VersionId, e.Code]), [
          ["v2", "abc", "NoSuchVersion"],
        ]);
        assert.deepEqual(await keysOf(s3, DEL), ["k2", "k4", "v2"]);
        await s3.send(
          new DeleteObjectsCommand({ Bucket: DEL, Delete: { Objects: [{ Key: "v2" }] } }),
        );
      },
    );

    await t.step(
      "conditional deletes: If-Match and DeleteObjects' ETag delete only that object",
      async () => {
        const put = async (key: string) =>
          (await s3.send(new PutObjectCommand({ Bucket: DEL, Key: key, Body: enc.encode(key) })))
            .ETag!;
        const etag = await put("cond");
        await assertS3Error(
          s3.send(new DeleteObjectCommand({ Bucket: DEL, Key: "cond", IfMatch: '"0000"' })),
          "PreconditionFailed",
          412,
        );
        await assertS3Error(
          s3.send(new DeleteObjectCommand({ Bucket: DEL, Key: "missing", IfMatch: "*" })),
          "NoSuchKey",
          404,
        );
        assert.ok((await keysOf(s3, DEL)).includes("cond"), "kept while the ETag differs");
        await s3.send(new DeleteObjectCommand({ Bucket: DEL, Key: "cond", IfMatch: etag }));
        assert.ok(!(await keysOf(s3, DEL)).includes("cond"));
        await put("any");
        await s3.send(new DeleteObjectCommand({ Bucket: DEL, Key: "any", IfMatch: "*" }));
        assert.ok(!(await keysOf(s3, DEL)).includes("any"));

        const [e1] = [await put("batch-1"), await put("batch-2")];
        const res = await s3.send(
          new DeleteObjectsCommand({
            Bucket: DEL,
            Delete: {
              Objects: [
                { Key: "batch-1", ETag: e1 },
                { Key: "batch-2", ETag: '"0000"' },
                { Key: "batch-none", ETag: e1 },
              ],
            },
          }),
        );
        assert.deepEqual(res.Deleted?.map((d) => d.Key), ["batch-1"]);
        assert.deepEqual(res.Errors?.map((e) => [e.Key, e.Code]), [
          ["batch-2", "PreconditionFailed"],
          ["batch-none", "NoSuchKey"],
        ]);
        const left = await keysOf(s3, DEL);
        assert.ok(!left.includes("batch-1") && left.includes("batch-2"), left.join(","));
        await s3.send(new DeleteObjectCommand({ Bucket: DEL, Key: "batch-2" }));
      },
    );

    await t.step("DeleteObjects in Quiet mode answers an empty Deleted list", async () => {
      const res = await s3.send(
        new DeleteObjectsCommand({
          Bucket: DEL,
          Delete: { Quiet: true, Objects: [{ Key: "k2" }, { Key: "k4" }] },
        }),
      );
      assert.deepEqual(res.Deleted ?? [], []);
      assert.deepEqual(res.Errors ?? [], []);
      assert.deepEqual(await keysOf(s3, DEL), []);
    });

    await t.step(
      "DeleteObjects with newlines, unicode, spaces and XML characters in keys",
      async () => {
        const odd = [
          "line\nbreak",
          "two\n\nnewlines\n",
          "ünïcødé/文字/😀",
          "with space",
          " leading and trailing ",
          "tab\tinside",
          "xml <&> 'quotes\"",
          "plus+sign%percent",
        ];
        for (const k of odd) {
          await s3.send(new PutObjectCommand({ Bucket: DEL, Key: k, Body: enc.encode(k) }));
        }
        await s3.send(
          new PutObjectCommand({ Bucket: DEL, Key: "survivor", Body: enc.encode("s") }),
        );
        const listed = await keysOf(s3, DEL);
        assert.deepEqual([...listed].sort(), [...odd, "survivor"].sort());
        const res = await s3.send(
          new DeleteObjectsCommand({
            Bucket: DEL,
            Delete: { Objects: odd.map((Key) => ({ Key })) },
          }),
        );
        assert.deepEqual((res.Deleted ?? []).map((d) => d.Key).sort(), [...odd].sort());
        assert.deepEqual(res.Errors ?? [], []);
        assert.deepEqual(await keysOf(s3, DEL), ["survivor"]);
      },
    );

    await t.step("DeleteObjects of 1001 keys is MalformedXML and deletes nothing", async () => {
      const keys = Array.from({ length: 1001 }, (_, i) => `bulk/${String(i).padStart(4, "0")}`);
      for (const k of keys.slice(0, 3)) {
        await s3.send(new PutObjectCommand({ Bucket: DEL, Key: k, Body: enc.encode(k) }));
      }
      await unchanged(() =>
        assertS3Error(
          s3.send(
            new DeleteObjectsCommand({
              Bucket: DEL,
              Delete: { Objects: keys.map((Key) => ({ Key })) },
            }),
          ),
          "MalformedXML",
          400,
        )
      );
      assert.deepEqual(await keysOf(s3, DEL), [...keys.slice(0, 3), "survivor"]);
      // Exactly 1000 is allowed.
      const res = await s3.send(
        new DeleteObjectsCommand({
          Bucket: DEL,
          Delete: { Quiet: true, Objects: keys.slice(0, 1000).map((Key) => ({ Key })) },
        }),
      );
      assert.deepEqual(res.Errors ?? [], []);
      assert.deepEqual(await keysOf(s3, DEL), ["survivor"]);
    });

    await t.step("raw DeleteObjects bodies: malformed XML is MalformedXML", async () => {
      await s3.send(new PutObjectCommand({ Bucket: DEL, Key: "a", Body: enc.encode("a") }));
      const post = (body: string, headers: Record<string, string> = {}) =>
        signedFetch(server, credentials, {
          method: "POST",
          path: objectPath(DEL),
          query: { delete: "" },
          headers: {
            "content-md5": md5Base64(body),
            "content-type": "application/xml",
            ...headers,
          },
          body,
        });
      const malformed = [
        "<Delete><Object><Key>a</Key></Object>",
        "<Delete><Object><Key>a</Key></Object></Delet>",
        "not xml at all",
        "<Delete></Delete>",
        "<NotDelete><Object><Key>a</Key></Object></NotDelete>",
        "<Delete><Object><Key>a</Key><VersionId><Id>1</Id></VersionId></Object></Delete>",
        `<Delete><Object><Key>a</Key></Object>${
          Array.from({ length: 1000 }, (_, i) => `<Object><Key>x${i}</Key></Object>`).join("")
        }</Delete>`,
      ];
      for (const body of malformed) {
        await unchanged(async () => {
          await assertErrorResponse(await post(body), 400, "MalformedXML");
        });
      }
      const oversized = `<Delete><Object><Key>a</Key></Object>${
        " ".repeat(2 * 1024 * 1024)
      }</Delete>`;
      await unchanged(async () => {
        await assertErrorResponse(await post(oversized), 400, "MaxMessageLengthExceeded");
      });
      // A body that does not match the digest it announces deletes nothing.
      const body = deleteXml(["a"]);
      const refusals: [Record<string, string>, string][] = [
        [{ "content-md5": md5Base64("another body") }, "BadDigest"],
        [{ "content-md5": "not a digest" }, "InvalidDigest"],
        [{ "x-amz-checksum-crc32": checksumOf("CRC32", enc.encode("another body")) }, "BadDigest"],
        [
          { "x-amz-checksum-sha256": checksumOf("SHA256", enc.encode("another body")) },
          "BadDigest",
        ],
      ];
      for (const [headers, code] of refusals) {
        await unchanged(async () => {
          await assertErrorResponse(await post(body, headers), 400, code);
        });
      }
      assert.deepEqual(await keysOf(s3, DEL), ["a", "survivor"]);
      // A well-formed raw body works, and without xmlns too.
      const ok = await post(deleteXml(["a"]));
      const text = await ok.text();
      assert.equal(ok.status, 200, text);
      assert.match(text, /<Deleted>\s*<Key>a<\/Key>/);
      const res = await post("<Delete><Object><Key>survivor</Key></Object></Delete>");
      assert.equal(res.status, 200, await res.text());
      assert.deepEqual(await keysOf(s3, DEL), []);
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});

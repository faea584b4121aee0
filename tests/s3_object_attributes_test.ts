/** GetObjectAttributes through the AWS SDK: ETag, checksum, parts (paged), size, storage class. */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { deterministicBytes, withServer } from "./harness.ts";
import { assertErrorResponse, assertS3Error, objectPath, signedFetch } from "./_s3_helpers.ts";
import { md5Hex } from "../lib/util/hash.ts";

const MiB = 1024 * 1024;

Deno.test("GetObjectAttributes", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "attrs" }));
    const small = new TextEncoder().encode("attributes");
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: "attrs",
        Key: "small",
        Body: small,
        ChecksumAlgorithm: "SHA256",
      }),
    );
    const all = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"] as const;
    const single = await s3.send(
      new GetObjectAttributesCommand({ Bucket: "attrs", Key: "small", ObjectAttributes: [...all] }),
    );
    assert.equal(single.ETag, md5Hex(small), "the ETag without quotes");
    assert.equal(single.Checksum?.ChecksumSHA256, put.ChecksumSHA256);
    assert.equal(single.ObjectSize, small.byteLength);
    assert.equal(single.StorageClass, "STANDARD");
    assert.equal(single.ObjectParts, undefined, "a single upload has no parts");
    assert.ok(single.LastModified);

    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: "attrs",
        Key: "parts",
        ChecksumAlgorithm: "CRC32",
      }),
    );
    const sizes = [5 * MiB, 5 * MiB, 1000];
    const parts = [];
    for (const [i, size] of sizes.entries()) {
      const part = await s3.send(
        new UploadPartCommand({
          Bucket: "attrs",
          Key: "parts",
          UploadId,
          PartNumber: i + 1,
          Body: deterministicBytes(size, i),
          ChecksumAlgorithm: "CRC32",
        }),
      );
      parts.push({ PartNumber: i + 1, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32 });
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "attrs",
        Key: "parts",
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    const first = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: "attrs",
        Key: "parts",
        ObjectAttributes: ["ObjectParts", "ObjectSize", "Checksum"],
        MaxParts: 2,
      }),
    );
    assert.equal(first.ObjectSize, sizes.reduce((a, b) => a + b));
    assert.match(first.Checksum?.ChecksumCRC32 ?? "", /-3$/, "the composite checksum");
    assert.equal(first.ObjectParts?.TotalPartsCount, 3);
    assert.equal(first.ObjectParts?.IsTruncated, true);
    assert.equal(first.ObjectParts?.NextPartNumberMarker, "2");
    assert.deepEqual(
      first.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32]),
      parts.slice(0, 2).map((p, i) => [p.PartNumber, sizes[i], p.ChecksumCRC32]),
    );
    const rest = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: "attrs",
        Key: "parts",
        ObjectAttributes: ["ObjectParts"],
        MaxParts: 2,
        PartNumberMarker: "2",
      }),
    );
    assert.equal(rest.ObjectParts?.IsTruncated, false);
    assert.deepEqual(rest.ObjectParts?.Parts?.map((p) => p.PartNumber), [3]);

    // Without a checksum, parts are counted but not listed, as in S3's general purpose buckets.
    const plain = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: "attrs", Key: "plain" }),
    );
    const plainParts = [];
    for (const [i, size] of [5 * 1024 * 1024, 1000].entries()) {
      const part = await s3.send(
        new UploadPartCommand({
          Bucket: "attrs",
          Key: "plain",
          UploadId: plain.UploadId,
          PartNumber: i + 1,
          Body: deterministicBytes(size, 10 + i),
        }),
      );
      plainParts.push({ PartNumber: i + 1, ETag: part.ETag });
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "attrs",
        Key: "plain",
        UploadId: plain.UploadId,
        MultipartUpload: { Parts: plainParts },
      }),
    );
    const unlisted = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: "attrs",
        Key: "plain",
        ObjectAttributes: ["ObjectParts", "Checksum"],
      }),
    );
    assert.equal(unlisted.ObjectParts?.TotalPartsCount, 2);
    assert.equal(unlisted.ObjectParts?.Parts, undefined);
    assert.equal(unlisted.Checksum, undefined);

    await assertS3Error(
      s3.send(
        new GetObjectAttributesCommand({
          Bucket: "attrs",
          Key: "nope",
          ObjectAttributes: ["ETag"],
        }),
      ),
      "NoSuchKey",
      404,
    );
    const cases: [Record<string, string>, string][] = [
      [{}, "no attributes asked for"],
      [{ "x-amz-object-attributes": "ETag,Colour" }, "an unknown attribute"],
      [{ "x-amz-object-attributes": "ETag", "x-amz-max-parts": "-1" }, "a negative max-parts"],
    ];
    for (const [headers, what] of cases) {
      const res = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath("attrs", "small"),
        query: { attributes: "" },
        headers,
      });
      await assertErrorResponse(res, 400, "InvalidArgument").catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
    }
  });
});

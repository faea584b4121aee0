/**
 * Server-side encryption with keys remise manages (SSE-S3, `AES256`) through
 * the AWS SDK: asked by a request or by the bucket's default encryption, the
 * data is stored encrypted, read back without any key, and every answer says
 * `AES256`; multipart uploads and copies carry it over or change it; reads
 * that ask for an encryption, and SSE-C keys sent for such objects, are
 * refused.
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { deterministicBytes, withServer } from "./harness.ts";
import {
  anyFileHolds,
  assertErrorResponse,
  assertS3Error,
  blockFiles,
  getBytes,
  markedBytes,
  md5Hex,
  sameBytes,
  signedFetch,
} from "./_s3_helpers.ts";

const BLOCK_SIZE = 65536;
const SSE_S3 = { ServerSideEncryption: "AES256" } as const;
const CUSTOMER_KEY = { SSECustomerAlgorithm: "AES256", SSECustomerKey: "C".repeat(32) };
const MARKER = new TextEncoder().encode("PLAINTEXT-MARKER-");

/** GET and HEAD of `key`: the body, and what both say of the encryption. */
async function read(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ body: Uint8Array; encryption: (string | undefined)[] }> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return {
    body: await got.Body!.transformToByteArray(),
    encryption: [got.ServerSideEncryption, head.ServerSideEncryption],
  };
}

Deno.test("SSE-S3: objects asked to be encrypted are stored encrypted and read back without a key", async (t) => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "safe" }));
    const small = markedBytes(100);
    const large = markedBytes(BLOCK_SIZE * 3 + 1000);

    await t.step("PUT with AES256 encrypts; GET, HEAD and ranges decrypt", async () => {
      for (const [key, data] of [["small", small], ["large", large]] as const) {
        const put = await s3.send(
          new PutObjectCommand({ Bucket: "safe", Key: key, Body: data, ...SSE_S3 }),
        );
        assert.equal(put.ServerSideEncryption, "AES256");
        // Unlike SSE-C's, the ETag is the data's MD5, as in S3.
        assert.equal(put.ETag, `"${md5Hex(data)}"`);
        const { body, encryption } = await read(s3, "safe", key);
        assert.ok(sameBytes(body, data), key);
        assert.deepEqual(encryption, ["AES256", "AES256"]);
      }
      for (const [start, end] of [[BLOCK_SIZE - 10, BLOCK_SIZE + 20], [BLOCK_SIZE * 3 + 5, 0]]) {
        const range = end ? `bytes=${start}-${end}` : `bytes=${start}-`;
        const got = await s3.send(
          new GetObjectCommand({ Bucket: "safe", Key: "large", Range: range }),
        );
        assert.equal(got.ServerSideEncryption, "AES256");
        const bytes = await got.Body!.transformToByteArray();
        assert.ok(sameBytes(bytes, large.subarray(start, end ? end + 1 : undefined)), range);
      }
      await s3.send(new PutObjectCommand({ Bucket: "safe", Key: "plain", Body: "clear" }));
      assert.deepEqual((await read(s3, "safe", "plain")).encryption, [undefined, undefined]);
    });

    await t.step("nothing of the data is in the block files in clear", async () => {
      assert.ok((await blockFiles(server.dir)).length >= 5, "the data is in block files");
      assert.equal(await anyFileHolds(`${server.dir}/data`, MARKER), false);
    });

    await t.step("the bucket's default encryption encrypts what asks for none", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "default" }));
      await s3.send(new PutObjectCommand({ Bucket: "default", Key: "before", Body: "before" }));
      await s3.send(
        new PutBucketEncryptionCommand({
          Bucket: "default",
          ServerSideEncryptionConfiguration: {
            Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
          },
        }),
      );
      const data = markedBytes(BLOCK_SIZE + 7);
      const put = await s3.send(
        new PutObjectCommand({ Bucket: "default", Key: "after", Body: data }),
      );
      assert.equal(put.ServerSideEncryption, "AES256");
      const after = await read(s3, "default", "after");
      assert.ok(sameBytes(after.body, data));
      assert.deepEqual(after.encryption, ["AES256", "AES256"]);
      // What was written before keeps its form; SSE-C still goes through.
      assert.deepEqual((await read(s3, "default", "before")).encryption, [undefined, undefined]);
      const withKey = await s3.send(
        new PutObjectCommand({ Bucket: "default", Key: "ssec", Body: "x", ...CUSTOMER_KEY }),
      );
      assert.equal(withKey.ServerSideEncryption, undefined);
      assert.equal(withKey.SSECustomerAlgorithm, "AES256");
    });

    await t.step("a multipart upload encrypts every part and says so at every step", async () => {
      const partSize = 5 * 1024 * 1024;
      const data = deterministicBytes(partSize + 3000, 11);
      const created = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: "default", Key: "mp" }),
      );
      assert.equal(created.ServerSideEncryption, "AES256");
      const parts = [];
      for (const [n, body] of [[1, data.subarray(0, partSize)], [2, data.subarray(partSize)]]) {
        const part = await s3.send(
          new UploadPartCommand({
            Bucket: "default",
            Key: "mp",
            UploadId: created.UploadId,
            PartNumber: n as number,
            Body: body as Uint8Array,
          }),
        );
        assert.equal(part.ServerSideEncryption, "AES256");
        assert.equal(part.ETag, `"${md5Hex(body as Uint8Array)}"`);
        parts.push({ PartNumber: n as number, ETag: part.ETag });
      }
      // A client's key for a part of an upload encrypted by remise is refused.
      await assertS3Error(
        s3.send(
          new UploadPartCommand({
            Bucket: "default",
            Key: "mp",
            UploadId: created.UploadId,
            PartNumber: 3,
            Body: "x",
            ...CUSTOMER_KEY,
          }),
        ),
        "InvalidRequest",
        400,
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: "default",
          Key: "mp",
          UploadId: created.UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      assert.equal(done.ServerSideEncryption, "AES256");
      const { body, encryption } = await read(s3, "default", "mp");
      assert.ok(sameBytes(body, data));
      assert.deepEqual(encryption, ["AES256", "AES256"]);
    });

    await t.step("copies decrypt their source and encrypt as the copy asks", async () => {
      const copy = (Key: string, CopySource: string, extra: Record<string, string> = {}) =>
        s3.send(new CopyObjectCommand({ Bucket: "safe", Key, CopySource, ...extra }));
      // Into a plain object, into SSE-C, and back into SSE-S3.
      const plain = await copy("copy-plain", "safe/large");
      assert.equal(plain.ServerSideEncryption, undefined);
      assert.ok(sameBytes(await getBytes(s3, "safe", "copy-plain"), large));
      await copy("copy-ssec", "safe/large", CUSTOMER_KEY);
      const back = await copy("copy-back", "safe/copy-ssec", {
        CopySourceSSECustomerAlgorithm: "AES256",
        CopySourceSSECustomerKey: CUSTOMER_KEY.SSECustomerKey,
        ...SSE_S3,
      });
      assert.equal(back.ServerSideEncryption, "AES256");
      const { body, encryption } = await read(s3, "safe", "copy-back");
      assert.ok(sameBytes(body, large));
      assert.deepEqual(encryption, ["AES256", "AES256"]);
      // Encrypting an object in place is a change; copying it onto itself
      // with only the bucket's default is not (S3's InvalidRequest).
      const inPlace = await copy("plain", "safe/plain", SSE_S3);
      assert.equal(inPlace.ServerSideEncryption, "AES256");
      assert.deepEqual((await read(s3, "safe", "plain")).encryption, ["AES256", "AES256"]);
      await assertS3Error(
        s3.send(
          new CopyObjectCommand({ Bucket: "default", Key: "after", CopySource: "default/after" }),
        ),
        "InvalidRequest",
        400,
      );
      // A part copied from an SSE-S3 object into a plain upload is plain.
      const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: "safe", Key: "pc" }));
      const part = await s3.send(
        new UploadPartCopyCommand({
          Bucket: "safe",
          Key: "pc",
          UploadId: upload.UploadId,
          PartNumber: 1,
          CopySource: "safe/large",
          CopySourceRange: `bytes=10-${BLOCK_SIZE + 9}`,
        }),
      );
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: "safe",
          Key: "pc",
          UploadId: upload.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.CopyPartResult!.ETag }] },
        }),
      );
      const pc = await read(s3, "safe", "pc");
      assert.ok(sameBytes(pc.body, large.subarray(10, BLOCK_SIZE + 10)));
      assert.deepEqual(pc.encryption, [undefined, undefined]);
      assert.equal(await anyFileHolds(`${server.dir}/data`, MARKER), true, "plain copies");
    });

    await t.step(
      "reads asking for an encryption, or with a client's key, are refused",
      async () => {
        for (const method of ["GET", "HEAD"]) {
          const res = await signedFetch(server, credentials, {
            method,
            path: "/safe/small",
            headers: { "x-amz-server-side-encryption": "AES256" },
          });
          if (method === "GET") await assertErrorResponse(res, 400, "InvalidArgument");
          else assert.equal(res.status, 400);
        }
        await assertS3Error(
          s3.send(new GetObjectCommand({ Bucket: "safe", Key: "small", ...CUSTOMER_KEY })),
          "InvalidRequest",
          400,
        );
        await assertS3Error(
          s3.send(
            new PutObjectCommand({
              Bucket: "safe",
              Key: "kms",
              Body: "x",
              ServerSideEncryption: "aws:kms",
            }),
          ),
          "NotImplemented",
          501,
        );
      },
    );
  }, { blockSize: BLOCK_SIZE });
});

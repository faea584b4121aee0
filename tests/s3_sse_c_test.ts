/**
 * Server-side encryption with customer keys (SSE-C) through the AWS SDK: the
 * data is stored encrypted and read back only with its key; wrong, missing
 * and malformed keys get S3's errors and change nothing; multipart uploads,
 * copies and part copies carry the encryption over, or change it.
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
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
  assertS3Status,
  blockFiles,
  getBytes,
  markedBytes,
  md5Base64,
  md5Hex,
  sameBytes,
  signedFetch,
} from "./_s3_helpers.ts";

const BLOCK_SIZE = 65536;
/** The SDK base64-encodes a key given as a string, and adds its MD5. */
const KEY_A = { SSECustomerAlgorithm: "AES256", SSECustomerKey: "A".repeat(32) };
const KEY_B = { SSECustomerAlgorithm: "AES256", SSECustomerKey: "B".repeat(32) };
const SOURCE_KEY_A = {
  CopySourceSSECustomerAlgorithm: "AES256",
  CopySourceSSECustomerKey: KEY_A.SSECustomerKey,
};
const KEY_A_MD5 = md5Base64(KEY_A.SSECustomerKey);

async function getWith(
  s3: S3Client,
  key: string,
  customerKey: Record<string, string>,
  extra: Record<string, unknown> = {},
): Promise<Uint8Array> {
  const res = await s3.send(
    new GetObjectCommand({ Bucket: "vault", Key: key, ...customerKey, ...extra }),
  );
  assert.equal(res.SSECustomerAlgorithm, "AES256");
  assert.equal(res.SSECustomerKeyMD5, md5Base64(customerKey.SSECustomerKey));
  return await res.Body!.transformToByteArray();
}

Deno.test("SSE-C: objects are stored encrypted and read back only with their key", async (t) => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "vault" }));
    const small = markedBytes(100);
    const large = markedBytes(BLOCK_SIZE * 3 + 1000);

    await t.step("PUT encrypts; GET, HEAD and ranges decrypt with the key", async () => {
      for (const [key, data] of [["small", small], ["large", large]] as const) {
        const put = await s3.send(
          new PutObjectCommand({ Bucket: "vault", Key: key, Body: data, ...KEY_A }),
        );
        assert.equal(put.SSECustomerAlgorithm, "AES256");
        assert.equal(put.SSECustomerKeyMD5, KEY_A_MD5);
        // The ETag does not give away the data's MD5, as in S3.
        assert.notEqual(put.ETag, `"${md5Hex(data)}"`);
        assert.match(put.ETag!, /^"[0-9a-f]{32}"$/);
        assert.ok(sameBytes(await getWith(s3, key, KEY_A), data), key);
        const head = await s3.send(new HeadObjectCommand({ Bucket: "vault", Key: key, ...KEY_A }));
        assert.equal(head.ContentLength, data.byteLength);
        assert.equal(head.ETag, put.ETag);
        assert.equal(head.SSECustomerKeyMD5, KEY_A_MD5);
      }
      // A range across two blocks, and one inside the last block.
      for (const [start, end] of [[BLOCK_SIZE - 10, BLOCK_SIZE + 20], [BLOCK_SIZE * 3 + 5, 0]]) {
        const range = end ? `bytes=${start}-${end}` : `bytes=${start}-`;
        const got = await getWith(s3, "large", KEY_A, { Range: range });
        assert.ok(sameBytes(got, large.subarray(start, end ? end + 1 : undefined)), range);
      }
    });

    await t.step("nothing of the data is on disk in clear", async () => {
      const marker = new TextEncoder().encode("PLAINTEXT-MARKER-");
      assert.ok((await blockFiles(server.dir)).length >= 5, "the data is in block files");
      assert.equal(await anyFileHolds(`${server.dir}/data`, marker), false, "block files");
      assert.equal(await anyFileHolds(`${server.dir}/meta`, marker), false, "metadata");
    });

    await t.step("a missing, wrong or unneeded key is refused", async () => {
      await s3.send(new PutObjectCommand({ Bucket: "vault", Key: "plain", Body: "clear" }));
      const get = (key: string, extra: Record<string, string> = {}) =>
        s3.send(new GetObjectCommand({ Bucket: "vault", Key: key, ...extra }));
      await assertS3Error(get("large"), "InvalidRequest", 400);
      await assertS3Error(get("large", KEY_B), "AccessDenied", 403);
      await assertS3Error(get("plain", KEY_A), "InvalidRequest", 400);
      const head = (extra: Record<string, string>) =>
        s3.send(new HeadObjectCommand({ Bucket: "vault", Key: "small", ...extra }));
      await assertS3Status(head({}), 400);
      await assertS3Status(head(KEY_B), 403);
      const attributes = (extra: Record<string, string>) =>
        s3.send(
          new GetObjectAttributesCommand({
            Bucket: "vault",
            Key: "small",
            ObjectAttributes: ["ObjectSize"],
            ...extra,
          }),
        );
      await assertS3Error(attributes({}), "InvalidRequest", 400);
      assert.equal((await attributes(KEY_A)).ObjectSize, small.byteLength);
    });

    await t.step("malformed key headers are refused, and store nothing", async () => {
      const before = await listing(s3);
      const keyA = btoa(KEY_A.SSECustomerKey);
      const algorithm = "x-amz-server-side-encryption-customer-algorithm";
      const key = "x-amz-server-side-encryption-customer-key";
      const md5 = "x-amz-server-side-encryption-customer-key-md5";
      const cases: [string, Record<string, string>, string][] = [
        ["a key without its algorithm", { [key]: keyA, [md5]: KEY_A_MD5 }, "InvalidArgument"],
        ["no key", { [algorithm]: "AES256", [md5]: KEY_A_MD5 }, "InvalidArgument"],
        ["no MD5 of the key", { [algorithm]: "AES256", [key]: keyA }, "InvalidArgument"],
        ["the MD5 of another key", {
          [algorithm]: "AES256",
          [key]: keyA,
          [md5]: md5Base64("other"),
        }, "InvalidArgument"],
        ["a 128-bit key", {
          [algorithm]: "AES256",
          [key]: btoa("k".repeat(16)),
          [md5]: md5Base64("k".repeat(16)),
        }, "InvalidArgument"],
        ["a key that is not base64", {
          [algorithm]: "AES256",
          [key]: "%".repeat(44),
          [md5]: KEY_A_MD5,
        }, "InvalidArgument"],
        ["another algorithm", {
          [algorithm]: "AES128",
          [key]: keyA,
          [md5]: KEY_A_MD5,
        }, "InvalidEncryptionAlgorithmError"],
        ["SSE-C with SSE-S3", {
          [algorithm]: "AES256",
          [key]: keyA,
          [md5]: KEY_A_MD5,
          "x-amz-server-side-encryption": "AES256",
        }, "InvalidArgument"],
      ];
      for (const [what, headers, code] of cases) {
        const res = await signedFetch(server, credentials, {
          method: "PUT",
          path: "/vault/refused",
          headers,
          body: "x",
        });
        await assertErrorResponse(res, 400, code).catch((e) => {
          throw new Error(`${what}: ${e.message}`);
        });
      }
      assert.deepEqual(await listing(s3), before);
    });

    await t.step("multipart uploads encrypt every part with the upload's key", async () => {
      const partSize = 5 * 1024 * 1024;
      const data = deterministicBytes(partSize + 3000, 7);
      const created = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: "vault", Key: "mp", ...KEY_A }),
      );
      assert.equal(created.SSECustomerKeyMD5, KEY_A_MD5);
      const upload = { Bucket: "vault", Key: "mp", UploadId: created.UploadId };
      const part = (n: number, body: Uint8Array, extra: Record<string, string>) =>
        s3.send(new UploadPartCommand({ ...upload, PartNumber: n, Body: body, ...extra }));
      await assertS3Error(part(1, data.subarray(0, partSize), {}), "InvalidRequest", 400);
      await assertS3Error(part(1, data.subarray(0, partSize), KEY_B), "InvalidRequest", 400);
      const p1 = await part(1, data.subarray(0, partSize), KEY_A);
      assert.equal(p1.SSECustomerKeyMD5, KEY_A_MD5);
      // Part 2 is copied from an encrypted object, with the source's key and the upload's.
      const p2 = await s3.send(
        new UploadPartCopyCommand({
          ...upload,
          PartNumber: 2,
          CopySource: "vault/large",
          CopySourceRange: "bytes=0-2999",
          ...SOURCE_KEY_A,
          ...KEY_A,
        }),
      );
      const listed = await s3.send(new ListPartsCommand(upload));
      assert.deepEqual(listed.Parts?.map((p) => p.Size), [partSize, 3000]);
      // A completion that names a key names the upload's.
      await assertS3Error(
        s3.send(
          new CompleteMultipartUploadCommand({
            ...upload,
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] },
            ...KEY_B,
          }),
        ),
        "InvalidRequest",
        400,
      );
      // A plain upload's parts take no key.
      const plainUpload = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: "vault", Key: "mp-plain" }),
      );
      await assertS3Error(
        s3.send(
          new UploadPartCommand({
            Bucket: "vault",
            Key: "mp-plain",
            UploadId: plainUpload.UploadId,
            PartNumber: 1,
            Body: "x",
            ...KEY_A,
          }),
        ),
        "InvalidRequest",
        400,
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          ...upload,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag },
              { PartNumber: 2, ETag: p2.CopyPartResult!.ETag },
            ],
          },
        }),
      );
      assert.match(done.ETag!, /-2"$/);
      const expected = new Uint8Array(partSize + 3000);
      expected.set(data.subarray(0, partSize));
      expected.set(large.subarray(0, 3000), partSize);
      assert.ok(sameBytes(await getWith(s3, "mp", KEY_A), expected));
      const second = await getWith(s3, "mp", KEY_A, { PartNumber: 2 });
      assert.ok(sameBytes(second, large.subarray(0, 3000)));
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "vault", Key: "mp" })),
        "InvalidRequest",
        400,
      );
      // A part it does not have is told as such before the missing key.
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "vault", Key: "mp", PartNumber: 3 })),
        "InvalidPart",
        400,
      );
    });

    await t.step("copies decrypt, encrypt or change the key", async () => {
      // Encrypted to plain: readable without a key, with the data's MD5 as ETag.
      const toPlain = await s3.send(
        new CopyObjectCommand({
          Bucket: "vault",
          Key: "decrypted",
          CopySource: "vault/large",
          ...SOURCE_KEY_A,
        }),
      );
      assert.equal(toPlain.CopyObjectResult?.ETag, `"${md5Hex(large)}"`);
      assert.ok(sameBytes(await getBytes(s3, "vault", "decrypted"), large));
      // Plain to encrypted.
      await s3.send(
        new CopyObjectCommand({
          Bucket: "vault",
          Key: "encrypted",
          CopySource: "vault/plain",
          ...KEY_B,
        }),
      );
      assert.equal(new TextDecoder().decode(await getWith(s3, "encrypted", KEY_B)), "clear");
      // In place, to another key: the old one no longer opens it.
      const rotated = await s3.send(
        new CopyObjectCommand({
          Bucket: "vault",
          Key: "large",
          CopySource: "vault/large",
          ...SOURCE_KEY_A,
          ...KEY_B,
        }),
      );
      assert.equal(rotated.SSECustomerKeyMD5, md5Base64(KEY_B.SSECustomerKey));
      assert.ok(sameBytes(await getWith(s3, "large", KEY_B), large));
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "vault", Key: "large", ...KEY_A })),
        "AccessDenied",
        403,
      );
      // An encrypted source needs its key; the wrong one is refused.
      for (
        const [sourceKey, code, status] of [[{}, "InvalidRequest", 400], [
          {
            CopySourceSSECustomerAlgorithm: "AES256",
            CopySourceSSECustomerKey: KEY_A.SSECustomerKey,
          },
          "AccessDenied",
          403,
        ]] as const
      ) {
        await assertS3Error(
          s3.send(
            new CopyObjectCommand({
              Bucket: "vault",
              Key: "refused-copy",
              CopySource: "vault/large",
              ...sourceKey,
            }),
          ),
          code,
          status,
        );
      }
    });
  }, { blockSize: BLOCK_SIZE });
});

/** The bucket's objects as listed (encrypted ones cannot be read without their key). */
async function listing(s3: S3Client) {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: "vault" }));
  return listed.Contents?.map((o) => [o.Key, o.Size, o.ETag]);
}

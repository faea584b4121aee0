/**
 * Server-side encryption requests: SSE-S3 (AES256) is accepted, SSE-C and
 * SSE-KMS are refused with NotImplemented and store nothing (ignoring them
 * would leave readable data where the client expects its key to be needed).
 */
import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { withServer } from "./harness.ts";
import { assertS3Error, getBytes, snapshotStore } from "./_s3_helpers.ts";

const CUSTOMER_KEY = {
  SSECustomerAlgorithm: "AES256",
  SSECustomerKey: "0123456789abcdef0123456789abcdef",
};

Deno.test("server-side encryption: AES256 accepted, SSE-C and SSE-KMS refused; object lock refused", async () => {
  await withServer(async (_server, s3) => {
    await s3.send(new CreateBucketCommand({ Bucket: "sse" }));
    await s3.send(
      new PutObjectCommand({
        Bucket: "sse",
        Key: "s3",
        Body: "plain",
        ServerSideEncryption: "AES256",
      }),
    );
    assert.equal(new TextDecoder().decode(await getBytes(s3, "sse", "s3")), "plain");

    const before = await snapshotStore(s3);
    const refused: [string, () => Promise<unknown>][] = [
      [
        "PUT SSE-C",
        () =>
          s3.send(new PutObjectCommand({ Bucket: "sse", Key: "c", Body: "x", ...CUSTOMER_KEY })),
      ],
      [
        "PUT SSE-KMS",
        () =>
          s3.send(
            new PutObjectCommand({
              Bucket: "sse",
              Key: "k",
              Body: "x",
              ServerSideEncryption: "aws:kms",
            }),
          ),
      ],
      [
        "GET SSE-C",
        () => s3.send(new GetObjectCommand({ Bucket: "sse", Key: "s3", ...CUSTOMER_KEY })),
      ],
      [
        "CreateMultipartUpload SSE-C",
        () =>
          s3.send(new CreateMultipartUploadCommand({ Bucket: "sse", Key: "m", ...CUSTOMER_KEY })),
      ],
      [
        "CopyObject from SSE-C",
        () =>
          s3.send(
            new CopyObjectCommand({
              Bucket: "sse",
              Key: "copy",
              CopySource: "sse/s3",
              CopySourceSSECustomerAlgorithm: "AES256",
              CopySourceSSECustomerKey: CUSTOMER_KEY.SSECustomerKey,
            }),
          ),
      ],
    ];
    // A key without the encryption it belongs to is InvalidArgument, as S3 answers.
    const invalid: [string, () => Promise<unknown>][] = [
      [
        "a customer key without its algorithm",
        () =>
          s3.send(
            new PutObjectCommand({
              Bucket: "sse",
              Key: "c",
              Body: "x",
              SSECustomerKey: CUSTOMER_KEY.SSECustomerKey,
            }),
          ),
      ],
      [
        "a KMS key id with AES256",
        () =>
          s3.send(
            new PutObjectCommand({
              Bucket: "sse",
              Key: "k",
              Body: "x",
              ServerSideEncryption: "AES256",
              SSEKMSKeyId: "my-key",
            }),
          ),
      ],
    ];
    const expected: [[string, () => Promise<unknown>][], string, number][] = [
      [refused, "NotImplemented", 501],
      [invalid, "InvalidArgument", 400],
    ];
    for (const [requests, code, status] of expected) {
      for (const [what, request] of requests) {
        await assertS3Error(request(), code, status).catch((e) => {
          throw new Error(`${what}: ${e.message}`);
        });
      }
    }
    // Object lock is refused rather than ignored: nothing would hold the object.
    await assertS3Error(
      s3.send(
        new PutObjectCommand({
          Bucket: "sse",
          Key: "locked",
          Body: "x",
          ObjectLockMode: "COMPLIANCE",
          ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000),
        }),
      ),
      "NotImplemented",
      501,
    );
    await assertS3Error(
      s3.send(new CreateBucketCommand({ Bucket: "locked", ObjectLockEnabledForBucket: true })),
      "NotImplemented",
      501,
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: "sse", Key: "s3", ...CUSTOMER_KEY }))
      .then(() => 200, (e) => e.$metadata?.httpStatusCode);
    assert.equal(head, 501, "HEAD with SSE-C");
    assert.deepEqual(await snapshotStore(s3), before);
  });
});

/**
 * Server-side encryption requests: SSE-S3 (AES256) is accepted, SSE-KMS is
 * refused with NotImplemented and stores nothing (ignoring it would leave
 * readable data where the client expects its key service to be needed).
 * SSE-C has its own tests (s3_sse_c_test.ts).
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { withServer } from "./harness.ts";
import { assertS3Error, getBytes, snapshotStore } from "./_s3_helpers.ts";

const CUSTOMER_KEY = "0123456789abcdef0123456789abcdef";

Deno.test("server-side encryption: AES256 accepted, SSE-KMS refused", async () => {
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
    type PutInput = ConstructorParameters<typeof PutObjectCommand>[0];
    const put = (extra: Partial<PutInput>) => () =>
      s3.send(new PutObjectCommand({ Bucket: "sse", Key: "k", Body: "x", ...extra }));
    const refused: [string, () => Promise<unknown>][] = [
      ["PUT SSE-KMS", put({ ServerSideEncryption: "aws:kms" })],
    ];
    // A key without the encryption it belongs to is InvalidArgument, as S3 answers.
    const invalid: [string, () => Promise<unknown>][] = [
      ["a customer key without its algorithm", put({ Key: "c", SSECustomerKey: CUSTOMER_KEY })],
      [
        "an encryption S3 does not have",
        put({ ServerSideEncryption: "aes:kms" as "AES256" }),
      ],
      [
        "SSE-KMS beside a customer key",
        put({
          ServerSideEncryption: "aws:kms",
          SSECustomerAlgorithm: "AES256",
          SSECustomerKey: CUSTOMER_KEY,
        }),
      ],
      [
        "a KMS key id with AES256",
        put({ ServerSideEncryption: "AES256", SSEKMSKeyId: "my-key" }),
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
    assert.deepEqual(await snapshotStore(s3), before);
  });
});

/**
 * A bucket's default encryption (Put/Get/DeleteBucketEncryption): SSE-S3 is
 * kept and given back, SSE-KMS refused, malformed configurations refused;
 * BlockedEncryptionTypes SSE-C refuses SSE-C uploads and leaves the objects
 * already encrypted readable.
 */
import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketEncryptionCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { withTwoKeys } from "./harness.ts";
import { assertConfigurationsRefused, assertS3Error } from "./_s3_helpers.ts";

const KEY = { SSECustomerAlgorithm: "AES256", SSECustomerKey: "e".repeat(32) };

Deno.test("default encryption: SSE-S3 kept, SSE-KMS refused, SSE-C uploads blocked on demand", async (t) => {
  await withTwoKeys(async ({ server, owner, s3, s3Other }) => {
    await s3.send(new CreateBucketCommand({ Bucket: "vault" }));
    const get = () => s3.send(new GetBucketEncryptionCommand({ Bucket: "vault" }));

    await t.step(
      "AES256 with a bucket key is kept and given back; deleted, it is gone",
      async () => {
        await assertS3Error(get(), "ServerSideEncryptionConfigurationNotFoundError", 404);
        await s3.send(
          new PutBucketEncryptionCommand({
            Bucket: "vault",
            ServerSideEncryptionConfiguration: {
              Rules: [{
                ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" },
                BucketKeyEnabled: true,
              }],
            },
          }),
        );
        const rule = (await get()).ServerSideEncryptionConfiguration?.Rules?.[0];
        assert.equal(rule?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm, "AES256");
        assert.equal(rule?.BucketKeyEnabled, true);
        assert.deepEqual(rule?.BlockedEncryptionTypes?.EncryptionType, ["NONE"]);
        const deleted = await s3.send(new DeleteBucketEncryptionCommand({ Bucket: "vault" }));
        assert.equal(deleted.$metadata.httpStatusCode, 204);
        await assertS3Error(get(), "ServerSideEncryptionConfigurationNotFoundError", 404);
      },
    );

    await t.step("SSE-KMS, malformed rules and other keys are refused", async () => {
      const rule = (inner: string) =>
        `<ServerSideEncryptionConfiguration><Rule>${inner}</Rule></ServerSideEncryptionConfiguration>`;
      const byDefault = (algorithm: string) =>
        `<ApplyServerSideEncryptionByDefault><SSEAlgorithm>${algorithm}</SSEAlgorithm></ApplyServerSideEncryptionByDefault>`;
      await assertConfigurationsRefused(server, owner, "vault", "encryption", [
        [rule(byDefault("aws:kms")), "NotImplemented", 501],
        [rule(byDefault("DES")), "MalformedXML", 400],
        [rule(byDefault("AES256")).replace("</Rule>", "</Rule><Rule></Rule>"), "MalformedXML", 400],
        [
          rule(
            `<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>`,
          ),
          "InvalidArgument",
          400,
        ],
        [
          rule(
            "<BlockedEncryptionTypes><EncryptionType>SSE-S3</EncryptionType></BlockedEncryptionTypes>",
          ),
          "InvalidArgument",
          400,
        ],
        [rule("<BucketKeyEnabled>maybe</BucketKeyEnabled>"), "MalformedXML", 400],
        ["<ServerSideEncryptionConfiguration/>", "MalformedXML", 400],
      ]);
      await assertS3Error(get(), "ServerSideEncryptionConfigurationNotFoundError", 404);
      await assertS3Error(
        s3Other.send(
          new PutBucketEncryptionCommand({
            Bucket: "vault",
            ServerSideEncryptionConfiguration: {
              Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
            },
          }),
        ),
        "AccessDenied",
        403,
      );
    });

    await t.step(
      "blocking SSE-C refuses its uploads; objects already encrypted stay readable",
      async () => {
        await s3.send(new PutObjectCommand({ Bucket: "vault", Key: "sealed", Body: "s", ...KEY }));
        await s3.send(new PutObjectCommand({ Bucket: "vault", Key: "plain", Body: "p" }));
        await s3.send(
          new PutBucketEncryptionCommand({
            Bucket: "vault",
            ServerSideEncryptionConfiguration: {
              Rules: [{ BlockedEncryptionTypes: { EncryptionType: ["SSE-C"] } }],
            },
          }),
        );
        const rule = (await get()).ServerSideEncryptionConfiguration?.Rules?.[0];
        assert.deepEqual(rule?.BlockedEncryptionTypes?.EncryptionType, ["SSE-C"]);
        const info = await (await server.admin("GET", "/v1/buckets/vault")).json();
        assert.deepEqual(info.defaultEncryption, { algorithm: null, sseCBlocked: true });
        const refused: [string, () => Promise<unknown>][] = [
          [
            "PutObject",
            () => s3.send(new PutObjectCommand({ Bucket: "vault", Key: "new", Body: "n", ...KEY })),
          ],
          [
            "CreateMultipartUpload",
            () => s3.send(new CreateMultipartUploadCommand({ Bucket: "vault", Key: "mp", ...KEY })),
          ],
          [
            "CopyObject",
            () =>
              s3.send(
                new CopyObjectCommand({
                  Bucket: "vault",
                  Key: "copy",
                  CopySource: "vault/plain",
                  ...KEY,
                }),
              ),
          ],
        ];
        for (const [what, call] of refused) {
          await assertS3Error(call(), "AccessDenied", 403).catch((e) => {
            throw new Error(`${what}: ${e.message}`);
          });
        }
        const sealed = await s3.send(
          new GetObjectCommand({ Bucket: "vault", Key: "sealed", ...KEY }),
        );
        assert.equal(await sealed.Body!.transformToString(), "s");
        // Decrypting into a plain copy is no SSE-C upload.
        await s3.send(
          new CopyObjectCommand({
            Bucket: "vault",
            Key: "opened",
            CopySource: "vault/sealed",
            CopySourceSSECustomerAlgorithm: "AES256",
            CopySourceSSECustomerKey: KEY.SSECustomerKey,
          }),
        );
        const opened = await s3.send(new GetObjectCommand({ Bucket: "vault", Key: "opened" }));
        assert.equal(await opened.Body!.transformToString(), "s");
        await s3.send(new DeleteBucketEncryptionCommand({ Bucket: "vault" }));
        await s3.send(new PutObjectCommand({ Bucket: "vault", Key: "new", Body: "n", ...KEY }));
      },
    );
  });
});

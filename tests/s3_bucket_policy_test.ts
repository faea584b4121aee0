/**
 * Bucket policies: a public-read policy lets requests without credentials
 * read (and, if it says so, list) what it names, and nothing else; policies
 * remise cannot enforce are refused.
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketPolicyCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetObjectCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { withTwoKeys } from "./harness.ts";
import {
  assertConfigurationsRefused,
  assertErrorResponse,
  assertS3Error,
  md5Base64,
  objectPath,
  signedFetch,
  snapshotStore,
} from "./_s3_helpers.ts";

const statement = (fields: Record<string, unknown>) =>
  JSON.stringify({ Version: "2012-10-17", Statement: [fields] });
const publicRead = (resource: string | string[], actions = ["s3:GetObject"]) =>
  statement({ Effect: "Allow", Principal: { AWS: ["*"] }, Action: actions, Resource: resource });

Deno.test("bucket policies: public read", (t) =>
  withTwoKeys(async ({ server, owner, s3, s3Other }) => {
    const anonymous = (method: string, path: string) =>
      fetch(`${server.endpoint}${path}`, { method });
    const status = async (method: string, path: string) => {
      const res = await anonymous(method, path);
      await res.body?.cancel();
      return res.status;
    };
    await s3.send(new CreateBucketCommand({ Bucket: "media" }));
    for (const key of ["public/cat.jpg", "private/diary.txt"]) {
      await s3.send(new PutObjectCommand({ Bucket: "media", Key: key, Body: `data of ${key}` }));
    }

    await t.step("without a policy, nothing is readable without credentials", async () => {
      assert.equal(await status("GET", "/media/public/cat.jpg"), 403);
      // A bucket that does not exist is NoSuchBucket, as S3 answers anyone.
      const missing = await anonymous("GET", "/no-such-media/public/cat.jpg");
      assert.equal(missing.status, 404);
      assert.match(await missing.text(), /<Code>NoSuchBucket<\/Code>/);
      await assertS3Error(
        s3.send(new GetBucketPolicyCommand({ Bucket: "media" })),
        "NoSuchBucketPolicy",
        404,
      );
      // As S3 answers: no policy is no status either.
      await assertS3Error(
        s3.send(new GetBucketPolicyStatusCommand({ Bucket: "media" })),
        "NoSuchBucketPolicy",
        404,
      );
    });

    await t.step("a policy for a prefix makes those keys readable, and only them", async () => {
      const policy = publicRead("arn:aws:s3:::media/public/*");
      await s3.send(new PutBucketPolicyCommand({ Bucket: "media", Policy: policy }));
      const got = await s3.send(new GetBucketPolicyCommand({ Bucket: "media" }));
      assert.equal(got.Policy, policy);
      const policyStatus = await s3.send(new GetBucketPolicyStatusCommand({ Bucket: "media" }));
      assert.equal(policyStatus.PolicyStatus?.IsPublic, true);
      const info = await (await server.admin("GET", "/v1/buckets/media")).json();
      assert.equal(info.publicRead, true, "remise bucket info shows it");

      const res = await anonymous("GET", "/media/public/cat.jpg");
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "data of public/cat.jpg");
      assert.equal(await status("HEAD", "/media/public/cat.jpg"), 200);
      // Without the listing, a missing key is AccessDenied, as S3 answers: it is not told from a
      // forbidden one. The key's owner, who may list, is told NoSuchKey.
      assert.equal(await status("GET", "/media/public/missing.jpg"), 403);
      assert.equal(await status("HEAD", "/media/public/missing.jpg"), 403);
      await assertS3Error(
        s3Other.send(new GetObjectCommand({ Bucket: "media", Key: "public/missing.jpg" })),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "media", Key: "public/missing.jpg" })),
        "NoSuchKey",
        404,
      );
      assert.equal(await status("GET", "/media/private/diary.txt"), 403);
      assert.equal(await status("GET", "/media"), 403, "listing is not in the policy");
      assert.equal(
        await status("GET", "/media/public/cat.jpg?response-content-type=text/html"),
        400,
        "no response overrides without credentials",
      );
      // "Anyone" includes keys without rights on the bucket: they read what the policy allows.
      const signedIn = await s3Other.send(
        new GetObjectCommand({ Bucket: "media", Key: "public/cat.jpg" }),
      );
      assert.equal(await signedIn.Body!.transformToString(), "data of public/cat.jpg");
      await assertS3Error(
        s3Other.send(new GetObjectCommand({ Bucket: "media", Key: "private/diary.txt" })),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3Other.send(new PutObjectCommand({ Bucket: "media", Key: "public/x.jpg", Body: "x" })),
        "AccessDenied",
        403,
      );
      // A copy reads its source as a GET does: the policy lets another key copy public objects
      // into a bucket of its own, whole or as a part.
      await s3Other.send(new CreateBucketCommand({ Bucket: "others" }));
      await s3Other.send(
        new CopyObjectCommand({
          Bucket: "others",
          Key: "cat.jpg",
          CopySource: "media/public/cat.jpg",
        }),
      );
      const copied = await s3Other.send(new GetObjectCommand({ Bucket: "others", Key: "cat.jpg" }));
      assert.equal(await copied.Body!.transformToString(), "data of public/cat.jpg");
      const upload = await s3Other.send(
        new CreateMultipartUploadCommand({ Bucket: "others", Key: "parts.jpg" }),
      );
      const part = await s3Other.send(
        new UploadPartCopyCommand({
          Bucket: "others",
          Key: "parts.jpg",
          UploadId: upload.UploadId,
          PartNumber: 1,
          CopySource: "media/public/cat.jpg",
        }),
      );
      await s3Other.send(
        new CompleteMultipartUploadCommand({
          Bucket: "others",
          Key: "parts.jpg",
          UploadId: upload.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.CopyPartResult!.ETag }] },
        }),
      );
      const assembled = await s3Other.send(
        new GetObjectCommand({ Bucket: "others", Key: "parts.jpg" }),
      );
      assert.equal(await assembled.Body!.transformToString(), "data of public/cat.jpg");
      for (
        const [source, code] of [["media/private/diary.txt", "AccessDenied"], [
          "media/public/missing.jpg",
          "AccessDenied",
        ]]
      ) {
        await assertS3Error(
          s3Other.send(new CopyObjectCommand({ Bucket: "others", Key: "x", CopySource: source })),
          code,
          403,
        );
      }
      const before = await snapshotStore(s3);
      assert.equal(await status("PUT", "/media/public/new.jpg"), 403);
      assert.equal(await status("DELETE", "/media/public/cat.jpg"), 403);
      assert.equal(await status("GET", "/media/public/cat.jpg?tagging"), 403);
      assert.equal(await status("GET", "/media?policy"), 403);
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("a policy may also allow listing", async () => {
      await s3.send(
        new PutBucketPolicyCommand({
          Bucket: "media",
          Policy: publicRead(
            ["arn:aws:s3:::media", "arn:aws:s3:::media/*"],
            ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
          ),
        }),
      );
      const listed = await anonymous("GET", "/media?list-type=2");
      assert.equal(listed.status, 200);
      assert.match(await listed.text(), /<Key>private\/diary.txt<\/Key>/);
      assert.equal(await status("GET", "/media/private/diary.txt"), 200);
      // Whoever may list may also be told that a key is missing.
      assert.equal(await status("GET", "/media/public/missing.jpg"), 404);
      await assertS3Error(
        s3Other.send(
          new CopyObjectCommand({ Bucket: "others", Key: "x", CopySource: "media/missing.jpg" }),
        ),
        "NoSuchKey",
        404,
      );
    });

    await t.step("policies remise cannot enforce are refused, and change nothing", async () => {
      const cases: [string, string, number][] = [
        ["not json", "MalformedPolicy", 400],
        [publicRead("arn:aws:s3:::other-bucket/*"), "MalformedPolicy", 400],
        [publicRead("arn:aws:s3:::media"), "MalformedPolicy", 400],
        [
          statement({
            Effect: "Deny",
            Principal: "*",
            Action: "s3:GetObject",
            Resource: "arn:aws:s3:::media/*",
          }),
          "NotImplemented",
          501,
        ],
        [
          statement({
            Effect: "Allow",
            Principal: { AWS: "arn:aws:iam::1:root" },
            Action: "s3:GetObject",
            Resource: "arn:aws:s3:::media/*",
          }),
          "NotImplemented",
          501,
        ],
        [publicRead("arn:aws:s3:::media/*", ["s3:PutObject"]), "NotImplemented", 501],
        [publicRead("arn:aws:s3:::media/*", ["s3:*"]), "NotImplemented", 501],
        [
          statement({
            Effect: "Allow",
            Principal: "*",
            Action: "s3:GetObject",
            Resource: "arn:aws:s3:::media/*",
            Condition: { IpAddress: { "aws:SourceIp": "10.0.0.0/8" } },
          }),
          "NotImplemented",
          501,
        ],
        [publicRead("arn:aws:s3:::media/a*b"), "NotImplemented", 501],
      ];
      await assertConfigurationsRefused(server, owner, "media", "policy", cases);
      // A policy whose body does not match its Content-MD5 is not taken.
      const policy = publicRead("arn:aws:s3:::media/*");
      const res = await signedFetch(server, owner, {
        method: "PUT",
        path: objectPath("media"),
        query: { policy: "" },
        headers: { "content-md5": md5Base64(policy.replace("media", "media2")) },
        body: policy,
      });
      await assertErrorResponse(res, 400, "BadDigest");
      await assertS3Error(
        s3Other.send(
          new PutBucketPolicyCommand({
            Bucket: "media",
            Policy: publicRead("arn:aws:s3:::media/*"),
          }),
        ),
        "AccessDenied",
        403,
      );
      assert.equal(
        await status("GET", "/media/private/diary.txt"),
        200,
        "the listing policy holds",
      );
    });

    await t.step("DeleteBucketPolicy makes the bucket private again", async () => {
      await s3.send(new DeleteBucketPolicyCommand({ Bucket: "media" }));
      assert.equal(await status("GET", "/media/public/cat.jpg"), 403);
      assert.equal(await status("GET", "/media?list-type=2"), 403);
      await assertS3Error(
        s3.send(new GetBucketPolicyStatusCommand({ Bucket: "media" })),
        "NoSuchBucketPolicy",
        404,
      );
    });
  }));

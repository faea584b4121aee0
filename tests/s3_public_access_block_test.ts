/**
 * A bucket's public access block, as Terraform's
 * `aws_s3_bucket_public_access_block` sets it: Put/Get/DeletePublicAccessBlock
 * through the AWS SDK, then what each setting refuses, on the S3 port and on
 * the website port.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeletePublicAccessBlockCommand,
  GetBucketPolicyCommand,
  GetPublicAccessBlockCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutBucketWebsiteCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
} from "@aws-sdk/client-s3";
import { freePort, withTwoKeys } from "./harness.ts";
import { assertConfigurationsRefused, assertS3Error } from "./_s3_helpers.ts";

const ALL_BLOCKED = {
  BlockPublicAcls: true,
  IgnorePublicAcls: true,
  BlockPublicPolicy: true,
  RestrictPublicBuckets: true,
};
const POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{
    Effect: "Allow",
    Principal: "*",
    Action: "s3:GetObject",
    Resource: "arn:aws:s3:::site/*",
  }],
});

/** The status of a page of the website port, for the Host header given (fetch would send its own). */
function webStatus(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

Deno.test("public access block", (t) => {
  const webPort = freePort();
  return withTwoKeys(async ({ server, owner, s3, s3Other }) => {
    const object = async () => {
      const res = await fetch(`${server.endpoint}/site/index.html`);
      await res.body?.cancel();
      return res.status;
    };
    const page = () => webStatus(webPort, "site");
    await s3.send(new CreateBucketCommand({ Bucket: "site" }));
    await s3.send(new PutObjectCommand({ Bucket: "site", Key: "index.html", Body: "home" }));
    await s3.send(new PutBucketPolicyCommand({ Bucket: "site", Policy: POLICY }));
    await s3.send(
      new PutBucketWebsiteCommand({
        Bucket: "site",
        WebsiteConfiguration: { IndexDocument: { Suffix: "index.html" } },
      }),
    );

    await t.step("a bucket has none until one is set; deleting none succeeds", async () => {
      await assertS3Error(
        s3.send(new GetPublicAccessBlockCommand({ Bucket: "site" })),
        "NoSuchPublicAccessBlockConfiguration",
        404,
      );
      const deleted = await s3.send(new DeletePublicAccessBlockCommand({ Bucket: "site" }));
      assert.equal(deleted.$metadata.httpStatusCode, 204);
      assert.equal(await object(), 200);
      assert.equal(await page(), 200);
      const info = await (await server.admin("GET", "/v1/buckets/site")).json();
      assert.equal(info.publicAccessBlock, null);
      assert.equal(info.publicRead, true);
    });

    await t.step("only the owner sets or reads it; malformed ones are refused", async () => {
      await assertS3Error(
        s3Other.send(
          new PutPublicAccessBlockCommand({
            Bucket: "site",
            PublicAccessBlockConfiguration: ALL_BLOCKED,
          }),
        ),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3Other.send(new GetPublicAccessBlockCommand({ Bucket: "site" })),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3.send(
          new PutPublicAccessBlockCommand({
            Bucket: "no-such-bucket",
            PublicAccessBlockConfiguration: ALL_BLOCKED,
          }),
        ),
        "NoSuchBucket",
        404,
      );
      await assertConfigurationsRefused(server, owner, "site", "publicAccessBlock", [
        ["<PublicAccessBlockConfiguration><BlockPublicAcls>yes", "MalformedXML", 400],
        [
          "<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls>" +
          "</PublicAccessBlockConfiguration>",
          "MalformedXML",
          400,
        ],
        ["<Other><BlockPublicAcls>true</BlockPublicAcls></Other>", "MalformedXML", 400],
      ]);
      await assertS3Error(
        s3.send(new GetPublicAccessBlockCommand({ Bucket: "site" })),
        "NoSuchPublicAccessBlockConfiguration",
        404,
      );
    });

    await t.step("settings left out are false", async () => {
      await s3.send(
        new PutPublicAccessBlockCommand({
          Bucket: "site",
          PublicAccessBlockConfiguration: { BlockPublicPolicy: true },
        }),
      );
      const got = await s3.send(new GetPublicAccessBlockCommand({ Bucket: "site" }));
      assert.deepEqual(got.PublicAccessBlockConfiguration, {
        BlockPublicAcls: false,
        IgnorePublicAcls: false,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: false,
      });
      const info = await (await server.admin("GET", "/v1/buckets/site")).json();
      assert.deepEqual(info.publicAccessBlock, ["BlockPublicPolicy"]);
      // Blocking new policies leaves the policy set before it in force.
      assert.equal(await object(), 200);
      assert.equal(await page(), 200);
    });

    await t.step("blocking everything", async () => {
      await s3.send(
        new PutPublicAccessBlockCommand({
          Bucket: "site",
          PublicAccessBlockConfiguration: ALL_BLOCKED,
        }),
      );
      const got = await s3.send(new GetPublicAccessBlockCommand({ Bucket: "site" }));
      assert.deepEqual(got.PublicAccessBlockConfiguration, ALL_BLOCKED);

      // RestrictPublicBuckets: neither the policy nor the website serves anyone without credentials.
      assert.equal(await object(), 403);
      assert.equal(await page(), 403);
      const info = await (await server.admin("GET", "/v1/buckets/site")).json();
      assert.equal(info.publicRead, false, "remise bucket info says it is not public");
      assert.deepEqual(info.publicAccessBlock, [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
      ]);

      // BlockPublicPolicy: no policy may be set (every policy remise keeps is public).
      await assertS3Error(
        s3.send(new PutBucketPolicyCommand({ Bucket: "site", Policy: POLICY })),
        "AccessDenied",
        403,
      );
      const policy = await s3.send(new GetBucketPolicyCommand({ Bucket: "site" }));
      assert.equal(policy.Policy, POLICY, "the policy set before stays");

      // BlockPublicAcls: uploads asking for a public ACL are refused, and store nothing.
      for (const acl of ["public-read", "public-read-write", "authenticated-read"] as const) {
        await assertS3Error(
          s3.send(new PutObjectCommand({ Bucket: "site", Key: "new.txt", Body: "x", ACL: acl })),
          "AccessDenied",
          403,
        );
      }
      await assertS3Error(
        s3.send(
          new PutObjectCommand({
            Bucket: "site",
            Key: "new.txt",
            Body: "x",
            GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
          }),
        ),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3.send(
          new CreateMultipartUploadCommand({ Bucket: "site", Key: "big", ACL: "public-read" }),
        ),
        "AccessDenied",
        403,
      );
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: "site" }));
      assert.deepEqual(listed.Contents?.map((o) => o.Key), ["index.html"]);
      // Private ACLs, or none, are what remise keeps: they go on.
      await s3.send(
        new PutObjectCommand({ Bucket: "site", Key: "new.txt", Body: "x", ACL: "private" }),
      );
      await s3.send(new PutObjectCommand({ Bucket: "site", Key: "plain.txt", Body: "y" }));
    });

    await t.step("deleting the block makes the bucket public again", async () => {
      await s3.send(new DeletePublicAccessBlockCommand({ Bucket: "site" }));
      await assertS3Error(
        s3.send(new GetPublicAccessBlockCommand({ Bucket: "site" })),
        "NoSuchPublicAccessBlockConfiguration",
        404,
      );
      assert.equal(await object(), 200);
      assert.equal(await page(), 200);
      await s3.send(new PutBucketPolicyCommand({ Bucket: "site", Policy: POLICY }));
    });
  }, { extraConfig: `web_bind_addr = "127.0.0.1:${webPort}"` });
});

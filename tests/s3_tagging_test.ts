/**
 * Object tags through the AWS SDK: set on PutObject, multipart uploads and
 * copies (`x-amz-tagging`), read and changed with Get/Put/DeleteObjectTagging
 * without touching the data, ETag or Last-Modified, and every invalid tag
 * set refused with nothing changed.
 */
import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectTaggingCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type Tag,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { deterministicBytes, TestServer } from "./harness.ts";
import { assertErrorResponse, assertS3Error, objectPath, signedFetch } from "./_s3_helpers.ts";

const B = "tags";

Deno.test("object tagging", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const reader = await server.createKey("reader");
  const s3 = server.client(owner);
  const readOnly = server.client(reader);
  const tagsOf = async (key: string) =>
    (await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: key }))).TagSet;
  const tagCount = async (key: string) => {
    const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: key }));
    await got.Body!.transformToByteArray();
    return got.TagCount;
  };
  try {
    await s3.send(new CreateBucketCommand({ Bucket: B }));
    const rights = await server.admin("POST", `/v1/buckets/${B}/allow`, {
      accessKeyId: reader.accessKeyId,
      read: true,
    });
    assert.equal(rights.status, 200);

    await t.step("PutObject with x-amz-tagging; GetObject counts the tags", async () => {
      await s3.send(
        new PutObjectCommand({
          Bucket: B,
          Key: "a",
          Body: "hello",
          Tagging: "team=web&note=two%20words",
        }),
      );
      // In key order, as S3 gives them back, whatever order they were given in.
      assert.deepEqual(await tagsOf("a"), [
        { Key: "note", Value: "two words" },
        { Key: "team", Value: "web" },
      ]);
      assert.equal(await tagCount("a"), 2);
      const head = await signedFetch(server, owner, { method: "HEAD", path: objectPath(B, "a") });
      assert.equal(head.headers.get("x-amz-tagging-count"), "2", "HEAD counts them too");
      await s3.send(new PutObjectCommand({ Bucket: B, Key: "plain", Body: "x" }));
      assert.deepEqual(await tagsOf("plain"), []);
      assert.equal(await tagCount("plain"), undefined);
    });

    await t.step("PutObjectTagging replaces the tags and nothing else", async () => {
      const before = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "a" }));
      await new Promise((r) => setTimeout(r, 1100)); // a new Last-Modified would show
      const tags: Tag[] = [{ Key: "team", Value: "ops" }, { Key: "empty", Value: "" }];
      const put = await s3.send(
        new PutObjectTaggingCommand({ Bucket: B, Key: "a", Tagging: { TagSet: tags } }),
      );
      assert.equal(put.$metadata.httpStatusCode, 200);
      assert.deepEqual(await tagsOf("a"), [tags[1], tags[0]]);
      const after = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "a" }));
      assert.equal(after.ETag, before.ETag);
      assert.equal(after.LastModified?.getTime(), before.LastModified?.getTime());
      const body = await s3.send(new GetObjectCommand({ Bucket: B, Key: "a" }));
      assert.equal(await body.Body!.transformToString(), "hello");
    });

    await t.step("invalid tag sets are refused and change nothing", async () => {
      const many = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
      await assertS3Error(
        s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: "a", Tagging: { TagSet: many } })),
        "BadRequest", // S3's answer to an eleventh tag, "Object tags cannot be greater than 10"
        400,
      );
      const eleven = many.map(({ Key, Value }) => `${Key}=${Value}`).join("&");
      await assertS3Error(
        s3.send(new PutObjectCommand({ Bucket: B, Key: "b", Body: "x", Tagging: eleven })),
        "BadRequest",
        400,
      );
      const cases: [string, Tag[]][] = [
        ["the same key twice", [{ Key: "k", Value: "1" }, { Key: "k", Value: "2" }]],
        ["an aws: key", [{ Key: "aws:reserved", Value: "1" }]],
        ["a key of 129 characters", [{ Key: "k".repeat(129), Value: "1" }]],
        ["a value of 257 characters", [{ Key: "k", Value: "v".repeat(257) }]],
      ];
      for (const [what, TagSet] of cases) {
        await assertS3Error(
          s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: "a", Tagging: { TagSet } })),
          "InvalidTag",
          400,
        ).catch((e) => {
          throw new Error(`${what}: ${e.message}`);
        });
      }
      await assertS3Error(
        s3.send(new PutObjectCommand({ Bucket: B, Key: "b", Body: "x", Tagging: "aws:x=1" })),
        "InvalidTag",
        400,
      );
      const malformed = await signedFetch(server, owner, {
        method: "PUT",
        path: objectPath(B, "a"),
        query: { tagging: "" },
        body: "<Tagging><TagSet><Tag><Key>k</Key>",
      });
      await assertErrorResponse(malformed, 400, "MalformedXML");
      await assertS3Error(
        readOnly.send(
          new PutObjectTaggingCommand({ Bucket: B, Key: "a", Tagging: { TagSet: [] } }),
        ),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: "nope", Tagging: { TagSet: [] } })),
        "NoSuchKey",
        404,
      );
      await assertS3Error(
        s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: "nope" })),
        "NoSuchKey",
        404,
      );
      assert.deepEqual(await tagsOf("a"), [{ Key: "empty", Value: "" }, {
        Key: "team",
        Value: "ops",
      }]);
      await assertS3Error(s3.send(new HeadObjectCommand({ Bucket: B, Key: "b" })), "NotFound", 404);
    });

    await t.step("copies keep the source's tags, or take new ones with REPLACE", async () => {
      await s3.send(new CopyObjectCommand({ Bucket: B, Key: "copy", CopySource: `${B}/a` }));
      assert.deepEqual(await tagsOf("copy"), await tagsOf("a"));
      await s3.send(
        new CopyObjectCommand({
          Bucket: B,
          Key: "copy-new",
          CopySource: `${B}/a`,
          TaggingDirective: "REPLACE",
          Tagging: "fresh=1",
        }),
      );
      assert.deepEqual(await tagsOf("copy-new"), [{ Key: "fresh", Value: "1" }]);
      await s3.send(
        new CopyObjectCommand({
          Bucket: B,
          Key: "copy-none",
          CopySource: `${B}/a`,
          TaggingDirective: "REPLACE",
        }),
      );
      assert.deepEqual(await tagsOf("copy-none"), []);
    });

    await t.step("a multipart upload's tags are the completed object's", async () => {
      await new Upload({
        client: s3,
        params: {
          Bucket: B,
          Key: "mp",
          Body: deterministicBytes(11 * 1024 * 1024, 3),
          Tagging: "kind=big",
        },
        partSize: 5 * 1024 * 1024,
      }).done();
      assert.deepEqual(await tagsOf("mp"), [{ Key: "kind", Value: "big" }]);
    });

    await t.step("bucket tags: Put, Get, Delete, and S3's limits", async () => {
      await assertS3Error(
        s3.send(new GetBucketTaggingCommand({ Bucket: B })),
        "NoSuchTagSet",
        404,
      );
      const TagSet = [{ Key: "project", Value: "family-photos" }, { Key: "owner", Value: "" }];
      const put = await s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet } }));
      assert.equal(put.$metadata.httpStatusCode, 200);
      assert.deepEqual((await s3.send(new GetBucketTaggingCommand({ Bucket: B }))).TagSet, [
        TagSet[1],
        TagSet[0],
      ]);
      const fifty = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
      await s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet: fifty } }));
      await assertS3Error(
        s3.send(
          new PutBucketTaggingCommand({
            Bucket: B,
            Tagging: { TagSet: [...fifty, { Key: "one-more", Value: "v" }] },
          }),
        ),
        "InvalidTag",
        400,
      );
      await assertS3Error(
        readOnly.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet } })),
        "AccessDenied",
        403,
      );
      assert.equal((await s3.send(new GetBucketTaggingCommand({ Bucket: B }))).TagSet?.length, 50);
      await s3.send(new DeleteBucketTaggingCommand({ Bucket: B }));
      await assertS3Error(
        s3.send(new GetBucketTaggingCommand({ Bucket: B })),
        "NoSuchTagSet",
        404,
      );
    });

    await t.step(
      "DeleteObjectTagging; an overwrite without tags has none; a restart keeps them",
      async () => {
        const deleted = await s3.send(new DeleteObjectTaggingCommand({ Bucket: B, Key: "a" }));
        assert.equal(deleted.$metadata.httpStatusCode, 204);
        assert.deepEqual(await tagsOf("a"), []);
        await s3.send(new PutObjectCommand({ Bucket: B, Key: "copy", Body: "new data" }));
        assert.deepEqual(await tagsOf("copy"), []);
        await server.restart();
        assert.deepEqual(await tagsOf("copy-new"), [{ Key: "fresh", Value: "1" }]);
        assert.deepEqual(await tagsOf("mp"), [{ Key: "kind", Value: "big" }]);
      },
    );
  } finally {
    s3.destroy();
    readOnly.destroy();
    await server.close();
  }
});

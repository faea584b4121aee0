/**
 * Bucket versioning through the AWS SDK: enabled, every write is a version
 * of its own and a delete adds a delete marker; versions are read, copied,
 * tagged, listed page by page and deleted by id; suspended, new writes
 * replace the null version only; and the versions outlive a restart.
 */
import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { deterministicBytes, TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  objectPath,
  sameBytes,
  signedFetch,
} from "./_s3_helpers.ts";

const B = "versions";
const text = (s: string) => new TextEncoder().encode(s);

async function body(s3: S3Client, key: string, versionId?: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: key, VersionId: versionId }));
  return await got.Body!.transformToString();
}

async function put(s3: S3Client, key: string, content: string): Promise<string | undefined> {
  return (await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: text(content) })))
    .VersionId;
}

/** Every (key, version id, kind, latest) of the bucket, in listing order, one listing. */
async function allVersions(s3: S3Client, prefix?: string): Promise<string[]> {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: B, Prefix: prefix }));
  assert.equal(page.IsTruncated, false);
  return rows(page);
}

/** The rows of a page in listing order: versions and delete markers merged back by key. */
function rows(page: ListObjectVersionsCommandOutput): string[] {
  const all = [
    ...(page.Versions ?? []).map((v) => ({ ...v, kind: "object" })),
    ...(page.DeleteMarkers ?? []).map((m) => ({ ...m, kind: "marker" })),
  ];
  // Listing order: by key, each key's newest first (a key's versions never share a time).
  all.sort((a, b) =>
    a.Key! < b.Key!
      ? -1
      : a.Key! > b.Key!
      ? 1
      : b.LastModified!.getTime() - a.LastModified!.getTime()
  );
  return all.map((v) => `${v.Key} ${v.VersionId} ${v.kind}${v.IsLatest ? " latest" : ""}`);
}

/** The HTTP headers of an SDK error's answer. */
function errorHeaders(e: S3ServiceException): Record<string, string> {
  return (e.$response?.headers ?? {}) as Record<string, string>;
}

Deno.test("bucket versioning", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const writer = await server.createKey("writer");
  const s3 = server.client(owner);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: B }));
    const rights = await server.admin("POST", `/v1/buckets/${B}/allow`, {
      accessKeyId: writer.accessKeyId,
      read: true,
      write: true,
    });
    assert.equal(rights.status, 200);

    await t.step("PutBucketVersioning: the owner's, validated; GetBucketVersioning", async () => {
      const status = async () =>
        (await s3.send(new GetBucketVersioningCommand({ Bucket: B }))).Status;
      assert.equal(await status(), undefined, "never set");
      // Written before versioning: the null version.
      assert.equal(await put(s3, "doc", "null version"), undefined);
      await assertS3Error(
        server.client(writer).send(
          new PutBucketVersioningCommand({
            Bucket: B,
            VersioningConfiguration: { Status: "Enabled" },
          }),
        ),
        "AccessDenied",
        403,
      );
      const refused: [string, number, string][] = [
        [
          "<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
          400,
          "MalformedXML",
        ],
        ["<VersioningConfiguration/>", 400, "MalformedXML"],
        ["<Versioning><Status>Enabled</Status></Versioning>", 400, "MalformedXML"],
        ["<VersioningConfiguration><Status>Enabled", 400, "MalformedXML"],
        [
          "<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>",
          501,
          "NotImplemented",
        ],
      ];
      for (const [xml, code, name] of refused) {
        const res = await signedFetch(server, owner, {
          method: "PUT",
          path: objectPath(B),
          query: { versioning: "" },
          body: xml,
        });
        await assertErrorResponse(res, code, name);
      }
      assert.equal(await status(), undefined, "nothing refused was stored");
      await s3.send(
        new PutBucketVersioningCommand({
          Bucket: B,
          VersioningConfiguration: { Status: "Enabled", MFADelete: "Disabled" },
        }),
      );
      assert.equal(await status(), "Enabled");
    });

    let v1 = "";
    let v2 = "";
    let v3 = "";
    await t.step("each write is a version of its own; each is read by its id", async () => {
      v1 = (await put(s3, "doc", "one"))!;
      v2 = (await put(s3, "doc", "two"))!;
      // A multipart upload of three parts: a version made of blocks.
      const big = deterministicBytes(11 * 1024 * 1024, 7);
      const upload = await new Upload({
        client: s3,
        params: { Bucket: B, Key: "doc", Body: big },
        partSize: 5 * 1024 * 1024,
      }).done();
      v3 = upload.VersionId!;
      assert.equal(new Set([v1, v2, v3, "null"]).size, 4, "four different ids");
      assert.equal(await body(s3, "doc", v1), "one");
      assert.equal(await body(s3, "doc", v2), "two");
      assert.equal(await body(s3, "doc", "null"), "null version");
      const current = await s3.send(new GetObjectCommand({ Bucket: B, Key: "doc" }));
      assert.equal(current.VersionId, v3);
      assert.ok(sameBytes(await current.Body!.transformToByteArray(), big));
      const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "doc", VersionId: v1 }));
      assert.equal(head.VersionId, v1);
      assert.equal(head.ContentLength, 3);
      const attributes = await s3.send(
        new GetObjectAttributesCommand({
          Bucket: B,
          Key: "doc",
          VersionId: v2,
          ObjectAttributes: ["ObjectSize"],
        }),
      );
      assert.equal(attributes.VersionId, v2);
      assert.equal(attributes.ObjectSize, 3);
      const ranged = await s3.send(
        new GetObjectCommand({ Bucket: B, Key: "doc", VersionId: v2, Range: "bytes=1-2" }),
      );
      assert.equal(await ranged.Body!.transformToString(), "wo");
      assert.deepEqual(await allVersions(s3), [
        `doc ${v3} object latest`,
        `doc ${v2} object`,
        `doc ${v1} object`,
        "doc null object",
      ]);
    });

    let marker = "";
    await t.step("a delete adds a delete marker; the versions stay readable", async () => {
      const deleted = await s3.send(new DeleteObjectCommand({ Bucket: B, Key: "doc" }));
      assert.equal(deleted.DeleteMarker, true);
      marker = deleted.VersionId!;
      assert.ok(marker && ![v1, v2, v3].includes(marker));
      const gone = await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: B, Key: "doc" })),
        "NoSuchKey",
        404,
      );
      assert.equal(errorHeaders(gone)["x-amz-delete-marker"], "true");
      assert.equal(errorHeaders(gone)["x-amz-version-id"], marker);
      await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: B, Key: "doc" })), 404);
      // The marker itself, asked by id: there is nothing to GET.
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: B, Key: "doc", VersionId: marker })),
        "MethodNotAllowed",
        405,
      );
      assert.equal(await body(s3, "doc", v1), "one");
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: B }));
      assert.equal(listed.KeyCount, 0, "a key whose current version is a marker is not listed");
      assert.deepEqual((await allVersions(s3)).slice(0, 2), [
        `doc ${marker} marker latest`,
        `doc ${v3} object`,
      ]);
      // The bucket holds versions: it is not empty.
      await assertS3Error(s3.send(new DeleteBucketCommand({ Bucket: B })), "BucketNotEmpty", 409);
    });

    await t.step("deleting the marker by id brings the object back", async () => {
      const res = await s3.send(
        new DeleteObjectCommand({ Bucket: B, Key: "doc", VersionId: marker }),
      );
      assert.equal(res.DeleteMarker, true);
      assert.equal(res.VersionId, marker);
      const current = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "doc" }));
      assert.equal(current.VersionId, v3);
    });

    await t.step(
      "a version deleted by id is gone for good; deleting it again succeeds",
      async () => {
        const res = await s3.send(
          new DeleteObjectCommand({ Bucket: B, Key: "doc", VersionId: v2 }),
        );
        assert.equal(res.VersionId, v2);
        assert.equal(res.DeleteMarker, undefined);
        await assertS3Error(
          s3.send(new GetObjectCommand({ Bucket: B, Key: "doc", VersionId: v2 })),
          "NoSuchVersion",
          404,
        );
        await s3.send(new DeleteObjectCommand({ Bucket: B, Key: "doc", VersionId: v2 }));
        assert.deepEqual(await allVersions(s3), [
          `doc ${v3} object latest`,
          `doc ${v1} object`,
          "doc null object",
        ]);
        await assertS3Error(
          s3.send(new GetObjectCommand({ Bucket: B, Key: "doc", VersionId: "not-an-id" })),
          "InvalidArgument",
          400,
        );
      },
    );

    await t.step("CopyObject from a version; tags of one version", async () => {
      const copy = await s3.send(
        new CopyObjectCommand({
          Bucket: B,
          Key: "copy",
          CopySource: `${B}/doc?versionId=${v1}`,
        }),
      );
      assert.equal(copy.CopySourceVersionId, v1);
      assert.ok(copy.VersionId);
      assert.equal(await body(s3, "copy"), "one");
      // The null version was written before versioning (its bytes inline in the metadata); its
      // versioned copy is stored as a block.
      const ofNull = await s3.send(
        new CopyObjectCommand({ Bucket: B, Key: "copy", CopySource: `${B}/doc?versionId=null` }),
      );
      assert.equal(ofNull.CopySourceVersionId, "null");
      assert.equal(await body(s3, "copy"), "null version");
      assert.equal(await body(s3, "copy", copy.VersionId), "one");
      // Copying a version onto its own key makes it current again.
      const restored = await s3.send(
        new CopyObjectCommand({ Bucket: B, Key: "doc", CopySource: `${B}/doc?versionId=${v1}` }),
      );
      assert.equal(await body(s3, "doc"), "one");
      assert.equal((await allVersions(s3, "doc"))[0], `doc ${restored.VersionId} object latest`);
      await assertS3Error(
        s3.send(
          new CopyObjectCommand({
            Bucket: B,
            Key: "copy",
            CopySource: `${B}/doc?versionId=${v2}`,
          }),
        ),
        "NoSuchVersion",
        404,
      );

      await s3.send(
        new PutObjectTaggingCommand({
          Bucket: B,
          Key: "doc",
          VersionId: v3,
          Tagging: { TagSet: [{ Key: "kept", Value: "yes" }] },
        }),
      );
      const tagged = await s3.send(
        new GetObjectTaggingCommand({ Bucket: B, Key: "doc", VersionId: v3 }),
      );
      assert.equal(tagged.VersionId, v3);
      assert.deepEqual(tagged.TagSet, [{ Key: "kept", Value: "yes" }]);
      const currentTags = await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: "doc" }));
      assert.deepEqual(currentTags.TagSet, [], "the current version has its own tags");
    });

    await t.step(
      "an empty object is a version of its own: read, copied, deleted by id",
      async () => {
        // Kept out of the entry as a part of 0 bytes, which has no blocks.
        const empty = (await put(s3, "empty", ""))!;
        const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "empty" }));
        assert.equal(head.ContentLength, 0);
        assert.equal(head.ETag, '"d41d8cd98f00b204e9800998ecf8427e"');
        assert.equal(await body(s3, "empty", empty), "");
        const copy = await s3.send(
          new CopyObjectCommand({
            Bucket: B,
            Key: "empty-copy",
            CopySource: `${B}/empty?versionId=${empty}`,
          }),
        );
        assert.equal(await body(s3, "empty-copy", copy.VersionId), "");
        for (const [key, id] of [["empty", empty], ["empty-copy", copy.VersionId!]]) {
          await s3.send(new DeleteObjectCommand({ Bucket: B, Key: key, VersionId: id }));
        }
        assert.deepEqual(await allVersions(s3, "empty"), []);
      },
    );

    await t.step("ListObjectVersions pages through versions, markers and prefixes", async () => {
      for (const key of ["a/1", "a/2", "b", "c"]) {
        await put(s3, key, `${key} first`);
        await put(s3, key, `${key} second`);
      }
      await s3.send(new DeleteObjectCommand({ Bucket: B, Key: "b" }));
      const whole = await allVersions(s3);
      for (const maxKeys of [1, 2, 3]) {
        const seen: string[] = [];
        let keyMarker: string | undefined;
        let versionIdMarker: string | undefined;
        for (let pages = 1;; pages++) {
          assert.ok(pages <= whole.length, "the pages end");
          const page = await s3.send(
            new ListObjectVersionsCommand({
              Bucket: B,
              MaxKeys: maxKeys,
              KeyMarker: keyMarker,
              VersionIdMarker: versionIdMarker,
            }),
          );
          const count = (page.Versions?.length ?? 0) + (page.DeleteMarkers?.length ?? 0);
          assert.ok(count <= maxKeys);
          seen.push(...rows(page));
          if (!page.IsTruncated) break;
          keyMarker = page.NextKeyMarker;
          versionIdMarker = page.NextVersionIdMarker;
        }
        assert.deepEqual(
          seen.map((r) => r.replace(/ latest$/, "")),
          whole.map((r) => r.replace(/ latest$/, "")),
          `pages of ${maxKeys}`,
        );
      }
      const grouped = await s3.send(
        new ListObjectVersionsCommand({ Bucket: B, Delimiter: "/", Prefix: "" }),
      );
      assert.deepEqual(grouped.CommonPrefixes?.map((p) => p.Prefix), ["a/"]);
      assert.ok(!(grouped.Versions ?? []).some((v) => v.Key!.startsWith("a/")));
      // The page's last version deleted by id before the next page: the next page goes on after
      // it, and repeats nothing.
      const ids = [];
      for (const i of [1, 2, 3, 4]) ids.unshift(await put(s3, "paging/d", `d ${i}`));
      const first = await s3.send(
        new ListObjectVersionsCommand({ Bucket: B, Prefix: "paging/", MaxKeys: 2 }),
      );
      assert.deepEqual(first.Versions!.map((v) => v.VersionId), ids.slice(0, 2));
      await s3.send(
        new DeleteObjectCommand({
          Bucket: B,
          Key: "paging/d",
          VersionId: first.NextVersionIdMarker,
        }),
      );
      const next = await s3.send(
        new ListObjectVersionsCommand({
          Bucket: B,
          Prefix: "paging/",
          KeyMarker: first.NextKeyMarker,
          VersionIdMarker: first.NextVersionIdMarker,
        }),
      );
      assert.deepEqual(next.Versions!.map((v) => v.VersionId), ids.slice(2));
    });

    await t.step("suspended: a write or delete replaces the null version only", async () => {
      await s3.send(
        new PutBucketVersioningCommand({
          Bucket: B,
          VersioningConfiguration: { Status: "Suspended" },
        }),
      );
      const before = await allVersions(s3, "doc");
      // A write answers no version id then, as in S3; reading the version tells "null".
      assert.equal(await put(s3, "doc", "suspended 1"), undefined);
      assert.equal(await put(s3, "doc", "suspended 2"), undefined);
      const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "doc" }));
      assert.equal(head.VersionId, "null");
      const after = await allVersions(s3, "doc");
      assert.equal(after[0], "doc null object latest");
      assert.equal(after.length, before.length, "the new null version replaced the old one");
      assert.equal(await body(s3, "doc", v1), "one", "versioned versions stay");
      assert.equal(await body(s3, "doc", "null"), "suspended 2");
      const deleted = await s3.send(new DeleteObjectCommand({ Bucket: B, Key: "doc" }));
      assert.equal(deleted.DeleteMarker, true);
      assert.equal(deleted.VersionId, "null");
      const withMarker = await allVersions(s3, "doc");
      assert.equal(withMarker[0], "doc null marker latest");
      assert.equal(withMarker.length, before.length, "the marker replaced the null version");
    });

    await t.step("versions outlive a restart", async () => {
      const before = await allVersions(s3);
      await server.restart();
      const s3again = server.client(owner);
      assert.deepEqual(await allVersions(s3again), before);
      assert.equal(await body(s3again, "doc", v1), "one");
      assert.equal(
        (await s3again.send(new GetBucketVersioningCommand({ Bucket: B }))).Status,
        "Suspended",
      );
    });

    await t.step("remise bucket info counts the older versions kept", async () => {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: B }));
      const older = (page.Versions ?? []).filter((v) => !v.IsLatest);
      const info = await (await server.admin("GET", `/v1/buckets/${B}`)).json();
      assert.equal(info.versioning, "Suspended");
      assert.equal(info.noncurrentVersions, older.length);
      assert.equal(info.noncurrentBytes, older.reduce((sum, v) => sum + v.Size!, 0));
      assert.ok(info.noncurrentBytes > 11 * 1024 * 1024, "the multipart version is counted");
    });

    await t.step("DeleteObjects by version id empties the bucket, which can then go", async () => {
      const client = server.client(owner);
      const page = await client.send(new ListObjectVersionsCommand({ Bucket: B }));
      const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
        Key: v.Key!,
        VersionId: v.VersionId!,
      }));
      const res = await client.send(
        new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: objects } }),
      );
      assert.equal(res.Errors, undefined);
      assert.equal(res.Deleted?.length, objects.length);
      const markers = new Set((page.DeleteMarkers ?? []).map((m) => m.VersionId));
      for (const d of res.Deleted ?? []) {
        assert.equal(d.DeleteMarker === true, markers.has(d.VersionId), `${d.Key} ${d.VersionId}`);
      }
      assert.deepEqual(await allVersions(client), []);
      await client.send(new DeleteBucketCommand({ Bucket: B }));
    });
  } finally {
    await server.close();
  }
});

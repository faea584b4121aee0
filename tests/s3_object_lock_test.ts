/**
 * Object lock through the AWS SDK: a bucket created with it keeps
 * versioning; retention (a default, or per object) and legal holds keep
 * versions from being deleted by id (GOVERNANCE yields to its owner's
 * bypass, COMPLIANCE to nothing), while deleting a key still adds a delete
 * marker; retention can be lengthened, not shortened; malformed requests
 * are refused.
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { withTwoKeys } from "./harness.ts";
import { assertErrorResponse, assertS3Error, signedFetch } from "./_s3_helpers.ts";

const HOUR = 3_600_000;

Deno.test("object lock: retention and legal holds keep versions; malformed requests are refused", async (t) => {
  await withTwoKeys(async ({ server, owner, s3, other, s3Other }) => {
    await s3.send(new CreateBucketCommand({ Bucket: "vault", ObjectLockEnabledForBucket: true }));
    await s3.send(new CreateBucketCommand({ Bucket: "plain" }));
    // The other key may write, not own: it cannot bypass GOVERNANCE retention.
    const granted = await server.admin("POST", "/v1/buckets/vault/allow", {
      accessKeyId: other.accessKeyId,
      read: true,
      write: true,
    });
    assert.ok(granted.ok, await granted.text());
    const put = async (key: string, extra: Record<string, unknown> = {}) =>
      (await s3.send(new PutObjectCommand({ Bucket: "vault", Key: key, Body: key, ...extra })))
        .VersionId!;
    const deleteVersion = (key: string, versionId: string, bypass = false, client = s3) =>
      client.send(
        new DeleteObjectCommand({
          Bucket: "vault",
          Key: key,
          VersionId: versionId,
          BypassGovernanceRetention: bypass || undefined,
        }),
      );

    await t.step(
      "a bucket made with object lock has it, and keeps versioning enabled",
      async () => {
        const config = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: "vault" }));
        assert.equal(config.ObjectLockConfiguration?.ObjectLockEnabled, "Enabled");
        await assertS3Error(
          s3.send(
            new PutBucketVersioningCommand({
              Bucket: "vault",
              VersioningConfiguration: { Status: "Suspended" },
            }),
          ),
          "InvalidBucketState",
          409,
        );
        await assertS3Error(
          s3.send(new GetObjectLockConfigurationCommand({ Bucket: "plain" })),
          "ObjectLockConfigurationNotFoundError",
          404,
        );
      },
    );

    await t.step("the default GOVERNANCE retention yields only to the owner's bypass", async () => {
      await s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket: "vault",
          ObjectLockConfiguration: {
            ObjectLockEnabled: "Enabled",
            Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } },
          },
        }),
      );
      const rule = (await s3.send(new GetObjectLockConfigurationCommand({ Bucket: "vault" })))
        .ObjectLockConfiguration?.Rule?.DefaultRetention;
      assert.deepEqual([rule?.Mode, rule?.Days], ["GOVERNANCE", 1]);
      const info = await (await server.admin("GET", "/v1/buckets/vault")).json();
      assert.deepEqual(info.objectLock, { defaultRetention: "GOVERNANCE 1 day" });
      const before = Date.now();
      const id = await put("governed");
      const head = await s3.send(new HeadObjectCommand({ Bucket: "vault", Key: "governed" }));
      assert.equal(head.ObjectLockMode, "GOVERNANCE");
      const until = head.ObjectLockRetainUntilDate!.getTime();
      assert.ok(Math.abs(until - (before + 24 * HOUR)) < 60_000, `retained until ${until}`);
      await assertS3Error(deleteVersion("governed", id), "AccessDenied", 403);
      await assertS3Error(deleteVersion("governed", id, true, s3Other), "AccessDenied", 403);
      // Deleting the key only adds a delete marker: the version stays.
      await s3.send(new DeleteObjectCommand({ Bucket: "vault", Key: "governed" }));
      const versions = await s3.send(
        new ListObjectVersionsCommand({ Bucket: "vault", Prefix: "governed" }),
      );
      assert.deepEqual(versions.Versions?.map((v) => v.VersionId), [id]);
      assert.equal(versions.DeleteMarkers?.length, 1);
      await deleteVersion("governed", id, true);
      const after = await s3.send(
        new ListObjectVersionsCommand({ Bucket: "vault", Prefix: "governed" }),
      );
      assert.equal(after.Versions, undefined);
    });

    await t.step(
      "COMPLIANCE yields to nothing; retention is lengthened, never shortened",
      async () => {
        const until = new Date(Date.now() + HOUR);
        const id = await put("compliant", {
          ObjectLockMode: "COMPLIANCE",
          ObjectLockRetainUntilDate: until,
        });
        await assertS3Error(deleteVersion("compliant", id, true), "AccessDenied", 403);
        const retention = (mode: "COMPLIANCE" | "GOVERNANCE", date: Date, bypass = false) =>
          s3.send(
            new PutObjectRetentionCommand({
              Bucket: "vault",
              Key: "compliant",
              Retention: { Mode: mode, RetainUntilDate: date },
              BypassGovernanceRetention: bypass || undefined,
            }),
          );
        await assertS3Error(
          retention("COMPLIANCE", new Date(until.getTime() - 60_000)),
          "AccessDenied",
          403,
        );
        await assertS3Error(retention("GOVERNANCE", until, true), "AccessDenied", 403);
        const longer = new Date(until.getTime() + HOUR);
        await retention("COMPLIANCE", longer);
        const got = await s3.send(
          new GetObjectRetentionCommand({ Bucket: "vault", Key: "compliant" }),
        );
        assert.equal(got.Retention?.Mode, "COMPLIANCE");
        assert.equal(
          Math.floor(got.Retention!.RetainUntilDate!.getTime() / 1000),
          Math.floor(longer.getTime() / 1000),
        );
        // A GOVERNANCE retention may be shortened by its owner's bypass only.
        const shortlived = await put("shortlived", {
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: new Date(Date.now() + HOUR),
        });
        const soon = new Date(Date.now() + 2_000);
        await assertS3Error(
          s3.send(
            new PutObjectRetentionCommand({
              Bucket: "vault",
              Key: "shortlived",
              Retention: { Mode: "GOVERNANCE", RetainUntilDate: soon },
            }),
          ),
          "AccessDenied",
          403,
        );
        await s3.send(
          new PutObjectRetentionCommand({
            Bucket: "vault",
            Key: "shortlived",
            Retention: { Mode: "GOVERNANCE", RetainUntilDate: soon },
            BypassGovernanceRetention: true,
          }),
        );
        await new Promise((r) => setTimeout(r, soon.getTime() - Date.now() + 200));
        await deleteVersion("shortlived", shortlived); // the retention ended
        // aws-sdk-go removes a retention with an empty Mode: <Mode></Mode>, no date.
        const removable = await put("removable", {
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: new Date(Date.now() + HOUR),
        });
        const removal = (bypass: boolean) =>
          signedFetch(server, owner, {
            method: "PUT",
            path: "/vault/removable",
            query: { retention: "", versionId: removable },
            headers: bypass ? { "x-amz-bypass-governance-retention": "true" } : {},
            body: "<Retention><Mode></Mode></Retention>",
          });
        await assertErrorResponse(await removal(false), 403, "AccessDenied");
        const removed = await removal(true);
        assert.equal(removed.status, 200, await removed.text());
        await deleteVersion("removable", removable); // no retention is left
      },
    );

    await t.step("a legal hold keeps a version until it is lifted", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "held", ObjectLockEnabledForBucket: true }));
      const { VersionId: id } = await s3.send(
        new PutObjectCommand({
          Bucket: "held",
          Key: "evidence",
          Body: "e",
          ObjectLockLegalHoldStatus: "ON",
        }),
      );
      const hold = (status: "ON" | "OFF") =>
        s3.send(
          new PutObjectLegalHoldCommand({
            Bucket: "held",
            Key: "evidence",
            LegalHold: { Status: status },
          }),
        );
      const remove = () =>
        s3.send(
          new DeleteObjectCommand({
            Bucket: "held",
            Key: "evidence",
            VersionId: id,
            BypassGovernanceRetention: true,
          }),
        );
      await assertS3Error(remove(), "AccessDenied", 403);
      // A key that may write, not own, cannot lift it.
      const allowed = await server.admin("POST", "/v1/buckets/held/allow", {
        accessKeyId: other.accessKeyId,
        write: true,
      });
      assert.ok(allowed.ok, await allowed.text());
      // It may place one: the hold is set again, unchanged.
      await s3Other.send(
        new PutObjectLegalHoldCommand({
          Bucket: "held",
          Key: "evidence",
          LegalHold: { Status: "ON" },
        }),
      );
      await assertS3Error(
        s3Other.send(
          new PutObjectLegalHoldCommand({
            Bucket: "held",
            Key: "evidence",
            LegalHold: { Status: "OFF" },
          }),
        ),
        "AccessDenied",
        403,
      );
      const batch = await s3.send(
        new DeleteObjectsCommand({
          Bucket: "held",
          Delete: { Objects: [{ Key: "evidence", VersionId: id }] },
        }),
      );
      assert.deepEqual(batch.Errors?.map((e) => e.Code), ["AccessDenied"]);
      assert.equal(batch.Deleted, undefined);
      await hold("OFF");
      assert.equal(
        (await s3.send(new GetObjectLegalHoldCommand({ Bucket: "held", Key: "evidence" })))
          .LegalHold?.Status,
        "OFF",
      );
      await remove();
    });

    await t.step("an upload through a presigned URL gets the lock its URL asks for", async () => {
      const until = new Date(Date.now() + HOUR);
      const url = await getSignedUrl(
        s3,
        new PutObjectCommand({
          Bucket: "vault",
          Key: "by-url",
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: until,
          ObjectLockLegalHoldStatus: "ON",
        }),
        { expiresIn: 300 },
      );
      // The SDK moves the lock headers into the query: the uploader sends none.
      assert.match(url, /x-amz-object-lock-legal-hold=ON/);
      const put = await fetch(url, { method: "PUT", body: new TextEncoder().encode("kept") });
      assert.equal(put.status, 200, await put.text());
      const head = await s3.send(new HeadObjectCommand({ Bucket: "vault", Key: "by-url" }));
      assert.equal(head.ObjectLockMode, "GOVERNANCE");
      assert.equal(head.ObjectLockRetainUntilDate?.getTime(), until.getTime());
      assert.equal(head.ObjectLockLegalHoldStatus, "ON");
      await assertS3Error(deleteVersion("by-url", head.VersionId!), "AccessDenied", 403);
    });

    await t.step("multipart uploads and copies get the lock they ask for", async () => {
      const until = new Date(Date.now() + HOUR);
      const created = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: "vault",
          Key: "mp",
          ObjectLockMode: "COMPLIANCE",
          ObjectLockRetainUntilDate: until,
        }),
      );
      const part = await s3.send(
        new UploadPartCommand({
          Bucket: "vault",
          Key: "mp",
          UploadId: created.UploadId,
          PartNumber: 1,
          Body: "part",
        }),
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: "vault",
          Key: "mp",
          UploadId: created.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
        }),
      );
      const head = await s3.send(new HeadObjectCommand({ Bucket: "vault", Key: "mp" }));
      assert.equal(head.ObjectLockMode, "COMPLIANCE");
      await assertS3Error(deleteVersion("mp", done.VersionId!, true), "AccessDenied", 403);
      const copy = await s3.send(
        new CopyObjectCommand({
          Bucket: "vault",
          Key: "mp-copy",
          CopySource: "vault/mp",
          ObjectLockLegalHoldStatus: "ON",
        }),
      );
      const copied = await s3.send(new HeadObjectCommand({ Bucket: "vault", Key: "mp-copy" }));
      assert.equal(copied.ObjectLockLegalHoldStatus, "ON");
      // The source's COMPLIANCE retention is not copied; the bucket's default applies.
      assert.equal(copied.ObjectLockMode, "GOVERNANCE");
      await assertS3Error(deleteVersion("mp-copy", copy.VersionId!, true), "AccessDenied", 403);
    });

    await t.step("malformed or misplaced lock requests are refused", async () => {
      const lockPut = (bucket: string, extra: Record<string, unknown>) =>
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: "refused", Body: "x", ...extra }));
      const soon = new Date(Date.now() + HOUR);
      const retention = (bucket: string, mode: string) =>
        s3.send(
          new PutObjectRetentionCommand({
            Bucket: bucket,
            Key: bucket === "plain" ? "free" : "compliant",
            Retention: { Mode: mode as "GOVERNANCE", RetainUntilDate: soon },
          }),
        );
      await s3.send(new PutObjectCommand({ Bucket: "plain", Key: "free", Body: "f" }));
      await assertS3Error(retention("plain", "GOVERNANCE"), "InvalidRequest", 400);
      await assertS3Error(retention("vault", "FOREVER"), "MalformedXML", 400);
      const badHeader = await signedFetch(server, owner, {
        method: "PUT",
        path: "/maybe-locked",
        headers: { "x-amz-bucket-object-lock-enabled": "maybe" },
      });
      await assertErrorResponse(badHeader, 400, "InvalidArgument");
      // Only the bucket's owner bypasses GOVERNANCE, in a batch as alone.
      await assertS3Error(
        s3Other.send(
          new DeleteObjectsCommand({
            Bucket: "vault",
            Delete: { Objects: [{ Key: "governed" }] },
            BypassGovernanceRetention: true,
          }),
        ),
        "AccessDenied",
        403,
      );
      await assertS3Error(
        lockPut("plain", { ObjectLockMode: "GOVERNANCE", ObjectLockRetainUntilDate: soon }),
        "InvalidRequest",
        400,
      );
      await assertS3Error(
        lockPut("vault", { ObjectLockMode: "GOVERNANCE" }),
        "InvalidArgument",
        400,
      );
      await assertS3Error(
        lockPut("vault", {
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: new Date(Date.now() - HOUR),
        }),
        "InvalidArgument",
        400,
      );
      await assertS3Error(
        s3.send(
          new PutObjectLockConfigurationCommand({
            Bucket: "plain",
            ObjectLockConfiguration: { ObjectLockEnabled: "Enabled" },
          }),
        ),
        "InvalidBucketState",
        409,
      );
      await assertS3Error(
        s3.send(
          new PutObjectLockConfigurationCommand({
            Bucket: "vault",
            ObjectLockConfiguration: {
              ObjectLockEnabled: "Enabled",
              Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 0 } },
            },
          }),
        ),
        "InvalidRetentionPeriod",
        400,
      );
      await assertS3Error(
        s3.send(new GetObjectRetentionCommand({ Bucket: "held", Key: "evidence" })),
        "NoSuchKey",
        404,
      );
      await assertS3Error(
        s3.send(new GetObjectRetentionCommand({ Bucket: "plain", Key: "free" })),
        "InvalidRequest",
        400,
      );
      await s3.send(new PutObjectCommand({ Bucket: "held", Key: "free", Body: "f" }));
      await assertS3Error(
        s3.send(new GetObjectRetentionCommand({ Bucket: "held", Key: "free" })),
        "NoSuchObjectLockConfiguration",
        404,
      );
    });
  });
});

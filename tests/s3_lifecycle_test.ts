/**
 * Lifecycle configurations through the AWS SDK: what is accepted, given back
 * and refused (the rules' effect over days is tested on the model with a
 * clock, lib/model/lifecycle_test.ts).
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketLifecycleCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { withTwoKeys } from "./harness.ts";
import { assertConfigurationsRefused, assertS3Error } from "./_s3_helpers.ts";

Deno.test("S3 lifecycle configuration", (t) =>
  withTwoKeys(async ({ server, owner, s3, s3Other }) => {
    await s3.send(new CreateBucketCommand({ Bucket: "life" }));

    await t.step("PutBucketLifecycleConfiguration, then Get gives the rules back", async () => {
      const rules: LifecycleRule[] = [
        {
          ID: "logs",
          Status: "Enabled",
          Filter: { Prefix: "logs/" },
          Expiration: { Days: 30 },
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        },
        {
          ID: "tmp",
          Status: "Disabled",
          Filter: { Prefix: "tmp/" },
          Expiration: { Date: new Date("2030-01-01T00:00:00Z") },
        },
        {
          ID: "all-uploads",
          Status: "Enabled",
          Filter: {},
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        },
        {
          ID: "old-versions",
          Status: "Enabled",
          Filter: { Prefix: "docs/" },
          NoncurrentVersionExpiration: { NoncurrentDays: 30, NewerNoncurrentVersions: 3 },
        },
        {
          // S3's older form: the prefix in the rule, without a Filter.
          ID: "legacy",
          Status: "Enabled",
          Prefix: "old/",
          Expiration: { Days: 5 },
        },
        {
          ID: "markers",
          Status: "Enabled",
          Filter: { Prefix: "" },
          Expiration: { ExpiredObjectDeleteMarker: true },
        },
        {
          ID: "tagged",
          Status: "Enabled",
          Filter: { Tag: { Key: "class", Value: "tmp" } },
          Expiration: { Days: 2 },
        },
        {
          ID: "mid-sized-logs",
          Status: "Enabled",
          Filter: {
            And: {
              Prefix: "logs/",
              Tags: [{ Key: "a", Value: "1" }, { Key: "b", Value: "" }],
              ObjectSizeGreaterThan: 1000,
              ObjectSizeLessThan: 5000,
            },
          },
          NoncurrentVersionExpiration: { NoncurrentDays: 3 },
        },
        {
          ID: "tiny",
          Status: "Enabled",
          Filter: { ObjectSizeLessThan: 10 },
          Expiration: { Days: 9 },
        },
      ];
      await s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: "life",
          LifecycleConfiguration: { Rules: rules },
        }),
      );
      const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "life" }));
      // Every rule comes back as it was given, an empty filter too (as S3 keeps it, and as
      // Terraform compares it: the empty prefix it means would be a change on every plan).
      assert.deepEqual(got.Rules, rules);
    });

    await t.step("a rule given without an ID gets one, as in S3", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "life-no-id" }));
      await s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: "life-no-id",
          LifecycleConfiguration: {
            Rules: [
              { Status: "Enabled", Filter: { Prefix: "a/" }, Expiration: { Days: 1 } },
              { Status: "Enabled", Filter: { Prefix: "b/" }, Expiration: { Days: 2 } },
            ],
          },
        }),
      );
      const got = await s3.send(
        new GetBucketLifecycleConfigurationCommand({ Bucket: "life-no-id" }),
      );
      const ids = got.Rules?.map((r) => r.ID ?? "") ?? [];
      assert.equal(ids.length, 2);
      assert.ok(ids.every((id) => /^[A-Za-z0-9+/]{20,255}$/.test(id)), ids.join());
      assert.notEqual(ids[0], ids[1]);
      const put = await s3.send(
        new PutObjectCommand({ Bucket: "life-no-id", Key: "b/x", Body: "0123456789" }),
      );
      assert.match(put.Expiration ?? "", new RegExp(`rule-id="${ids[1].replaceAll("+", "\\+")}"$`));
      await s3.send(new DeleteObjectCommand({ Bucket: "life-no-id", Key: "b/x" }));
      await s3.send(new DeleteBucketCommand({ Bucket: "life-no-id" }));
    });

    await t.step("remise bucket info counts the rules", async () => {
      const info = await (await server.admin("GET", "/v1/buckets/life")).json();
      assert.equal(info.lifecycleRules, 9);
    });

    await t.step("objects a rule expires say when (x-amz-expiration), others do not", async () => {
      const day = 24 * 3600 * 1000;
      // A number of days counts to the next midnight UTC.
      const expected = (days: number, from: number, to: number) =>
        new Set([from, to].map((t) => new Date(Math.ceil((t + days * day) / day) * day)))
          .values().map((d) => d.toUTCString()).toArray();
      const expiration = async (write: () => Promise<{ Expiration?: string }>) => {
        const from = Date.now();
        const { Expiration } = await write();
        return { header: Expiration, from, to: Date.now() };
      };
      const assertExpires = (
        got: { header?: string; from: number; to: number },
        days: number,
        ruleId: string,
      ) => {
        const m = got.header?.match(/^expiry-date="([^"]+)", rule-id="([^"]+)"$/);
        assert.ok(m, `x-amz-expiration: ${got.header}`);
        assert.ok(expected(days, got.from, got.to).includes(m[1]), m[1]);
        assert.equal(m[2], ruleId);
      };
      // 16 bytes: rule "tiny" selects objects under 10.
      const put = (Key: string, Body = "0123456789abcdef", Tagging?: string) => () =>
        s3.send(new PutObjectCommand({ Bucket: "life", Key, Body, Tagging }));
      const logs = await expiration(put("logs/a.txt"));
      assertExpires(logs, 30, "logs");
      const head = await s3.send(new HeadObjectCommand({ Bucket: "life", Key: "logs/a.txt" }));
      assert.equal(head.Expiration, logs.header);
      const get = await s3.send(new GetObjectCommand({ Bucket: "life", Key: "logs/a.txt" }));
      assert.equal(get.Expiration, logs.header);
      await get.Body!.transformToString();
      assertExpires(await expiration(put("old/b")), 5, "legacy");
      // The rule for tmp/ is disabled; nothing expires other/ (but tags and sizes).
      for (const key of ["tmp/c", "other/d"]) {
        assert.equal((await expiration(put(key))).header, undefined, key);
        const headed = await s3.send(new HeadObjectCommand({ Bucket: "life", Key: key }));
        assert.equal(headed.Expiration, undefined, key);
      }
      assertExpires(
        await expiration(() =>
          s3.send(
            new CopyObjectCommand({ Bucket: "life", Key: "logs/copy", CopySource: "life/other/d" }),
          )
        ),
        30,
        "logs",
      );
      const { UploadId } = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: "life", Key: "logs/mpu" }),
      );
      const part = await s3.send(
        new UploadPartCommand({
          Bucket: "life",
          Key: "logs/mpu",
          UploadId,
          PartNumber: 1,
          Body: "0123456789abcdef",
        }),
      );
      assertExpires(
        await expiration(() =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: "life",
              Key: "logs/mpu",
              UploadId,
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
            }),
          )
        ),
        30,
        "logs",
      );
      // Rules on tags and sizes: the earliest that selects the object.
      assertExpires(await expiration(put("other/tiny", "x")), 9, "tiny");
      assertExpires(await expiration(put("other/t", undefined, "class=tmp&x=y")), 2, "tagged");
      assertExpires(await expiration(put("logs/t", undefined, "class=tmp")), 2, "tagged");
      assert.equal((await expiration(put("other/u", undefined, "class=keep"))).header, undefined);
      const from = Date.now();
      await s3.send(
        new PutObjectTaggingCommand({
          Bucket: "life",
          Key: "other/d",
          Tagging: { TagSet: [{ Key: "class", Value: "tmp" }] },
        }),
      );
      const retagged = await expiration(() =>
        s3.send(new HeadObjectCommand({ Bucket: "life", Key: "other/d" }))
      );
      assertExpires({ ...retagged, from }, 2, "tagged");
      const keys = ["logs/a.txt", "old/b", "tmp/c", "other/d", "logs/copy", "logs/mpu"];
      for (const key of [...keys, "other/tiny", "other/t", "logs/t", "other/u"]) {
        await s3.send(new DeleteObjectCommand({ Bucket: "life", Key: key }));
      }
    });

    await t.step("invalid configurations are refused and change nothing", async () => {
      const rule = (inner: string) =>
        `<LifecycleConfiguration><Rule>${inner}</Rule></LifecycleConfiguration>`;
      const cases: [string, string, number][] = [
        [
          rule("<Status>Enabled</Status><Filter/><Expiration><Days>0</Days></Expiration>"),
          "InvalidArgument",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>",
          ),
          "InvalidArgument",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>",
          ),
          "InvalidArgument",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><NoncurrentVersionExpiration><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
          ),
          "MalformedXML",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration>",
          ),
          "MalformedXML",
          400,
        ],
        [
          rule("<Status>Maybe</Status><Filter/><Expiration><Days>1</Days></Expiration>"),
          "MalformedXML",
          400,
        ],
        [rule("<Status>Enabled</Status><Filter/>"), "InvalidRequest", 400],
        ...([
          // Two conditions need an And; a tag needs its value.
          ["<Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>", "MalformedXML"],
          ["<Tag><Key>k</Key></Tag>", "MalformedXML"],
          ["<And></And>", "MalformedXML"],
          [
            "<And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></And>",
            "InvalidRequest",
          ],
          [
            "<And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And>",
            "InvalidArgument",
          ],
          ["<ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan>", "InvalidArgument"],
        ] as const).map(([filter, code]): [string, string, number] => [
          rule(
            `<Status>Enabled</Status><Filter>${filter}</Filter><Expiration><Days>1</Days></Expiration>`,
          ),
          code,
          400,
        ]),
        [
          rule(
            "<Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
          ),
          "InvalidRequest",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter><ObjectSizeLessThan>9</ObjectSizeLessThan></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
          ),
          "InvalidRequest",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>",
          ),
          "NotImplemented",
          501,
        ],
        [
          // A transition S3 would refuse gets S3's answer before NotImplemented.
          rule(
            "<Status>Enabled</Status><Filter/><Transition><Date>20220927</Date><StorageClass>GLACIER</StorageClass></Transition>",
          ),
          "InvalidArgument",
          400,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><Expiration><Date>Tue, 27 Sep 2022 00:00:00 GMT</Date></Expiration>",
          ),
          "InvalidArgument",
          400,
        ],
        [
          "<LifecycleConfiguration></LifecycleConfiguration>",
          "MalformedXML",
          400,
        ],
        [
          `<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Status>Enabled</Status><Filter/><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>`,
          "InvalidArgument",
          400,
        ],
        ["<LifecycleConfiguration><Rule>", "MalformedXML", 400],
      ];
      await assertConfigurationsRefused(server, owner, "life", "lifecycle", cases);
      await assertS3Error(
        s3Other.send(
          new PutBucketLifecycleConfigurationCommand({
            Bucket: "life",
            LifecycleConfiguration: {
              Rules: [{ Status: "Enabled", Filter: {}, Expiration: { Days: 1 } }],
            },
          }),
        ),
        "AccessDenied",
        403,
      );
      const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "life" }));
      assert.deepEqual(got.Rules?.map((r) => r.ID), [
        "logs",
        "tmp",
        "all-uploads",
        "old-versions",
        "legacy",
        "markers",
        "tagged",
        "mid-sized-logs",
        "tiny",
      ]);
    });

    await t.step("DeleteBucketLifecycle removes the rules", async () => {
      const deleted = await s3.send(new DeleteBucketLifecycleCommand({ Bucket: "life" }));
      assert.equal(deleted.$metadata.httpStatusCode, 204);
      await assertS3Error(
        s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "life" })),
        "NoSuchLifecycleConfiguration",
        404,
      );
    });
  }));

/**
 * Lifecycle configurations through the AWS SDK: what is accepted, given back
 * and refused (the rules' effect over days is tested on the model with a
 * clock, lib/model/lifecycle_test.ts).
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  DeleteBucketLifecycleCommand,
  GetBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
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
      ];
      await s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: "life",
          LifecycleConfiguration: { Rules: rules },
        }),
      );
      const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "life" }));
      // An empty filter comes back as the empty prefix it means.
      assert.deepEqual(
        got.Rules,
        rules.map((rule) =>
          rule.Prefix !== undefined
            ? rule
            : { ...rule, Filter: { Prefix: rule.Filter?.Prefix ?? "" } }
        ),
      );
    });

    await t.step("remise bucket info counts the rules", async () => {
      const info = await (await server.admin("GET", "/v1/buckets/life")).json();
      assert.equal(info.lifecycleRules, 6);
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
        [
          rule(
            "<Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days></Expiration>",
          ),
          "NotImplemented",
          501,
        ],
        [
          rule(
            "<Status>Enabled</Status><Filter/><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>",
          ),
          "NotImplemented",
          501,
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

/**
 * Bucket operations through the AWS SDK against a real `remise server`:
 * ListBuckets, CreateBucket (and its errors), HeadBucket, DeleteBucket,
 * GetBucketLocation, the configurations remise does not keep (read as
 * unset), plus MethodNotAllowed and NotImplemented answers.
 */
import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketOwnershipControlsCommand,
  GetBucketAclCommand,
  GetBucketCorsCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketLocationCommand,
  GetBucketLoggingCommand,
  GetBucketNotificationConfigurationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketRequestPaymentCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  type ListBucketsCommandInput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  type ObjectOwnership,
  PutBucketAclCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { REGION, TestServer, withTwoKeys } from "./harness.ts";
import {
  assertConfigurationsRefused,
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  keysOf,
  objectPath,
  signedFetch,
  snapshotStore,
} from "./_s3_helpers.ts";

Deno.test("S3 bucket operations", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const other = await server.createKey("other");
  const s3 = server.client(owner);
  const s3Other = server.client(other);
  try {
    const names = async () =>
      ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);

    await t.step("ListBuckets is empty on a new store", async () => {
      assert.deepEqual(await names(), []);
    });

    await t.step("CreateBucket creates buckets that ListBuckets lists, sorted", async () => {
      const before = Date.now();
      for (const name of ["beta", "alpha", "with.dots-and-1"]) {
        const res = await s3.send(new CreateBucketCommand({ Bucket: name }));
        assert.equal(res.$metadata.httpStatusCode, 200);
      }
      const list = await s3.send(new ListBucketsCommand({}));
      assert.deepEqual(list.Buckets!.map((b) => b.Name), ["alpha", "beta", "with.dots-and-1"]);
      for (const b of list.Buckets!) {
        const created = b.CreationDate!.getTime();
        assert.ok(created >= before - 2000 && created <= Date.now() + 2000, `${b.CreationDate}`);
      }
      assert.ok(list.Owner?.ID, "ListBuckets names an owner");
    });

    await t.step("ListBuckets by prefix, region and page (max-buckets)", async () => {
      const list = (input: ListBucketsCommandInput) => s3.send(new ListBucketsCommand(input));
      const byPrefix = await list({ Prefix: "be" });
      assert.deepEqual(byPrefix.Buckets!.map((b) => b.Name), ["beta"]);
      assert.equal(byPrefix.Prefix, "be");
      assert.equal(byPrefix.ContinuationToken, undefined);
      assert.deepEqual((await list({ BucketRegion: "elsewhere-1" })).Buckets ?? [], []);
      assert.equal((await list({ BucketRegion: REGION })).Buckets!.length, 3);
      const pages: string[][] = [];
      let token: string | undefined;
      do {
        const page = await list({ MaxBuckets: 2, ContinuationToken: token });
        pages.push(page.Buckets!.map((b) => b.Name!));
        token = page.ContinuationToken;
      } while (token && pages.length < 5);
      assert.deepEqual(pages, [["alpha", "beta"], ["with.dots-and-1"]]);
      const badQueries: Record<string, string>[] = [
        { "max-buckets": "0" },
        { "max-buckets": "x" },
        { "continuation-token": "%%%" },
      ];
      for (const query of badQueries) {
        const res = await signedFetch(server, owner, { method: "GET", path: "/", query });
        await assertErrorResponse(res, 400, "InvalidArgument");
      }
    });

    await t.step("CreateBucket with a LocationConstraint of the server's region", async () => {
      await s3.send(
        new CreateBucketCommand({
          Bucket: "located",
          CreateBucketConfiguration: { LocationConstraint: REGION as never },
        }),
      );
      assert.ok((await names()).includes("located"));
    });

    await t.step("re-creating an own bucket is BucketAlreadyOwnedByYou", async () => {
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(new CreateBucketCommand({ Bucket: "alpha" })),
        "BucketAlreadyOwnedByYou",
        409,
      );
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("creating another key's bucket is BucketAlreadyExists", async () => {
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3Other.send(new CreateBucketCommand({ Bucket: "alpha" })),
        "BucketAlreadyExists",
        409,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      // The other key got no rights on it from the failed attempt.
      const otherList = await s3Other.send(new ListBucketsCommand({}));
      assert.deepEqual(otherList.Buckets ?? [], []);
    });

    await t.step("invalid bucket names are InvalidBucketName and create nothing", async () => {
      const bad = [
        "ab", // too short
        "a".repeat(64), // too long
        "UpperCase",
        "under_score",
        "-starts-with-hyphen",
        "ends-with-hyphen-",
        "two..dots",
        "192.168.1.1",
        "dot-.hyphen",
        "xn--reserved",
        "amzn-s3-demo-bucket",
        "point.mrap",
        "directory--x-s3",
        "tables--table-s3",
        "b".repeat(2100), // longer than the metadata store's keys
      ];
      const before = await snapshotStore(s3);
      for (const name of bad) {
        // A raw signed request: the SDK may refuse or rewrite some of these names.
        const res = await signedFetch(server, owner, { method: "PUT", path: objectPath(name) });
        await assertErrorResponse(res, 400, "InvalidBucketName").catch((e) => {
          throw new Error(`bucket name ${JSON.stringify(name)}: ${e.message}`);
        });
      }
      assert.deepEqual(await snapshotStore(s3), before);
      // A 63-character name is the longest valid one.
      const longest = "a".repeat(63);
      await s3.send(new CreateBucketCommand({ Bucket: longest }));
      assert.ok((await names()).includes(longest));
      await s3.send(new DeleteBucketCommand({ Bucket: longest }));
      assert.deepEqual(await snapshotStore(s3), before);
      // So is a canned ACL S3 does not have.
      const badAcl = await signedFetch(server, owner, {
        method: "PUT",
        path: objectPath("acl-typo"),
        headers: { "x-amz-acl": "public-ready" },
      });
      await assertErrorResponse(badAcl, 400, "InvalidArgument");
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("HeadBucket: 200 for an existing bucket, 404 for an unknown one", async () => {
      const res = await s3.send(new HeadBucketCommand({ Bucket: "alpha" }));
      assert.equal(res.$metadata.httpStatusCode, 200);
      assert.equal(res.BucketRegion, REGION);
      await assertS3Status(s3.send(new HeadBucketCommand({ Bucket: "no-such-bucket" })), 404);
      // The same with a raw request: 404 and no body (HEAD).
      const raw = await signedFetch(server, owner, {
        method: "HEAD",
        path: objectPath("no-such-bucket"),
      });
      assert.equal(raw.status, 404);
      assert.equal(await raw.text(), "");
    });

    await t.step("GetBucketLocation answers the server's region", async () => {
      const res = await s3.send(new GetBucketLocationCommand({ Bucket: "alpha" }));
      assert.equal(res.LocationConstraint, REGION);
      await assertS3Error(
        s3.send(new GetBucketLocationCommand({ Bucket: "no-such-bucket" })),
        "NoSuchBucket",
        404,
      );
      const raw = await signedFetch(server, owner, {
        method: "GET",
        path: objectPath("alpha"),
        query: { location: "" },
      });
      assert.equal(raw.status, 200);
      assert.match(await raw.text(), new RegExp(`<LocationConstraint[^>]*>${REGION}<`));
    });

    await t.step("DeleteBucket: BucketNotEmpty, then success once emptied", async () => {
      await s3.send(new PutObjectCommand({ Bucket: "beta", Key: "k", Body: "content" }));
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(new DeleteBucketCommand({ Bucket: "beta" })),
        "BucketNotEmpty",
        409,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      const raw = await signedFetch(server, owner, { method: "DELETE", path: objectPath("beta") });
      await assertErrorResponse(raw, 409, "BucketNotEmpty");
      assert.deepEqual(await snapshotStore(s3), before);

      const del = await signedFetch(server, owner, {
        method: "DELETE",
        path: objectPath("beta", "k"),
      });
      assert.equal(del.status, 204);
      await del.body?.cancel();
      // A multipart upload in progress does not hold the bucket: it is aborted with it, as in S3.
      const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: "beta", Key: "mp" }));
      await s3.send(
        new UploadPartCommand({
          Bucket: "beta",
          Key: "mp",
          UploadId: upload.UploadId,
          PartNumber: 1,
          Body: "part",
        }),
      );
      const res = await s3.send(new DeleteBucketCommand({ Bucket: "beta" }));
      assert.equal(res.$metadata.httpStatusCode, 204);
      assert.deepEqual(await names(), ["alpha", "located", "with.dots-and-1"]);
      await assertS3Status(s3.send(new HeadBucketCommand({ Bucket: "beta" })), 404);
    });

    await t.step("DeleteBucket of an unknown bucket is NoSuchBucket", async () => {
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(new DeleteBucketCommand({ Bucket: "no-such-bucket" })),
        "NoSuchBucket",
        404,
      );
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("a deleted bucket's name can be created again, empty", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "beta" }));
      const snap = await snapshotStore(s3);
      assert.deepEqual(snap.beta, []);
      await s3.send(new DeleteBucketCommand({ Bucket: "beta" }));
    });

    await t.step("a key without rights can neither see, delete nor re-create", async () => {
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3Other.send(new DeleteBucketCommand({ Bucket: "alpha" })),
        "AccessDenied",
        403,
      );
      // HEAD answers carry no body: only the status tells.
      await assertS3Status(s3Other.send(new HeadBucketCommand({ Bucket: "alpha" })), 403);
      await assertS3Error(
        s3Other.send(new GetBucketLocationCommand({ Bucket: "alpha" })),
        "AccessDenied",
        403,
      );
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("ListBuckets needs a signature: anonymous is AccessDenied", async () => {
      const res = await fetch(`${server.endpoint}/`);
      await assertErrorResponse(res, 403, "AccessDenied");
      const create = await fetch(`${server.endpoint}/anonymous-bucket`, { method: "PUT" });
      await assertErrorResponse(create, 403, "AccessDenied");
      assert.ok(!(await names()).includes("anonymous-bucket"));
    });

    await t.step("unknown methods are MethodNotAllowed", async () => {
      const before = await snapshotStore(s3);
      for (const [method, path] of [["PATCH", "/alpha/key"], ["DELETE", "/"], ["PUT", "/"]]) {
        const res = await signedFetch(server, owner, { method, path });
        await assertErrorResponse(res, 405, "MethodNotAllowed").catch((e) => {
          throw new Error(`${method} ${path}: ${e.message}`);
        });
      }
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step(
      "object ownership is BucketOwnerEnforced: settable as such, not otherwise",
      async () => {
        const ownership = async (Bucket: string) =>
          (await s3.send(new GetBucketOwnershipControlsCommand({ Bucket }))).OwnershipControls
            ?.Rules?.map((r) => r.ObjectOwnership);
        assert.deepEqual(await ownership("alpha"), ["BucketOwnerEnforced"]);
        const controls = (ObjectOwnership: string) => ({
          Bucket: "alpha",
          OwnershipControls: { Rules: [{ ObjectOwnership: ObjectOwnership as ObjectOwnership }] },
        });
        const put = await s3.send(
          new PutBucketOwnershipControlsCommand(controls("BucketOwnerEnforced")),
        );
        assert.equal(put.$metadata.httpStatusCode, 200);
        for (
          const [value, code, status] of [
            ["ObjectWriter", "NotImplemented", 501],
            ["BucketOwnerPreferred", "NotImplemented", 501],
            ["Everyone", "InvalidArgument", 400],
          ] as const
        ) {
          await assertS3Error(
            s3.send(new PutBucketOwnershipControlsCommand(controls(value))),
            code,
            status,
          );
        }
        await assertS3Error(
          s3Other.send(new PutBucketOwnershipControlsCommand(controls("BucketOwnerEnforced"))),
          "AccessDenied",
          403,
        );
        const rule = (o: string) => `<Rule><ObjectOwnership>${o}</ObjectOwnership></Rule>`;
        await assertConfigurationsRefused(server, owner, "alpha", "ownershipControls", [
          ["<OwnershipControls></OwnershipControls>", "MalformedXML", 400],
          [
            `<OwnershipControls>${rule("BucketOwnerEnforced")}${
              rule("BucketOwnerEnforced")
            }</OwnershipControls>`,
            "MalformedXML",
            400,
          ],
          ["<OwnershipControls><Rule></Rule></OwnershipControls>", "MalformedXML", 400],
          ["<OwnershipControls>", "MalformedXML", 400],
        ]);
        const deleted = await s3.send(
          new DeleteBucketOwnershipControlsCommand({ Bucket: "alpha" }),
        );
        assert.equal(deleted.$metadata.httpStatusCode, 204);
        assert.deepEqual(await ownership("alpha"), ["BucketOwnerEnforced"], "what holds still");

        await s3.send(
          new CreateBucketCommand({ Bucket: "enforced", ObjectOwnership: "BucketOwnerEnforced" }),
        );
        assert.deepEqual(await ownership("enforced"), ["BucketOwnerEnforced"]);
        await s3.send(new DeleteBucketCommand({ Bucket: "enforced" }));
        await assertS3Error(
          s3.send(new CreateBucketCommand({ Bucket: "writer", ObjectOwnership: "ObjectWriter" })),
          "NotImplemented",
          501,
        );
        assert.ok(!(await names()).includes("writer"), "nothing was created");
      },
    );

    await t.step(
      "configurations remise does not keep read as unset; setting one is 501, but ACL private",
      async () => {
        const before = await snapshotStore(s3);
        const unset: [Promise<unknown>, string][] = [
          [s3.send(new GetBucketPolicyCommand({ Bucket: "alpha" })), "NoSuchBucketPolicy"],
          [s3.send(new GetBucketCorsCommand({ Bucket: "alpha" })), "NoSuchCORSConfiguration"],
          [
            s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "alpha" })),
            "NoSuchLifecycleConfiguration",
          ],
          [
            s3.send(new GetBucketEncryptionCommand({ Bucket: "alpha" })),
            "ServerSideEncryptionConfigurationNotFoundError",
          ],
          [s3.send(new GetBucketTaggingCommand({ Bucket: "alpha" })), "NoSuchTagSet"],
        ];
        for (const [call, code] of unset) await assertS3Error(call, code, 404);
        const logging = await s3.send(new GetBucketLoggingCommand({ Bucket: "alpha" }));
        assert.equal(logging.LoggingEnabled, undefined);
        const payment = await s3.send(new GetBucketRequestPaymentCommand({ Bucket: "alpha" }));
        assert.equal(payment.Payer, "BucketOwner");
        const acl = await s3.send(new GetBucketAclCommand({ Bucket: "alpha" }));
        assert.equal(acl.Owner?.ID, owner.accessKeyId);
        assert.deepEqual(
          acl.Grants?.map((g) => [g.Grantee?.Type, g.Grantee?.ID, g.Permission]),
          [["CanonicalUser", owner.accessKeyId, "FULL_CONTROL"]],
        );
        // An unknown bucket, or another key's, is refused as for any operation.
        await assertS3Error(
          s3.send(new GetBucketCorsCommand({ Bucket: "no-such-bucket" })),
          "NoSuchBucket",
          404,
        );
        await assertS3Error(
          s3Other.send(new GetBucketAclCommand({ Bucket: "alpha" })),
          "AccessDenied",
          403,
        );

        await assertS3Error(
          s3.send(new PutBucketAclCommand({ Bucket: "alpha", ACL: "public-read" })),
          "NotImplemented",
          501,
        );
        // The canned ACL private is what holds already: setting it succeeds, for the owner only.
        const privateAcl = await s3.send(
          new PutBucketAclCommand({ Bucket: "alpha", ACL: "private" }),
        );
        assert.equal(privateAcl.$metadata.httpStatusCode, 200);
        await assertS3Error(
          s3Other.send(new PutBucketAclCommand({ Bucket: "alpha", ACL: "private" })),
          "AccessDenied",
          403,
        );
        for (
          const [method, query] of [
            ["PUT", "logging"],
            ["PUT", "replication"],
            ["DELETE", "replication"],
            ["GET", "analytics"],
          ]
        ) {
          const res = await signedFetch(server, owner, {
            method,
            path: objectPath("alpha"),
            query: { [query]: "" },
          });
          await assertErrorResponse(res, 501, "NotImplemented").catch((e) => {
            throw new Error(`${method} ?${query}: ${e.message}`);
          });
        }
        assert.deepEqual(await snapshotStore(s3), before);
      },
    );

    await t.step(
      "an empty notification configuration is accepted; one asking for notifications is 501",
      async () => {
        const before = await snapshotStore(s3);
        // What Terraform and boto3 send to clear a bucket's notifications.
        const cleared = await s3.send(
          new PutBucketNotificationConfigurationCommand({
            Bucket: "alpha",
            NotificationConfiguration: {},
          }),
        );
        assert.equal(cleared.$metadata.httpStatusCode, 200);
        const put = (body: string, credentials = owner) =>
          signedFetch(server, credentials, {
            method: "PUT",
            path: objectPath("alpha"),
            query: { notification: "" },
            body,
          });
        const empty = await put(
          '<?xml version="1.0" encoding="UTF-8"?>\n' +
            '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n' +
            "  </NotificationConfiguration>",
        );
        assert.equal(empty.status, 200, await empty.text());
        await assertErrorResponse(
          await put("<NotificationConfiguration/>", other),
          403,
          "AccessDenied",
        );
        for (
          const body of [
            "",
            "<NotificationConfiguration>",
            "<NotificationConfiguration>text</NotificationConfiguration>",
            "<Other/>",
          ]
        ) {
          await assertErrorResponse(await put(body), 400, "MalformedXML").catch((e) => {
            throw new Error(`${JSON.stringify(body)}: ${e.message}`);
          });
        }
        for (
          const asked of [
            "<TopicConfiguration><Topic>arn:aws:sns:us-east-1:1:t</Topic>" +
            "<Event>s3:ObjectCreated:*</Event></TopicConfiguration>",
            "<QueueConfiguration><Queue>arn:aws:sqs:us-east-1:1:q</Queue>" +
            "<Event>s3:ObjectCreated:*</Event></QueueConfiguration>",
            "<CloudFunctionConfiguration><CloudFunction>arn:aws:lambda:us-east-1:1:function:f" +
            "</CloudFunction><Event>s3:ObjectCreated:*</Event></CloudFunctionConfiguration>",
            "<EventBridgeConfiguration/>",
          ]
        ) {
          const body = `<NotificationConfiguration>\n${asked}\n</NotificationConfiguration>`;
          await assertErrorResponse(await put(body), 501, "NotImplemented").catch((e) => {
            throw new Error(`${asked}: ${e.message}`);
          });
        }
        await assertS3Error(
          s3.send(
            new PutBucketNotificationConfigurationCommand({
              Bucket: "alpha",
              NotificationConfiguration: {
                TopicConfigurations: [{
                  TopicArn: "arn:aws:sns:us-east-1:1:t",
                  Events: ["s3:ObjectCreated:*"],
                }],
              },
            }),
          ),
          "NotImplemented",
          501,
        );
        const got = await s3.send(
          new GetBucketNotificationConfigurationCommand({ Bucket: "alpha" }),
        );
        assert.equal(got.TopicConfigurations, undefined);
        assert.equal(got.QueueConfigurations, undefined);
        assert.deepEqual(await snapshotStore(s3), before);
      },
    );

    await t.step("a key denied the right to create buckets gets AccessDenied", async () => {
      const denied = await server.admin("POST", `/v1/keys/${other.accessKeyId}/deny`, {
        createBucket: true,
      });
      assert.equal(denied.status, 200, await denied.text());
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3Other.send(new CreateBucketCommand({ Bucket: "not-for-other" })),
        "AccessDenied",
        403,
      );
      assert.deepEqual(await snapshotStore(s3), before);
      const allowed = await server.admin("POST", `/v1/keys/${other.accessKeyId}/allow`, {
        createBucket: true,
      });
      assert.equal(allowed.status, 200, await allowed.text());
      await s3Other.send(new CreateBucketCommand({ Bucket: "now-for-other" }));
      await s3Other.send(new DeleteBucketCommand({ Bucket: "now-for-other" }));
    });
  } finally {
    s3.destroy();
    s3Other.destroy();
    await server.close();
  }
});

Deno.test("in us-east-1, an owner creating its bucket again gets 200, and the location is empty, as S3 answers there", async () => {
  const server = await TestServer.start({ region: "us-east-1" });
  const owner = await server.createKey("owner");
  const other = await server.createKey("other");
  const s3 = server.client(owner);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "legacy" }));
    await s3.send(new PutObjectCommand({ Bucket: "legacy", Key: "kept", Body: "data" }));
    const again = await s3.send(new CreateBucketCommand({ Bucket: "legacy" }));
    assert.equal(again.Location, "/legacy");
    assert.deepEqual(await keysOf(s3, "legacy"), ["kept"], "the bucket is left as it was");
    // S3 names no location constraint in its first region; SDKs read that as us-east-1.
    const location = await signedFetch(server, owner, {
      method: "GET",
      path: objectPath("legacy"),
      query: { location: "" },
      region: "us-east-1",
    });
    assert.equal(location.status, 200);
    assert.match(await location.text(), /<LocationConstraint [^>]*><\/LocationConstraint>$/);
    const parsed = await s3.send(new GetBucketLocationCommand({ Bucket: "legacy" }));
    assert.equal(parsed.LocationConstraint ?? "", "");
    await assertS3Error(
      server.client(other).send(new CreateBucketCommand({ Bucket: "legacy" })),
      "BucketAlreadyExists",
      409,
    );
  } finally {
    s3.destroy();
    await server.close();
  }
});

Deno.test("ExpectedBucketOwner: a bucket owned by another key is AccessDenied, and nothing is written", async () => {
  await withTwoKeys(async ({ server, owner, other, s3, s3Other }) => {
    await s3.send(new CreateBucketCommand({ Bucket: "owned" }));
    await s3.send(new CreateBucketCommand({ Bucket: "source" }));
    await s3.send(new PutObjectCommand({ Bucket: "source", Key: "a", Body: "a" }));
    for (const bucket of ["owned", "source"]) {
      const granted = await server.admin("POST", `/v1/buckets/${bucket}/allow`, {
        accessKeyId: other.accessKeyId,
        read: true,
        write: true,
      });
      assert.ok(granted.ok, await granted.text());
    }
    const before = await snapshotStore(s3);
    for (const client of [s3, s3Other]) {
      for (const expected of [other.accessKeyId, "123456789012"]) {
        await assertS3Error(
          client.send(
            new PutObjectCommand({
              Bucket: "owned",
              Key: "k",
              Body: "x",
              ExpectedBucketOwner: expected,
            }),
          ),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          client.send(new ListObjectsV2Command({ Bucket: "owned", ExpectedBucketOwner: expected })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          client.send(
            new CopyObjectCommand({
              Bucket: "owned",
              Key: "copy",
              CopySource: "source/a",
              ExpectedSourceBucketOwner: expected,
            }),
          ),
          "AccessDenied",
          403,
        );
      }
    }
    assert.deepEqual(await snapshotStore(s3), before);
    // The owner's key id, as ListBuckets names it, is what to expect.
    const ownerId = (await s3.send(new ListBucketsCommand({}))).Owner?.ID;
    assert.equal(ownerId, owner.accessKeyId);
    for (const client of [s3, s3Other]) {
      await client.send(
        new PutObjectCommand({
          Bucket: "owned",
          Key: "k",
          Body: "x",
          ExpectedBucketOwner: ownerId,
        }),
      );
      await client.send(
        new CopyObjectCommand({
          Bucket: "owned",
          Key: "copy",
          CopySource: "source/a",
          ExpectedBucketOwner: ownerId,
          ExpectedSourceBucketOwner: ownerId,
        }),
      );
      const listed: ListObjectsV2CommandOutput = await client.send(
        new ListObjectsV2Command({ Bucket: "owned", ExpectedBucketOwner: ownerId }),
      );
      assert.deepEqual(listed.Contents?.map((o) => o.Key), ["copy", "k"]);
    }
  });
});

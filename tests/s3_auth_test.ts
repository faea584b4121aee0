/**
 * Authentication and rights against a real `remise server`: anonymous
 * requests, keys without rights, read-only and write-only keys, SigV4 errors
 * (unknown key, wrong secret, wrong region, skewed clock, payload hash
 * mismatch, tampering) and presigned URLs.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { type Credentials, REGION, TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  objectPath,
  sha256Hex,
  signedFetch,
  signRequest,
  snapshotStore,
} from "./_s3_helpers.ts";

const BUCKET = "guarded";
const KEY = "secret.txt";
const BODY = "the secret content";

Deno.test("S3 authentication and rights", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const s3 = server.client(owner);
  const clients: S3Client[] = [s3];
  const clientFor = (
    credentials: Credentials,
    options: { region?: string; systemClockOffset?: number } = {},
  ) => {
    const c = new S3Client({
      endpoint: server.endpoint,
      region: options.region ?? REGION,
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
      systemClockOffset: options.systemClockOffset,
    });
    clients.push(c);
    return c;
  };
  const allow = async (
    accessKeyId: string,
    rights: { read: boolean; write: boolean; owner: boolean },
  ) => {
    const res = await server.admin("POST", `/v1/buckets/${BUCKET}/allow`, {
      accessKeyId,
      ...rights,
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
  };
  /** Runs `fn` (expected to fail) and checks the store is unchanged afterwards. */
  const unchanged = async (fn: () => Promise<void>) => {
    const before = await snapshotStore(s3);
    await fn();
    assert.deepEqual(await snapshotStore(s3), before);
  };

  try {
    const created = await server.admin("POST", "/v1/buckets", { name: BUCKET });
    const createdText = await created.text();
    assert.ok(created.status < 300, createdText);
    await allow(owner.accessKeyId, { read: true, write: true, owner: true });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: BODY }));

    await t.step("anonymous requests are AccessDenied and change nothing", async () => {
      await unchanged(async () => {
        const url = `${server.endpoint}${objectPath(BUCKET, KEY)}`;
        await assertErrorResponse(await fetch(url), 403, "AccessDenied");
        const head = await fetch(url, { method: "HEAD" });
        assert.equal(head.status, 403);
        await head.body?.cancel();
        await assertErrorResponse(
          await fetch(url, { method: "PUT", body: "overwritten" }),
          403,
          "AccessDenied",
        );
        await assertErrorResponse(
          await fetch(`${server.endpoint}${objectPath(BUCKET, "new")}`, {
            method: "PUT",
            body: "new",
          }),
          403,
          "AccessDenied",
        );
        await assertErrorResponse(await fetch(url, { method: "DELETE" }), 403, "AccessDenied");
        await assertErrorResponse(
          await fetch(`${server.endpoint}/${BUCKET}?list-type=2`),
          403,
          "AccessDenied",
        );
        await assertErrorResponse(
          await fetch(`${server.endpoint}/${BUCKET}`, { method: "DELETE" }),
          403,
          "AccessDenied",
        );
      });
    });

    await t.step("an empty or spaceless Authorization header is InvalidArgument", async () => {
      await unchanged(async () => {
        const url = `${server.endpoint}${objectPath(BUCKET, KEY)}`;
        for (const authorization of ["", "garbage"]) {
          await assertErrorResponse(
            await fetch(url, { method: "PUT", body: "overwritten", headers: { authorization } }),
            400,
            "InvalidArgument",
          );
        }
      });
    });

    await t.step("a key without rights on the bucket is AccessDenied", async () => {
      const stranger = clientFor(await server.createKey("stranger"));
      await unchanged(async () => {
        await assertS3Error(
          stranger.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "AccessDenied",
          403,
        );
        await assertS3Status(
          stranger.send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY })),
          403,
        );
        await assertS3Error(
          stranger.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          stranger.send(new PutObjectCommand({ Bucket: BUCKET, Key: "new", Body: "new" })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          stranger.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          stranger.send(new ListObjectsV2Command({ Bucket: BUCKET })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          stranger.send(new DeleteBucketCommand({ Bucket: BUCKET })),
          "AccessDenied",
          403,
        );
        const list = await stranger.send(new ListBucketsCommand({}));
        assert.deepEqual((list.Buckets ?? []).map((b) => b.Name), []);
      });
    });

    await t.step("a read-only key reads but cannot write or delete", async () => {
      const readerKey = await server.createKey("reader");
      await allow(readerKey.accessKeyId, { read: true, write: false, owner: false });
      const reader = clientFor(readerKey);
      const got = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
      assert.equal(await got.Body!.transformToString(), BODY);
      const list = await reader.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      assert.deepEqual(list.Contents!.map((o) => o.Key), [KEY]);
      const buckets = await reader.send(new ListBucketsCommand({}));
      assert.deepEqual(buckets.Buckets!.map((b) => b.Name), [BUCKET]);
      await unchanged(async () => {
        await assertS3Error(
          reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: "new", Body: "new" })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          reader.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          reader.send(new DeleteBucketCommand({ Bucket: BUCKET })),
          "AccessDenied",
          403,
        );
      });
    });

    await t.step("a write-only key writes but cannot read", async () => {
      const writerKey = await server.createKey("writer");
      await allow(writerKey.accessKeyId, { read: false, write: true, owner: false });
      const writer = clientFor(writerKey);
      await writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: "dropbox", Body: "dropped" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "dropbox" }));
      assert.equal(await got.Body!.transformToString(), "dropped");
      await unchanged(async () => {
        await assertS3Error(
          writer.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "AccessDenied",
          403,
        );
        await assertS3Error(
          writer.send(new ListObjectsV2Command({ Bucket: BUCKET })),
          "AccessDenied",
          403,
        );
      });
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "dropbox" }));
    });

    await t.step("an unknown access key is InvalidAccessKeyId", async () => {
      const unknown = clientFor({
        accessKeyId: "GK0123456789abcdef01234567",
        secretAccessKey: "x".repeat(64),
      });
      await unchanged(async () => {
        await assertS3Error(
          unknown.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "InvalidAccessKeyId",
          403,
        );
        await assertS3Error(
          unknown.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" })),
          "InvalidAccessKeyId",
          403,
        );
        const raw = await signedFetch(
          server,
          { accessKeyId: "GKunknown", secretAccessKey: "secret" },
          { method: "GET", path: objectPath(BUCKET, KEY) },
        );
        await assertErrorResponse(raw, 403, "InvalidAccessKeyId");
      });
    });

    await t.step("a wrong secret is SignatureDoesNotMatch", async () => {
      const wrong = clientFor({
        accessKeyId: owner.accessKeyId,
        secretAccessKey: "wrong" + owner.secretAccessKey,
      });
      await unchanged(async () => {
        await assertS3Error(
          wrong.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })),
          "SignatureDoesNotMatch",
          403,
        );
        await assertS3Error(
          wrong.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" })),
          "SignatureDoesNotMatch",
          403,
        );
        await assertS3Error(
          wrong.send(new ListBucketsCommand({})),
          "SignatureDoesNotMatch",
          403,
        );
      });
    });

    await t.step("a tampered request is SignatureDoesNotMatch", async () => {
      await unchanged(async () => {
        // The signature itself changed.
        const signed = await signRequest(server, owner, {
          method: "PUT",
          path: objectPath(BUCKET, KEY),
          body: "tampered",
        });
        const headers = { ...signed.headers };
        delete headers.host;
        headers.authorization = headers.authorization.replace(
          /Signature=([0-9a-f])/,
          (_, c) => `Signature=${c === "0" ? "1" : "0"}`,
        );
        await assertErrorResponse(
          await fetch(signed.url, { method: "PUT", headers, body: "tampered" }),
          403,
          "SignatureDoesNotMatch",
        );
        // A signed header changed after signing.
        const withMeta = await signRequest(server, owner, {
          method: "PUT",
          path: objectPath(BUCKET, KEY),
          body: "tampered",
          headers: { "x-amz-meta-who": "alice" },
        });
        const h2: Record<string, string> = { ...withMeta.headers, "x-amz-meta-who": "mallory" };
        delete h2.host;
        await assertErrorResponse(
          await fetch(withMeta.url, { method: "PUT", headers: h2, body: "tampered" }),
          403,
          "SignatureDoesNotMatch",
        );
        // Another object's path with this signature.
        const h3 = { ...signed.headers };
        delete h3.host;
        await assertErrorResponse(
          await fetch(`${server.endpoint}${objectPath(BUCKET, "other")}`, {
            method: "PUT",
            headers: h3,
            body: "tampered",
          }),
          403,
          "SignatureDoesNotMatch",
        );
      });
    });

    await t.step(
      "a client signing for another region is AuthorizationHeaderMalformed",
      async () => {
        const elsewhere = clientFor(owner, { region: "us-west-2" });
        await unchanged(async () => {
          await assertS3Error(
            elsewhere.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })),
            "AuthorizationHeaderMalformed",
            400,
          );
          await assertS3Error(
            elsewhere.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" })),
            "AuthorizationHeaderMalformed",
            400,
          );
          const raw = await signedFetch(server, owner, {
            method: "GET",
            path: objectPath(BUCKET, KEY),
            region: "us-west-2",
          });
          const xml = await assertErrorResponse(raw, 400, "AuthorizationHeaderMalformed");
          assert.match(xml, /<Region>test-region<\/Region>|test-region/);
        });
      },
    );

    await t.step("a clock 20 minutes off is RequestTimeTooSkewed; 10 minutes is fine", async () => {
      // A fresh client per request: the SDK corrects its clock from the first error's Date.
      for (const offsetMinutes of [-20, 20]) {
        const offset = offsetMinutes * 60_000;
        await unchanged(async () => {
          await assertS3Error(
            clientFor(owner, { systemClockOffset: offset }).send(
              new GetObjectCommand({ Bucket: BUCKET, Key: KEY }),
            ),
            "RequestTimeTooSkewed",
            403,
          );
          await assertS3Error(
            clientFor(owner, { systemClockOffset: offset }).send(
              new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: "overwritten" }),
            ),
            "RequestTimeTooSkewed",
            403,
          );
          await assertS3Error(
            clientFor(owner, { systemClockOffset: offset }).send(
              new PutObjectCommand({ Bucket: BUCKET, Key: "new-object", Body: "new" }),
            ),
            "RequestTimeTooSkewed",
            403,
          );
        });
      }
      const raw = await signedFetch(server, owner, {
        method: "GET",
        path: objectPath(BUCKET, KEY),
        signingDate: new Date(Date.now() - 20 * 60_000),
      });
      await assertErrorResponse(raw, 403, "RequestTimeTooSkewed");
      const slightly = clientFor(owner, { systemClockOffset: -10 * 60_000 });
      const got = await slightly.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
      assert.equal(await got.Body!.transformToString(), BODY);
    });

    await t.step(
      "a body not matching x-amz-content-sha256 is XAmzContentSHA256Mismatch",
      async () => {
        await unchanged(async () => {
          for (const key of [KEY, "new-object"]) {
            const res = await signedFetch(server, owner, {
              method: "PUT",
              path: objectPath(BUCKET, key),
              body: "the body actually sent",
              payloadHash: sha256Hex("the body that was signed"),
            });
            await assertErrorResponse(res, 400, "XAmzContentSHA256Mismatch");
          }
          // A malformed declared hash is refused too, whatever its code.
          const res = await signedFetch(server, owner, {
            method: "PUT",
            path: objectPath(BUCKET, "new-object"),
            body: "body",
            payloadHash: "not-a-hash",
          });
          assert.equal(res.status, 400, await res.text());
        });
      },
    );

    await t.step("signed payloads and UNSIGNED-PAYLOAD are both accepted", async () => {
      const signed = await signedFetch(server, owner, {
        method: "PUT",
        path: objectPath(BUCKET, "signed-payload"),
        body: "signed body",
      });
      assert.equal(signed.status, 200, await signed.text());
      const unsigned = await signedFetch(server, owner, {
        method: "PUT",
        path: objectPath(BUCKET, "unsigned-payload"),
        body: "unsigned body",
        payloadHash: "UNSIGNED-PAYLOAD",
      });
      assert.equal(unsigned.status, 200, await unsigned.text());
      for (
        const [key, body] of [["signed-payload", "signed body"], [
          "unsigned-payload",
          "unsigned body",
        ]]
      ) {
        const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        assert.equal(await got.Body!.transformToString(), body);
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      }
    });

    await t.step("presigned GET and PUT URLs work", async () => {
      const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: KEY }), {
        expiresIn: 300,
      });
      assert.match(getUrl, /X-Amz-Signature=/);
      const got = await fetch(getUrl);
      assert.equal(got.status, 200);
      assert.equal(await got.text(), BODY);

      const putUrl = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: BUCKET, Key: "presigned-upload" }),
        { expiresIn: 300 },
      );
      const put = await fetch(putUrl, { method: "PUT", body: "uploaded with a presigned URL" });
      assert.equal(put.status, 200, await put.text());
      const back = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "presigned-upload" }));
      assert.equal(await back.Body!.transformToString(), "uploaded with a presigned URL");
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "presigned-upload" }));
    });

    await t.step(
      "a presigned URL's query headers apply: metadata, tags, a copy source",
      async () => {
        const putUrl = await getSignedUrl(
          s3,
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "with-query-headers",
            Metadata: { origin: "presigned" },
            Tagging: "kind=upload",
          }),
          { expiresIn: 300 },
        );
        // The SDK moves these headers into the query; whoever uploads sends none of them.
        assert.match(putUrl, /x-amz-meta-origin=presigned/);
        assert.match(putUrl, /x-amz-tagging=/);
        const body = new TextEncoder().encode("tagged and described");
        // A value changed in the URL no longer matches its signature.
        await assertErrorResponse(
          await fetch(putUrl.replace("origin=presigned", "origin=forged"), { method: "PUT", body }),
          403,
          "SignatureDoesNotMatch",
        );
        const put = await fetch(putUrl, { method: "PUT", body });
        assert.equal(put.status, 200, await put.text());
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: BUCKET, Key: "with-query-headers" }),
        );
        assert.deepEqual(head.Metadata, { origin: "presigned" });
        const tags = await s3.send(
          new GetObjectTaggingCommand({ Bucket: BUCKET, Key: "with-query-headers" }),
        );
        assert.deepEqual(tags.TagSet, [{ Key: "kind", Value: "upload" }]);

        const copyUrl = await getSignedUrl(
          s3,
          new CopyObjectCommand({
            Bucket: BUCKET,
            Key: "copied-by-url",
            CopySource: `${BUCKET}/with-query-headers`,
          }),
          { expiresIn: 300 },
        );
        assert.match(copyUrl, /x-amz-copy-source=/);
        const copy = await fetch(copyUrl, { method: "PUT" });
        assert.equal(copy.status, 200, await copy.text());
        const copied = await s3.send(
          new GetObjectCommand({ Bucket: BUCKET, Key: "copied-by-url" }),
        );
        assert.equal(await copied.Body!.transformToString(), "tagged and described");
        for (const key of ["with-query-headers", "copied-by-url"]) {
          await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
        }
      },
    );

    await t.step("a Signature V2 presigned URL signs the headers its query holds", async () => {
      const expires = Math.floor(Date.now() / 1000) + 300;
      const resource = `/${BUCKET}/v2-query-headers`;
      // As botocore presigns with Signature V2: headers signed, then moved into the query.
      const stringToSign = `PUT\n\ntext/plain\n${expires}\nx-amz-meta-origin:v2\n${resource}`;
      const signature = createHmac("sha1", owner.secretAccessKey).update(stringToSign).digest(
        "base64",
      );
      const query = new URLSearchParams({
        AWSAccessKeyId: owner.accessKeyId,
        Expires: String(expires),
        Signature: signature,
        "content-type": "text/plain",
        "x-amz-meta-origin": "v2",
      });
      const url = `${server.endpoint}${resource}?${query}`;
      const body = new TextEncoder().encode("signed by version 2");
      const put = await fetch(url, { method: "PUT", body });
      assert.equal(put.status, 200, await put.text());
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: "v2-query-headers" }),
      );
      assert.equal(head.ContentType, "text/plain");
      assert.deepEqual(head.Metadata, { origin: "v2" });
      await assertErrorResponse(
        await fetch(url.replace("x-amz-meta-origin=v2", "x-amz-meta-origin=v3"), {
          method: "PUT",
          body,
        }),
        403,
        "SignatureDoesNotMatch",
      );
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "v2-query-headers" }));
    });

    await t.step(
      "a Signature V2 presigned URL signs its checksum parameters, which do not apply",
      async () => {
        const expires = Math.floor(Date.now() / 1000) + 300;
        const resource = `/${BUCKET}/v2-query-checksum`;
        // As boto3 presigns `put_object` given ChecksumAlgorithm and ChecksumCRC32: both signed,
        // then moved into the query. The CRC32 is of no bytes, which S3 does not check.
        const stringToSign = `PUT\n\n\n${expires}\nx-amz-checksum-crc32:AAAAAA==\n` +
          `x-amz-sdk-checksum-algorithm:CRC32\n${resource}`;
        const signature = createHmac("sha1", owner.secretAccessKey).update(stringToSign).digest(
          "base64",
        );
        const query = new URLSearchParams({
          AWSAccessKeyId: owner.accessKeyId,
          Signature: signature,
          "x-amz-sdk-checksum-algorithm": "CRC32",
          "x-amz-checksum-crc32": "AAAAAA==",
          Expires: String(expires),
        });
        const url = `${server.endpoint}${resource}?${query}`;
        const body = new TextEncoder().encode("checksummed by version 2");
        await unchanged(async () => {
          await assertErrorResponse(
            await fetch(url.replace("crc32=AAAAAA", "crc32=AAAAAB"), { method: "PUT", body }),
            403,
            "SignatureDoesNotMatch",
          );
        });
        const put = await fetch(url, { method: "PUT", body });
        assert.equal(put.status, 200, await put.text());
        assert.equal(put.headers.get("x-amz-checksum-crc32"), null);
        const head = await s3.send(
          new HeadObjectCommand({
            Bucket: BUCKET,
            Key: "v2-query-checksum",
            ChecksumMode: "ENABLED",
          }),
        );
        assert.equal(head.ContentLength, body.length);
        assert.equal(head.ChecksumCRC32, undefined);
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "v2-query-checksum" }));
      },
    );

    await t.step("a + in the query is a space, signed as it is read", async () => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "a b/1", Body: "x" }));
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "a+b/1", Body: "x" }));
      const list = async (signedPrefix: string) => {
        const signed = await signRequest(server, owner, {
          method: "GET",
          path: objectPath(BUCKET),
          query: { "list-type": "2", prefix: signedPrefix },
        });
        // Sent as form encoding writes a space: `+`.
        const url = signed.url.replace(/prefix=[^&]*/, "prefix=a+b");
        return await fetch(url, { headers: signed.headers });
      };
      const spaced = await list("a b");
      const text = await spaced.text();
      assert.equal(spaced.status, 200, text);
      assert.match(text, /<Key>a b\/1<\/Key>/);
      assert.doesNotMatch(text, /<Key>a\+b\/1<\/Key>/);
      // Signed as a plus but sent as `+`: what would be done (a space) is not what was signed.
      await assertErrorResponse(await list("a+b"), 403, "SignatureDoesNotMatch");
      for (const key of ["a b/1", "a+b/1"]) {
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      }
    });

    await t.step("expired presigned URLs are AccessDenied", async () => {
      const signingDate = new Date(Date.now() - 10 * 60_000);
      const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: KEY }), {
        expiresIn: 60,
        signingDate,
      });
      const putUrl = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: BUCKET, Key: "expired-upload" }),
        { expiresIn: 60, signingDate },
      );
      await unchanged(async () => {
        await assertErrorResponse(await fetch(getUrl), 403, "AccessDenied");
        await assertErrorResponse(
          await fetch(putUrl, { method: "PUT", body: "too late" }),
          403,
          "AccessDenied",
        );
      });
      // The same URLs a moment after signing work: the date, not the form, was refused.
      const fresh = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: KEY }), {
        expiresIn: 60,
      });
      const ok = await fetch(fresh);
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
    });

    await t.step("tampered presigned URLs are refused with 403", async () => {
      const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: KEY }), {
        expiresIn: 300,
      });
      const putUrl = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: BUCKET, Key: "tampered-upload" }),
        { expiresIn: 300 },
      );
      const flip = (url: string) =>
        url.replace(
          /X-Amz-Signature=([0-9a-f])/,
          (_, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
        );
      await unchanged(async () => {
        await assertErrorResponse(await fetch(flip(getUrl)), 403, "SignatureDoesNotMatch");
        await assertErrorResponse(
          await fetch(flip(putUrl), { method: "PUT", body: "tampered" }),
          403,
          "SignatureDoesNotMatch",
        );
        // A longer expiry than signed.
        await assertErrorResponse(
          await fetch(getUrl.replace("X-Amz-Expires=300", "X-Amz-Expires=600")),
          403,
          "SignatureDoesNotMatch",
        );
        // Another object with this URL's signature.
        const other = putUrl.replace("/tampered-upload?", "/other-upload?");
        assert.notEqual(other, putUrl);
        await assertErrorResponse(
          await fetch(other, { method: "PUT", body: "tampered" }),
          403,
          "SignatureDoesNotMatch",
        );
      });
    });
  } finally {
    for (const c of clients) c.destroy();
    await server.close();
  }
});

Deno.test("the request log at debug names the key, the error and the right a denied request lacks", async () => {
  const server = await TestServer.start({ env: { REMISE_LOG: "warn,remise::api::s3=debug" } });
  const owner = await server.createKey("owner");
  const other = await server.createKey("other");
  const s3 = server.client(owner);
  const s3Other = server.client(other);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "logged" }));
    await assert.rejects(
      s3Other.send(new PutObjectCommand({ Bucket: "logged", Key: "k", Body: "x" })),
      { name: "AccessDenied", message: "Access Denied" },
    );
    const line = new RegExp(
      `PUT /logged/k PutObject by ${other.accessKeyId} -> 403 AccessDenied: key ` +
        `${other.accessKeyId} has not the write right on bucket logged \\(remise bucket allow\\)`,
    );
    const deadline = Date.now() + 5_000;
    while (!line.test(server.output) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(server.output, line);
    assert.match(server.output, new RegExp(`CreateBucket by ${owner.accessKeyId} -> 200 \\(`));
  } finally {
    s3.destroy();
    s3Other.destroy();
    await server.close();
  }
});

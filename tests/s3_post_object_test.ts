/**
 * PostObject: uploads through an HTML form, signed with the AWS SDK's
 * createPresignedPost (Signature V4) or by hand (V2), sent as a browser
 * sends a form (multipart/form-data); and every way a form is refused,
 * without anything stored.
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutPublicAccessBlockCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { type Credentials, deterministicBytes, TestServer } from "./harness.ts";
import { errorCodeOf, snapshotStore } from "./_s3_helpers.ts";
import { md5Hex } from "../lib/util/hash.ts";

type Fields = Record<string, string>;

/** Sends a form as a browser does; the file goes last. */
async function postForm(
  url: string,
  fields: Fields,
  file?: { bytes: Uint8Array; name: string },
): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (file) form.append("file", new Blob([file.bytes as Uint8Array<ArrayBuffer>]), file.name);
  return await fetch(url, { method: "POST", body: form, redirect: "manual" });
}

async function assertRefused(res: Response, status: number, code: string, what: string) {
  const body = await res.text();
  assert.equal(res.status, status, `${what}: ${body}`);
  assert.equal(errorCodeOf(body), code, `${what}: ${body}`);
}

async function text(s3: S3Client, bucket: string, key: string) {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { body: await got.Body!.transformToString(), contentType: got.ContentType, got };
}

Deno.test("PostObject: uploads through an HTML form", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const reader = await server.createKey("reader");
  const s3 = server.client(owner);
  const presign = (
    credentials: Credentials,
    options: Omit<Parameters<typeof createPresignedPost>[1], "Bucket"> & { Bucket?: string },
  ) => {
    const client = server.client(credentials);
    return createPresignedPost(client, { Bucket: "forms", ...options }).finally(() =>
      client.destroy()
    );
  };
  const hello = new TextEncoder().encode("hello form");
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "forms" }));

    await t.step("a form signed with createPresignedPost stores the file", async () => {
      const { url, fields } = await presign(owner, {
        Key: "uploads/${filename}",
        Conditions: [["content-length-range", 1, 1024], ["starts-with", "$Content-Type", "text/"]],
        Fields: { "Content-Type": "text/plain", success_action_status: "201" },
        Expires: 60,
      });
      assert.equal(url, `${server.endpoint}/forms`);
      const res = await postForm(url, { ...fields, "x-ignore-note": "not in the policy" }, {
        bytes: hello,
        name: "a.txt",
      });
      const body = await res.text();
      assert.equal(res.status, 201, body);
      assert.match(body, /<PostResponse[^>]*><Location>[^<]+\/forms\/uploads\/a.txt<\/Location>/);
      assert.match(body, /<Bucket>forms<\/Bucket><Key>uploads\/a.txt<\/Key>/);
      assert.equal(res.headers.get("etag"), `"${md5Hex(hello)}"`);
      const stored = await text(s3, "forms", "uploads/a.txt");
      assert.equal(stored.body, "hello form");
      assert.equal(stored.contentType, "text/plain");
    });

    await t.step("a multi-block file is streamed; 204 by default, metadata kept", async () => {
      const big = deterministicBytes(2 * 1024 * 1024 + 123, 7);
      const { url, fields } = await presign(owner, {
        Key: "big.bin",
        Fields: {
          "x-amz-meta-origin": "browser",
          "Cache-Control": "max-age=60",
          tagging:
            "<Tagging><TagSet><Tag><Key>from</Key><Value>form</Value></Tag></TagSet></Tagging>",
        },
      });
      const res = await postForm(url, fields, { bytes: big, name: "big.bin" });
      assert.equal(res.status, 204, await res.text());
      assert.equal(res.headers.get("etag"), `"${md5Hex(big)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: "big.bin" }));
      assert.equal(got.Metadata?.origin, "browser");
      assert.equal(got.CacheControl, "max-age=60");
      assert.equal(got.TagCount, 1, "the form's tagging field");
      assert.equal(got.ContentType, "binary/octet-stream");
      const bytes = await got.Body!.transformToByteArray();
      assert.equal(md5Hex(bytes), md5Hex(big));
    });

    await t.step("a checksum field is checked against the file and kept", async () => {
      const sha256 = createHash("sha256").update(hello).digest("base64");
      const { url, fields } = await presign(owner, { Key: "checked.txt" });
      // The policy needs no condition for it: a checksum only makes the upload stricter.
      const res = await postForm(url, { ...fields, "x-amz-checksum-sha256": sha256 }, {
        bytes: hello,
        name: "checked.txt",
      });
      assert.equal(res.status, 204, await res.text());
      const got = await s3.send(
        new GetObjectCommand({ Bucket: "forms", Key: "checked.txt", ChecksumMode: "ENABLED" }),
      );
      await got.Body!.transformToByteArray();
      assert.equal(got.ChecksumSHA256, sha256);
      const before = await snapshotStore(s3);
      for (const value of [createHash("sha256").update("other").digest("base64"), "sailorjerry"]) {
        await assertRefused(
          await postForm(url, { ...fields, "x-amz-checksum-sha256": value }, {
            bytes: hello,
            name: "checked.txt",
          }),
          400,
          "BadDigest",
          `checksum ${value}`,
        );
      }
      assert.deepEqual(await snapshotStore(s3), before, "nothing stored");
    });

    await t.step("SSE-C fields encrypt the file with the form's key", async () => {
      const key = "k".repeat(32);
      const sse = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": btoa(key),
        "x-amz-server-side-encryption-customer-key-MD5": createHash("md5").update(key).digest(
          "base64",
        ),
      };
      // createPresignedPost puts a condition in the policy for each of them.
      const { url, fields } = await presign(owner, { Key: "sealed.txt", Fields: sse });
      const res = await postForm(url, fields, { bytes: hello, name: "sealed.txt" });
      assert.equal(res.status, 204, await res.text());
      const refused = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: "sealed.txt" }))
        .then(() => "read without its key", (e) => e.name);
      assert.equal(refused, "InvalidRequest");
      const got = await s3.send(
        new GetObjectCommand({
          Bucket: "forms",
          Key: "sealed.txt",
          SSECustomerAlgorithm: "AES256",
          SSECustomerKey: key,
        }),
      );
      assert.equal(await got.Body!.transformToString(), new TextDecoder().decode(hello));
      // The steps after take snapshots, which read every object without a key.
      await s3.send(new DeleteObjectCommand({ Bucket: "forms", Key: "sealed.txt" }));
    });

    await t.step("an SSE-S3 field encrypts the file with a key of its own", async () => {
      const { url, fields } = await presign(owner, {
        Key: "managed.txt",
        Fields: { "x-amz-server-side-encryption": "AES256" },
      });
      const res = await postForm(url, fields, { bytes: hello, name: "managed.txt" });
      await res.body?.cancel();
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("x-amz-server-side-encryption"), "AES256");
      const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: "managed.txt" }));
      assert.equal(got.ServerSideEncryption, "AES256");
      assert.equal(await got.Body!.transformToString(), new TextDecoder().decode(hello));
      await s3.send(new DeleteObjectCommand({ Bucket: "forms", Key: "managed.txt" }));
    });

    await t.step("success_action_redirect and success_action_status 200", async () => {
      const redirect = "https://app.example/done?x=1";
      const signed = await presign(owner, {
        Key: "r.txt",
        Fields: { success_action_redirect: redirect },
      });
      const res = await postForm(signed.url, signed.fields, { bytes: hello, name: "r.txt" });
      await res.body?.cancel();
      assert.equal(res.status, 303);
      const location = new URL(res.headers.get("location")!);
      assert.equal(location.origin + location.pathname, "https://app.example/done");
      assert.equal(location.searchParams.get("x"), "1");
      assert.equal(location.searchParams.get("bucket"), "forms");
      assert.equal(location.searchParams.get("key"), "r.txt");
      assert.equal(location.searchParams.get("etag"), `"${md5Hex(hello)}"`);
      const ok = await presign(owner, { Key: "ok.txt", Fields: { success_action_status: "200" } });
      const res200 = await postForm(ok.url, ok.fields, { bytes: hello, name: "ok.txt" });
      assert.equal(res200.status, 200);
      assert.equal(await res200.text(), "");
    });

    await t.step("a form signed with Signature V2 is accepted", async () => {
      const policy = btoa(JSON.stringify({
        expiration: new Date(Date.now() + 60_000).toISOString(),
        conditions: [{ bucket: "forms" }, ["eq", "$key", "v2.txt"]],
      }));
      const fields = {
        key: "v2.txt",
        AWSAccessKeyId: owner.accessKeyId,
        policy,
        signature: createHmac("sha1", owner.secretAccessKey).update(policy).digest("base64"),
      };
      const res = await postForm(`${server.endpoint}/forms`, fields, { bytes: hello, name: "x" });
      assert.equal(res.status, 204, await res.text());
      assert.equal((await text(s3, "forms", "v2.txt")).body, "hello form");
      // Another first character (the signature itself may start with "A").
      const other = fields.signature.startsWith("A") ? "B" : "A";
      const wrong = { ...fields, signature: other + fields.signature.slice(1) };
      await assertRefused(
        await postForm(`${server.endpoint}/forms`, wrong, { bytes: hello, name: "x" }),
        403,
        "SignatureDoesNotMatch",
        "V2 wrong signature",
      );
    });

    await t.step("a public acl field is refused where public ACLs are blocked", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "blocked" }));
      await s3.send(
        new PutPublicAccessBlockCommand({
          Bucket: "blocked",
          PublicAccessBlockConfiguration: { BlockPublicAcls: true },
        }),
      );
      const form = (acl: string) =>
        presign(owner, { Bucket: "blocked", Key: "f.txt", Fields: { acl } });
      const publicForm = await form("public-read");
      await assertRefused(
        await postForm(publicForm.url, publicForm.fields, { bytes: hello, name: "f.txt" }),
        403,
        "AccessDenied",
        "acl public-read",
      );
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: "blocked" }));
      assert.equal(listed.KeyCount, 0, "nothing stored");
      const privateForm = await form("private");
      const res = await postForm(privateForm.url, privateForm.fields, {
        bytes: hello,
        name: "f.txt",
      });
      await res.body?.cancel();
      assert.equal(res.status, 204);
    });

    await t.step("refused forms store nothing", async () => {
      const before = await snapshotStore(s3);
      const base = await presign(owner, {
        Key: "refused.txt",
        Conditions: [["content-length-range", 5, 20], ["eq", "$Content-Type", "text/plain"]],
        Fields: { "Content-Type": "text/plain" },
      });
      const expired = await presign(owner, { Key: "refused.txt", Expires: -10 });
      const readerForm = await presign(reader, { Key: "refused.txt" });
      const missingBucket = await presign(owner, { Bucket: "no-such-bucket", Key: "refused.txt" });
      const unknownClass = await presign(owner, {
        Key: "refused.txt",
        Fields: { "x-amz-storage-class": "GLACIER_WEIRD" },
      });
      const unknownAcl = await presign(owner, {
        Key: "refused.txt",
        Fields: { acl: "everyone-please" },
      });
      const policyOf = (p: unknown) => Buffer.from(JSON.stringify(p)).toString("base64");
      const file = { bytes: hello, name: "f.txt" };
      const signedV2 = (policy: string): Fields => ({
        key: "refused.txt",
        AWSAccessKeyId: owner.accessKeyId,
        policy,
        signature: createHmac("sha1", owner.secretAccessKey).update(policy).digest("base64"),
      });
      const cases: [
        string,
        Fields,
        { bytes: Uint8Array; name: string } | undefined,
        number,
        string,
        string?,
      ][] = [
        [
          "tampered policy",
          {
            ...base.fields,
            Policy: policyOf({ expiration: "2099-01-01T00:00:00Z", conditions: [] }),
          },
          file,
          403,
          "SignatureDoesNotMatch",
        ],
        [
          "a field the policy does not name",
          { ...base.fields, "x-amz-meta-extra": "1" },
          file,
          403,
          "AccessDenied",
        ],
        [
          "a condition that fails",
          { ...base.fields, "Content-Type": "text/html" },
          file,
          403,
          "AccessDenied",
        ],
        ["another key", { ...base.fields, key: "elsewhere.txt" }, file, 403, "AccessDenied"],
        ["too large", base.fields, { bytes: new Uint8Array(21), name: "f" }, 400, "EntityTooLarge"],
        ["too small", base.fields, { bytes: new Uint8Array(4), name: "f" }, 400, "EntityTooSmall"],
        ["expired", expired.fields, file, 403, "AccessDenied"],
        ["an unknown storage class", unknownClass.fields, file, 400, "InvalidStorageClass"],
        ["an unknown canned ACL", unknownAcl.fields, file, 400, "InvalidArgument"],
        ["no file", base.fields, undefined, 400, "InvalidArgument"],
        [
          "no key",
          Object.fromEntries(Object.entries(base.fields).filter(([k]) => k !== "key")),
          file,
          400,
          "InvalidArgument",
        ],
        ["no policy (anonymous)", { key: "refused.txt" }, file, 403, "AccessDenied"],
        [
          "unknown access key",
          {
            ...base.fields,
            "X-Amz-Credential": base.fields["X-Amz-Credential"].replace(
              /^[^/]+/,
              "GKunknown0000000000000000",
            ),
          },
          file,
          403,
          "InvalidAccessKeyId",
        ],
        [
          "wrong region",
          {
            ...base.fields,
            "X-Amz-Credential": base.fields["X-Amz-Credential"].replace(
              /\/[^/]+\/s3\//,
              "/eu-west-9/s3/",
            ),
          },
          file,
          400,
          "InvalidArgument",
        ],
        [
          "another signing algorithm",
          { ...base.fields, "X-Amz-Algorithm": "AWS4-HMAC-SHA512" },
          file,
          400,
          "InvalidArgument",
        ],
        ["policy that is not JSON", signedV2("bm90IGpzb24="), file, 400, "InvalidPolicyDocument"],
        [
          "a metadata value that is no header value",
          {
            ...signedV2(policyOf({
              expiration: "2099-01-01T00:00:00Z",
              conditions: [{ key: "refused.txt" }, ["starts-with", "$x-amz-meta-note", ""]],
            })),
            "x-amz-meta-note": "smile 😀",
          },
          file,
          400,
          "InvalidArgument",
        ],
        [
          "policy without expiration",
          signedV2(policyOf({ conditions: [] })),
          file,
          400,
          "InvalidPolicyDocument",
        ],
        [
          "an expiration that is not ISO 8601 in UTC",
          signedV2(policyOf({ expiration: "2099-01-01 00:00:00", conditions: [] })),
          file,
          400,
          "InvalidPolicyDocument",
        ],
        ["a key without the write right", readerForm.fields, file, 403, "AccessDenied"],
        ["unknown bucket", missingBucket.fields, file, 404, "NoSuchBucket", missingBucket.url],
      ];
      // The AccessDenied answers, told apart by their message.
      const messages: Record<string, RegExp> = {
        "a field the policy does not name": /Extra input fields: x-amz-meta-extra/,
        "a condition that fails": /Policy Condition failed: .*Content-Type.*text\/plain/,
        "another key": /Policy Condition failed: .*key.*refused.txt/,
        "expired": /Policy expired/,
        "no policy (anonymous)": /Anonymous uploads are not allowed/,
        "a key without the write right": /^<\?xml[^]*<Message>Access Denied<\/Message>/,
      };
      for (const [what, fields, body, status, code, url] of cases) {
        const res = await postForm(url ?? base.url, fields, body);
        const text = await res.clone().text();
        await assertRefused(res, status, code, what);
        if (messages[what]) assert.match(text, messages[what], what);
      }
      // A body cut short: the file never ends.
      const boundary = "cutshort";
      const head = Object.entries(base.fields).map(([k, v]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`
      ).join("");
      const cut = await fetch(base.url, {
        method: "POST",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body:
          `${head}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nhello hel`,
      });
      await assertRefused(cut, 400, "MalformedPOSTRequest", "cut body");
      const garbage = await fetch(base.url, {
        method: "POST",
        headers: { "content-type": "multipart/form-data; boundary=zzz" },
        body: "not a form at all",
      });
      await assertRefused(garbage, 400, "MalformedPOSTRequest", "not a form");
      // A client that goes away before its Content-Length is sent: IncompleteBody, not a 500.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.apiPort });
      const partial = `${head}--${boundary}\r\nContent-Disposition: form-data; name="file"`;
      await conn.write(new TextEncoder().encode(
        `POST /forms HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
          `Content-Length: ${partial.length + 100}\r\n\r\n${partial}`,
      ));
      await conn.closeWrite();
      const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
      assert.match(answer, /^HTTP\/1\.1 400 /, answer);
      assert.equal(errorCodeOf(answer), "IncompleteBody", answer);
      assert.deepEqual(await snapshotStore(s3), before);
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});

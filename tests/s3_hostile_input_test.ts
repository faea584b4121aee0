/**
 * Input no client sends by mistake, but an attacker or a fuzzer does: XML
 * that says one key and means another, names and markers longer than the
 * metadata store takes, header values that cannot be sent back. Each gets a
 * precise 4xx, and what is stored stays as it was.
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  getBytes,
  keysOf,
  md5Base64,
  objectPath,
  rawExchange,
  signedFetch,
  signedRawHead,
} from "./_s3_helpers.ts";
import type { Credentials } from "./harness.ts";

const BUCKET = "hostile";

async function withStore(
  fn: (server: TestServer, owner: Credentials, s3: S3Client) => Promise<void>,
): Promise<void> {
  const server = await TestServer.start();
  try {
    const owner = await server.createKey("owner");
    const s3 = server.client(owner);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await fn(server, owner, s3);
  } finally {
    await server.close();
  }
}

Deno.test("DeleteObjects: XML that names another key than it spells is MalformedXML", async () => {
  await withStore(async (server, owner, s3) => {
    const keys = ["ab", "a\u0001b", "victim", "r.txt", "a\u00a0b"];
    for (const key of keys) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
    }
    const bodies = [
      // XML cannot hold U+0001, even as a reference: a parser that drops it would delete "ab".
      "<Delete><Object><Key>a&#x1;b</Key></Object></Delete>",
      "<Delete><Object><Key>victim&#0;</Key></Object></Delete>",
      // HTML's entities are not XML's.
      "<Delete><Object><Key>a&nbsp;b</Key></Object></Delete>",
      // An entity of a document type declaration would stand for another key.
      `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY k "r.txt">]><Delete><Object><Key>&k;</Key></Object></Delete>`,
      // A raw control character.
      "<Delete><Object><Key>a\u0001b</Key></Object></Delete>",
    ];
    const deleteObjects = (body: string) =>
      signedFetch(server, owner, {
        method: "POST",
        path: objectPath(BUCKET),
        query: { delete: "" },
        headers: { "content-md5": md5Base64(body) },
        body,
      });
    for (const body of bodies) {
      await assertErrorResponse(await deleteObjects(body), 400, "MalformedXML");
    }
    assert.deepEqual((await keysOf(s3, BUCKET)).sort(), [...keys].sort(), "nothing was deleted");
    // The references XML allows still name their keys.
    const carriageReturn = "line\rbreak";
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: carriageReturn, Body: "x" }));
    const res = await deleteObjects(
      "<Delete><Object><Key>line&#13;break</Key></Object>" +
        "<Object><Key>a&#xA0;b</Key></Object></Delete>",
    );
    assert.equal(res.status, 200, await res.clone().text());
    await res.body?.cancel();
    assert.deepEqual(
      (await keysOf(s3, BUCKET)).sort(),
      ["ab", "a\u0001b", "victim", "r.txt"].sort(),
    );
  });
});

Deno.test("names, keys, markers and upload ids longer than any stored are 4xx, not 5xx", async () => {
  await withStore(async (server, owner, s3) => {
    for (const key of ["k1", "k2", "l"]) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
    }
    const long = (c: string) => c.repeat(2100);
    const cases: [string, Parameters<typeof signedFetch>[2], number, string][] = [
      [
        "GET of an object in a long bucket",
        {
          method: "GET",
          path: objectPath(long("b"), "k"),
        },
        404,
        "NoSuchBucket",
      ],
      [
        "CreateBucket of a long name",
        { method: "PUT", path: objectPath(long("b")) },
        400,
        "InvalidBucketName",
      ],
      [
        "CopyObject from a long key",
        {
          method: "PUT",
          path: objectPath(BUCKET, "copy"),
          headers: { "x-amz-copy-source": `/${BUCKET}/${long("k")}` },
        },
        404,
        "NoSuchKey",
      ],
      [
        "ListParts of a long upload id",
        {
          method: "GET",
          path: objectPath(BUCKET, "k1"),
          query: { uploadId: long("u") },
        },
        404,
        "NoSuchUpload",
      ],
      [
        "AbortMultipartUpload of a long upload id",
        {
          method: "DELETE",
          path: objectPath(BUCKET, "k1"),
          query: { uploadId: long("u") },
        },
        404,
        "NoSuchUpload",
      ],
    ];
    for (const [what, request, status, code] of cases) {
      await assertErrorResponse(await signedFetch(server, owner, request), status, code).catch(
        (e) => {
          throw new Error(`${what}: ${e.message}`);
        },
      );
    }
    // Listings: a prefix longer than a key matches none; a longer marker
    // lists the keys after it, as a short one does.
    const list = (input: { Prefix?: string; StartAfter?: string }) =>
      s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ...input }))
        .then((r) => (r.Contents ?? []).map((o) => o.Key));
    assert.deepEqual(await list({ Prefix: long("k") }), []);
    assert.deepEqual(await list({ StartAfter: long("k") }), ["l"]);
    assert.deepEqual(await list({ StartAfter: "k" + long("1") }), ["k2", "l"]);
    for (
      const query of [
        { "key-marker": long("k"), uploads: "" },
        { "key-marker": long("k"), versions: "" },
      ] as Record<string, string>[]
    ) {
      const res = await signedFetch(server, owner, {
        method: "GET",
        path: objectPath(BUCKET),
        query,
      });
      assert.equal(res.status, 200, `${Object.keys(query)}: ${await res.clone().text()}`);
      await res.body?.cancel();
    }
    assert.deepEqual(await getBytes(s3, BUCKET, "k1"), new TextEncoder().encode("k1"));
  });
});

Deno.test("GetObject: response-* values a header cannot hold, partNumber malformed or with Range, and ranges past the end", async () => {
  await withStore(async (server, owner, s3) => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "r.txt", Body: "0123456789" }));
    const get = (query: Record<string, string>, headers: Record<string, string> = {}) =>
      signedFetch(server, owner, {
        method: "GET",
        path: objectPath(BUCKET, "r.txt"),
        query,
        headers,
      });
    for (
      const [param, value] of [
        ["response-content-disposition", 'attachment; filename="\u65e5\u672c.txt"'],
        ["response-content-type", "text/plain\r\nx-injected: yes"],
        ["response-cache-control", "no-cache\u0000"],
      ]
    ) {
      await assertErrorResponse(await get({ [param]: value }), 400, "InvalidArgument");
    }
    // Latin-1 is what a header holds, and is sent back as it was asked.
    const latin1 = await get({
      "response-content-disposition": 'attachment; filename="caf\u00e9"',
    });
    assert.equal(latin1.status, 200);
    assert.equal(latin1.headers.get("content-disposition"), 'attachment; filename="caf\u00e9"');
    await latin1.body?.cancel();

    await assertErrorResponse(
      await get({ partNumber: "1" }, { range: "bytes=0-1" }),
      400,
      "InvalidRequest",
    );
    // A part is a range, even the one part of a plain object.
    const part = await get({ partNumber: "1" });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 0-9/10");
    assert.equal(await part.text(), "0123456789");
    // A part number is digits only, as UploadPart takes it: "1e0" is not 1.
    for (const value of ["1e0", " 1", "1.0", "0x1", "0", "10001"]) {
      await assertErrorResponse(await get({ partNumber: value }), 400, "InvalidArgument");
    }

    const past = await get({}, { range: "bytes=100-" });
    assert.equal(past.headers.get("content-range"), "bytes */10");
    await assertErrorResponse(past, 416, "InvalidRange");
  });
});

Deno.test("PutObject: two checksum headers are InvalidRequest, a value that is no digest BadDigest", async () => {
  await withStore(async (server, owner, s3) => {
    const put = (headers: Record<string, string>) =>
      signedFetch(server, owner, {
        method: "PUT",
        path: objectPath(BUCKET, "c"),
        headers,
        body: "data",
      });
    const two = await assertErrorResponse(
      await put({ "x-amz-checksum-crc32": "rtDQMw==", "x-amz-checksum-crc32c": "rtDQMw==" }),
      400,
      "InvalidRequest",
    );
    assert.match(two, /Multiple checksum Types are not allowed/);
    for (const value of ["zz", "AAAA"]) {
      await assertErrorResponse(await put({ "x-amz-checksum-sha256": value }), 400, "BadDigest");
    }
    assert.deepEqual(await keysOf(s3, BUCKET), []);
  });
});

Deno.test("a part without an uploadId is InvalidArgument, and stores nothing", async () => {
  await withStore(async (server, owner, s3) => {
    const put = await signedFetch(server, owner, {
      method: "PUT",
      path: objectPath(BUCKET, "part-alone"),
      query: { partNumber: "1" },
      body: "a part's bytes",
    });
    await assertErrorResponse(put, 400, "InvalidArgument");
    // The same with a sub-resource beside it (found by a fuzzer as a 500).
    const withAcl = await signedFetch(server, owner, {
      method: "PUT",
      path: objectPath(BUCKET, "part-alone"),
      query: { partNumber: "1", acl: "" },
    });
    await assertErrorResponse(withAcl, 400, "InvalidArgument");
    assert.ok(!(await keysOf(s3, BUCKET)).includes("part-alone"), "no object was stored");
  });
});

Deno.test("an upload of unknown length (no Content-Length, not chunked) is MissingContentLength, and stores nothing", async () => {
  await withStore(async (server, owner, s3) => {
    const upload = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "parts" }),
    );
    const targets: [string, Record<string, string>][] = [
      [objectPath(BUCKET, "no-length"), {}],
      [objectPath(BUCKET, "parts"), { partNumber: "1", uploadId: upload.UploadId! }],
    ];
    for (const [path, query] of targets) {
      // HTTP/1.1 takes such a request's body to be empty; S3 refuses it rather than store nothing.
      const head = await signedRawHead(server, owner, "PUT", path, {}, query);
      const reply = await rawExchange(server.apiPort, head, undefined);
      assert.equal(reply.status, 411, `${path}: ${reply.text}`);
      assert.match(reply.text, /<Code>MissingContentLength<\/Code>/);
    }
    assert.ok(!(await keysOf(s3, BUCKET)).includes("no-length"), "no object was stored");
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: "parts", UploadId: upload.UploadId }),
    );
    assert.deepEqual(parts.Parts ?? [], []);
  });
});

Deno.test("a sub-resource its method does not serve is MethodNotAllowed, never the plain delete or write", async () => {
  await withStore(async (server, owner, s3) => {
    await s3.send(new CreateBucketCommand({ Bucket: "empty-one" }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "kept", Body: "original" }));
    const refused: [string, string, Record<string, string>, string?][] = [
      ["DELETE", objectPath("empty-one"), { versioning: "" }],
      ["DELETE", objectPath("empty-one"), { location: "" }],
      ["PUT", objectPath("empty-one"), { uploads: "" }],
      ["GET", objectPath("empty-one"), { delete: "" }],
      ["DELETE", objectPath(BUCKET, "kept"), { "legal-hold": "" }],
      ["DELETE", objectPath(BUCKET, "kept"), { uploads: "" }],
      ["DELETE", objectPath(BUCKET, "kept"), { retention: "" }],
      ["DELETE", objectPath(BUCKET, "kept"), { attributes: "" }],
      ["GET", objectPath(BUCKET, "kept"), { versioning: "" }],
      ["PUT", objectPath(BUCKET, "kept"), { uploads: "" }, "replaced"],
      [
        "PUT",
        objectPath(BUCKET, "kept"),
        { versioning: "" },
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
      ],
    ];
    for (const [method, path, query, body] of refused) {
      const res = await signedFetch(server, owner, { method, path, query, body });
      await assertErrorResponse(res, 405, "MethodNotAllowed").catch((e) => {
        throw new Error(`${method} ${path}?${Object.keys(query)}: ${e.message}`);
      });
    }
    const buckets = await signedFetch(server, owner, { method: "GET", path: "/" });
    assert.match(await buckets.text(), /<Name>empty-one<\/Name>/, "the bucket is still there");
    assert.equal(new TextDecoder().decode(await getBytes(s3, BUCKET, "kept")), "original");
  });
});

Deno.test("a chunked upload refused by its precondition leaves no spooled body behind", async () => {
  await withStore(async (server, owner, s3) => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "taken", Body: "first" }));
    const data = new Uint8Array(200_000).fill(7);
    const encoder = new TextEncoder();
    const chunked = new Uint8Array([
      ...encoder.encode(`${data.length.toString(16)}\r\n`),
      ...data,
      ...encoder.encode("\r\n0\r\n\r\n"),
    ]);
    const refusals: [string, Record<string, string>, number, string][] = [
      ["taken", { "if-none-match": "*" }, 412, "PreconditionFailed"],
      ["taken", { "if-match": '"0123456789abcdef0123456789abcdef"' }, 412, "PreconditionFailed"],
      ["absent", { "if-match": '"0123456789abcdef0123456789abcdef"' }, 404, "NoSuchKey"],
    ];
    for (const [key, condition, status, code] of refusals) {
      const head = await signedRawHead(server, owner, "PUT", objectPath(BUCKET, key), {
        "transfer-encoding": "chunked",
        ...condition,
      });
      const reply = await rawExchange(server.apiPort, head, chunked);
      assert.equal(reply.status, status, `${key} ${JSON.stringify(condition)}: ${reply.text}`);
      assert.match(reply.text, new RegExp(`<Code>${code}</Code>`));
    }
    assert.equal(
      await getBytes(s3, BUCKET, "taken").then((b) => new TextDecoder().decode(b)),
      "first",
    );
    // The bodies were spooled to the data disk before the conditions were read: none is left.
    const left = [];
    for await (const entry of Deno.readDir(`${server.dir}/data/tmp`)) left.push(entry.name);
    assert.deepEqual(left, []);
  });
});

Deno.test("a client that stops sending its body gets RequestTimeout; nothing is stored or left behind", async () => {
  const server = await TestServer.start({ env: { REMISE_TEST_BODY_IDLE_MS: "1000" } });
  try {
    const owner = await server.createKey("owner");
    const s3 = server.client(owner);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "kept", Body: "before" }));
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "parts" }),
    );
    const announced = 3 * 1024 * 1024;
    const sent = new Uint8Array(1_500_000).fill(3);
    const chunkedHead = `${announced.toString(16)}\r\n`;
    const stalls: [string, string, Record<string, string>, Record<string, string>?][] = [
      ["PutObject", "kept", { "content-length": String(announced) }],
      ["UploadPart", "parts", { "content-length": String(announced) }, {
        partNumber: "1",
        uploadId: UploadId!,
      }],
      // A chunked body is spooled to the data disk before it is stored.
      ["chunked PutObject", "spooled", { "transfer-encoding": "chunked" }],
    ];
    for (const [what, key, headers, query] of stalls) {
      const head = await signedRawHead(
        server,
        owner,
        "PUT",
        objectPath(BUCKET, key),
        headers,
        query,
      );
      const body = headers["transfer-encoding"]
        ? new Uint8Array([...new TextEncoder().encode(chunkedHead), ...sent])
        : sent;
      const reply = await rawExchange(server.apiPort, head, body, { timeoutMs: 15_000 });
      assert.equal(reply.status, 400, `${what}: ${reply.text}`);
      assert.match(reply.text, /<Code>RequestTimeout<\/Code>/, what);
      assert.match(reply.text, /\r\nconnection: close\r\n/i, `${what}: the connection is closed`);
    }
    assert.equal(
      new TextDecoder().decode(await getBytes(s3, BUCKET, "kept")),
      "before",
      "the stalled PutObject replaced nothing",
    );
    assert.deepEqual((await keysOf(s3, BUCKET)).sort(), ["kept"]);
    const parts = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "parts", UploadId }));
    assert.equal(parts.Parts?.length ?? 0, 0, "the stalled part was not stored");
    const left = [];
    for await (const entry of Deno.readDir(`${server.dir}/data/tmp`)) left.push(entry.name);
    assert.deepEqual(left, [], "no spooled body is left");
  } finally {
    await server.close();
  }
});

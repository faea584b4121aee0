/**
 * Object operations through the AWS SDK against a real `remise server`:
 * PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2, metadata and
 * standard headers, odd keys, digests and checksums, raw-socket uploads that
 * are too large or cut short, and a restart between write and read.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { TestServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  blockFiles,
  checksumOf,
  compareUtf8,
  getBytes,
  md5Base64,
  md5Hex,
  objectPath,
  rawExchange,
  sha256Hex,
  signedFetch,
  signedRawHead,
  snapshotStore,
  xxhashOf,
} from "./_s3_helpers.ts";
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from "../lib/util/hash.ts";

const BUCKET = "objects";
const LISTING = "listing";
const enc = new TextEncoder();

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Lists a whole bucket page by page; returns keys, common prefixes and the pages. */
async function listAll(
  s3: S3Client,
  input: {
    Bucket: string;
    Prefix?: string;
    Delimiter?: string;
    MaxKeys?: number;
    StartAfter?: string;
  },
): Promise<{ keys: string[]; prefixes: string[]; pages: ListObjectsV2CommandOutput[] }> {
  const keys: string[] = [];
  const prefixes: string[] = [];
  const pages: ListObjectsV2CommandOutput[] = [];
  let token: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await s3.send(new ListObjectsV2Command({ ...input, ContinuationToken: token }));
    pages.push(page);
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
    if (!page.IsTruncated) return { keys, prefixes, pages };
    assert.ok(page.NextContinuationToken, "a truncated page carries NextContinuationToken");
    token = page.NextContinuationToken;
  }
  throw new Error("listing does not end");
}

/** What S3 lists for `keys` with this prefix, delimiter and start-after. */
function expectedListing(
  keys: string[],
  prefix = "",
  delimiter?: string,
  startAfter?: string,
): { keys: string[]; prefixes: string[]; entries: string[] } {
  const out = { keys: [] as string[], prefixes: [] as string[], entries: [] as string[] };
  for (const k of [...keys].sort(compareUtf8)) {
    if (!k.startsWith(prefix)) continue;
    if (startAfter !== undefined && compareUtf8(k, startAfter) <= 0) continue;
    const rest = k.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    if (cut >= 0) {
      const p = prefix + rest.slice(0, cut + delimiter!.length);
      if (!out.prefixes.includes(p)) {
        out.prefixes.push(p);
        out.entries.push(p);
      }
    } else {
      out.keys.push(k);
      out.entries.push(k);
    }
  }
  return out;
}

// Keys sharing prefixes, for listing; some sort differently by UTF-16 and by UTF-8.
const LISTING_KEYS = [
  "a",
  "a/1",
  "a/2",
  "a/b/1",
  "a/b/2",
  "a/b/c/1",
  "a-",
  "a-b",
  "a0",
  "ab",
  "b/",
  "b/x",
  "b/y/z",
  "b//double",
  "c",
  "c/1",
  "c/2/3",
  "d e/f",
  "photos/2024/jan.jpg",
  "photos/2024/feb.jpg",
  "photos/2025/mar.jpg",
  "photos/readme",
  "z\u00e9/1",
  "z\uffff",
  "z\u{1f600}/x",
  "zz",
];

Deno.test("S3 object operations", async (t) => {
  const server = await TestServer.start();
  const credentials = await server.createKey("objects");
  const s3 = server.client(credentials);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new CreateBucketCommand({ Bucket: LISTING }));

    await t.step("PutObject, GetObject, HeadObject: body, ETag, Last-Modified", async () => {
      const body = "hello, remise\n";
      const before = Math.floor(Date.now() / 1000) * 1000;
      const put = await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: "hello.txt", Body: body }),
      );
      const after = Date.now();
      assert.equal(put.ETag, `"${md5Hex(body)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "hello.txt" }));
      assert.equal(await got.Body!.transformToString(), body);
      assert.equal(got.ETag, `"${md5Hex(body)}"`);
      assert.equal(got.ContentLength, enc.encode(body).byteLength);
      const lm = got.LastModified!.getTime();
      assert.ok(lm >= before - 1000 && lm <= after + 1000, `Last-Modified ${got.LastModified}`);
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "hello.txt" }));
      assert.equal(head.ETag, got.ETag);
      assert.equal(head.ContentLength, got.ContentLength);
      assert.equal(head.LastModified!.getTime(), lm);
      // The raw answer: headers as sent on the wire.
      const raw = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath(BUCKET, "hello.txt"),
      });
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get("etag"), `"${md5Hex(body)}"`);
      assert.equal(raw.headers.get("content-length"), String(enc.encode(body).byteLength));
      assert.equal(new Date(raw.headers.get("last-modified")!).getTime(), lm);
      assert.equal(await raw.text(), body);
      // Listed with the same ETag, size and date.
      const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      const entry = list.Contents!.find((o) => o.Key === "hello.txt")!;
      assert.equal(entry.ETag, got.ETag);
      assert.equal(entry.Size, got.ContentLength);
      assert.equal(Math.floor(entry.LastModified!.getTime() / 1000) * 1000, lm);
    });

    await t.step("an empty object and a multi-block object round-trip", async () => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "empty", Body: new Uint8Array() }));
      const empty = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "empty" }));
      assert.equal(empty.ETag, '"d41d8cd98f00b204e9800998ecf8427e"');
      assert.equal((await empty.Body!.transformToByteArray()).byteLength, 0);

      // 3.5 MiB: several 1 MiB blocks plus a partial one.
      const big = pseudoRandomBytes(3.5 * 1024 * 1024, 7);
      const put = await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: "big.bin", Body: big }),
      );
      assert.equal(put.ETag, `"${md5Hex(big)}"`);
      const back = await getBytes(s3, BUCKET, "big.bin");
      assert.equal(back.byteLength, big.byteLength);
      assert.equal(sha256Hex(back), sha256Hex(big));
    });

    await t.step("a damaged block file is never served, whole or in part", async () => {
      // 2.5 MiB: blocks of 1 MiB, 1 MiB and 0.5 MiB, named by their SHA-256.
      const MIB = 1024 * 1024;
      const data = pseudoRandomBytes(2.5 * MIB, 11);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "damaged.bin", Body: data }));
      const hashes = [0, 1, 2].map((i) => sha256Hex(data.subarray(i * MIB, (i + 1) * MIB)));
      const files = (await blockFiles(server.dir)).filter((f) =>
        hashes.some((h) => f.endsWith(`/${h}`))
      );
      assert.equal(files.length, 3, "each block of the object has its file");
      for (const file of files) {
        const damaged = await Deno.readFile(file);
        damaged[damaged.byteLength >> 1] ^= 0x01; // one bit, mid-block
        await Deno.writeFile(file, damaged);
      }
      await assertS3Error(getBytes(s3, BUCKET, "damaged.bin"), "InternalError", 500);
      const range = s3.send(
        new GetObjectCommand({
          Bucket: BUCKET,
          Key: "damaged.bin",
          Range: "bytes=2200000-2200099",
        }),
      );
      await assertS3Error(range, "InternalError", 500);
      // With no other replica to copy from, the damaged files are moved aside.
      const deadline = Date.now() + 10_000;
      while ((await blockFiles(server.dir)).some((f) => files.includes(f))) {
        assert.ok(Date.now() < deadline, "the damaged block files were not moved aside");
        await new Promise((r) => setTimeout(r, 50));
      }
      const aside = [...Deno.readDirSync(`${server.dir}/data/corrupt`)].map((e) => e.name);
      for (const h of hashes) assert.ok(aside.some((name) => name.startsWith(h)), h);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "damaged.bin" }));
    });

    await t.step("an overwrite replaces content, ETag and metadata", async () => {
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "over",
          Body: "first",
          Metadata: { v: "1" },
          ContentType: "text/x-first",
        }),
      );
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "over", Body: "second!" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "over" }));
      assert.equal(await got.Body!.transformToString(), "second!");
      assert.equal(got.ETag, `"${md5Hex("second!")}"`);
      assert.deepEqual(got.Metadata, {});
      assert.notEqual(got.ContentType, "text/x-first");
    });

    await t.step("user metadata and standard headers are stored and returned", async () => {
      const body = gzipSync(enc.encode("compressed content"));
      const expires = new Date("2030-01-02T03:04:05Z");
      const input = {
        Bucket: BUCKET,
        Key: "with-headers",
        Body: body,
        ContentType: "text/plain; charset=utf-8",
        CacheControl: "max-age=3600, must-revalidate",
        ContentDisposition: 'attachment; filename="report.txt"',
        ContentEncoding: "gzip",
        ContentLanguage: "fr-CH",
        Expires: expires,
        Metadata: { color: "blue", "multi-word": "Hello World", empty: "" },
      };
      await s3.send(new PutObjectCommand(input));
      for (
        const res of [
          await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "with-headers" })),
          await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "with-headers" })),
        ]
      ) {
        assert.equal(res.ContentType, input.ContentType);
        assert.equal(res.CacheControl, input.CacheControl);
        assert.equal(res.ContentDisposition, input.ContentDisposition);
        assert.equal(res.ContentEncoding, input.ContentEncoding);
        assert.equal(res.ContentLanguage, input.ContentLanguage);
        assert.equal(new Date(res.ExpiresString ?? res.Expires!).getTime(), expires.getTime());
        assert.deepEqual(res.Metadata, input.Metadata);
        assert.equal(res.ContentLength, body.byteLength);
        if ("Body" in res && res.Body) {
          assert.deepEqual(await res.Body.transformToByteArray(), new Uint8Array(body));
        }
      }
      // Raw headers as sent (fetch would decompress gzip, so look at HEAD).
      const raw = await signedFetch(server, credentials, {
        method: "HEAD",
        path: objectPath(BUCKET, "with-headers"),
      });
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get("x-amz-meta-color"), "blue");
      assert.equal(raw.headers.get("x-amz-meta-multi-word"), "Hello World");
      assert.equal(raw.headers.get("content-encoding"), "gzip");
      assert.equal(raw.headers.get("cache-control"), input.CacheControl);
    });

    await t.step(
      "an unknown storage class or canned ACL, or a bad website redirect, is refused on every write",
      async () => {
        const before = await snapshotStore(s3);
        const cases: [Record<string, string>, number, string][] = [
          [{ "x-amz-storage-class": "GLACIER_WEIRD" }, 400, "InvalidStorageClass"],
          [{ "x-amz-acl": "everyone-please" }, 400, "InvalidArgument"],
          [
            { "x-amz-website-redirect-location": "javascript:alert(1)" },
            400,
            "InvalidRedirectLocation",
          ],
        ];
        for (const [headers, status, code] of cases) {
          const writes: [string, string, Record<string, string>][] = [
            ["PUT", "/refused", {}],
            ["PUT", "/refused-copy", { "x-amz-copy-source": `${BUCKET}/with-headers` }],
            ["POST", "/refused-upload", {}],
          ];
          for (const [method, key, extra] of writes) {
            const res = await signedFetch(server, credentials, {
              method,
              path: objectPath(BUCKET) + key,
              query: method === "POST" ? { uploads: "" } : undefined,
              headers: { ...headers, ...extra },
              body: method === "PUT" && !extra["x-amz-copy-source"] ? "data" : undefined,
            });
            await assertErrorResponse(res, status, code).catch((e) => {
              throw new Error(`${method} ${key} ${JSON.stringify(headers)}: ${e.message}`);
            });
          }
        }
        assert.deepEqual(await snapshotStore(s3), before);
        // What clients send is accepted, and objects stay STANDARD.
        await s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "archived",
            Body: "x",
            StorageClass: "GLACIER_IR",
            ACL: "bucket-owner-full-control",
            WebsiteRedirectLocation: "https://example.org/",
          }),
        );
        const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "archived" }));
        assert.equal(head.WebsiteRedirectLocation, "https://example.org/");
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "archived" }));
      },
    );

    await t.step(
      "keys with spaces, ../, unicode and newlines are stored and listed exactly",
      async () => {
        const keys = [
          "with space",
          "  leading and trailing  ",
          "../escape",
          "a/../b",
          "./dot",
          "dir/./x",
          "unicodé/日本語/😀",
          "line1\nline2",
          "tab\tkey",
          "percent%20encoded",
          "plus+sign",
          "question?mark#hash",
          "amp&lt;xml>'\"",
          "trailing/",
          "//double//slash",
          "~tilde=equals;semi:colon,comma@at$dollar",
        ];
        const before = await snapshotStore(s3);
        for (const [i, key] of keys.entries()) {
          await s3.send(
            new PutObjectCommand({ Bucket: LISTING, Key: `odd/${key}`, Body: `body ${i}` }),
          );
        }
        for (const [i, key] of keys.entries()) {
          assert.equal(
            new TextDecoder().decode(await getBytes(s3, LISTING, `odd/${key}`)),
            `body ${i}`,
            `GET ${JSON.stringify(key)}`,
          );
          const head = await s3.send(new HeadObjectCommand({ Bucket: LISTING, Key: `odd/${key}` }));
          assert.equal(head.ContentLength, `body ${i}`.length);
        }
        const listed = await listAll(s3, { Bucket: LISTING, Prefix: "odd/" });
        assert.deepEqual(listed.keys, keys.map((k) => `odd/${k}`).sort(compareUtf8));
        // With EncodingType=url (what the AWS CLI asks for), keys come back percent-encoded.
        const encoded = await s3.send(
          new ListObjectsV2Command({ Bucket: LISTING, Prefix: "odd/", EncodingType: "url" }),
        );
        assert.deepEqual(
          encoded.Contents!.map((o) => decodeURIComponent(o.Key!.replace(/\+/g, " "))),
          keys.map((k) => `odd/${k}`).sort(compareUtf8),
        );
        for (const key of keys) {
          await s3.send(new DeleteObjectCommand({ Bucket: LISTING, Key: `odd/${key}` }));
        }
        assert.deepEqual(await snapshotStore(s3), before);
      },
    );

    await t.step("keys of 1024 bytes work; 1025 bytes is KeyTooLongError", async () => {
      const ascii = "k/" + "x".repeat(1022);
      const unicode = "\u00e9".repeat(512); // 2 bytes each
      assert.equal(enc.encode(ascii).byteLength, 1024);
      assert.equal(enc.encode(unicode).byteLength, 1024);
      for (const key of [ascii, unicode]) {
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "long" }));
        assert.equal(new TextDecoder().decode(await getBytes(s3, BUCKET, key)), "long");
      }
      const listed = await listAll(s3, { Bucket: BUCKET });
      assert.ok(listed.keys.includes(ascii) && listed.keys.includes(unicode));

      const before = await snapshotStore(s3);
      for (const key of [ascii + "y", "\u00e9".repeat(512) + "z"]) {
        assert.equal(enc.encode(key).byteLength, 1025);
        await assertS3Error(
          s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "too long" })),
          "KeyTooLongError",
          400,
        );
      }
      const raw = await signedFetch(server, credentials, {
        method: "PUT",
        path: objectPath(BUCKET, ascii + "y"),
        body: "too long",
      });
      await assertErrorResponse(raw, 400, "KeyTooLongError");
      // Reads and deletes of a key over the limit get the same answer, even one longer than the
      // metadata store's own key limit, and while other reads go on (they may share its batch).
      for (const key of [ascii + "y", "x".repeat(3000)]) {
        const others = Array.from({ length: 8 }, () => getBytes(s3, BUCKET, ascii));
        for (const method of ["GET", "HEAD", "DELETE"]) {
          const res = await signedFetch(server, credentials, {
            method,
            path: objectPath(BUCKET, key),
          });
          if (method === "HEAD") {
            assert.equal(res.status, 400);
            await res.body?.cancel();
          } else await assertErrorResponse(res, 400, "KeyTooLongError");
        }
        for (const got of await Promise.all(others)) {
          assert.equal(new TextDecoder().decode(got), "long");
        }
      }
      assert.deepEqual(await snapshotStore(s3), before);
      for (const key of [ascii, unicode]) {
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      }
    });

    await t.step("ListObjectsV2 with prefix, delimiter and CommonPrefixes", async () => {
      for (const key of LISTING_KEYS) {
        await s3.send(new PutObjectCommand({ Bucket: LISTING, Key: key, Body: key }));
      }
      const all = await s3.send(new ListObjectsV2Command({ Bucket: LISTING }));
      assert.deepEqual(all.Contents!.map((o) => o.Key), [...LISTING_KEYS].sort(compareUtf8));
      assert.equal(all.KeyCount, LISTING_KEYS.length);
      assert.equal(all.IsTruncated, false);
      for (const o of all.Contents!) {
        assert.equal(o.Size, enc.encode(o.Key!).byteLength);
        assert.equal(o.ETag, `"${md5Hex(o.Key!)}"`);
      }

      const cases: [string | undefined, string | undefined][] = [
        ["a/", undefined],
        ["a", "/"],
        ["a/", "/"],
        ["a/b/", "/"],
        [undefined, "/"],
        ["b/", "/"],
        ["photos/", "/"],
        ["photos/20", "/"],
        ["nothing", "/"],
        [undefined, "-"],
        ["a", "b"],
        ["z", "/"],
      ];
      for (const [prefix, delimiter] of cases) {
        const res = await s3.send(
          new ListObjectsV2Command({ Bucket: LISTING, Prefix: prefix, Delimiter: delimiter }),
        );
        const expected = expectedListing(LISTING_KEYS, prefix, delimiter);
        const what = `prefix ${JSON.stringify(prefix)} delimiter ${JSON.stringify(delimiter)}`;
        assert.deepEqual((res.Contents ?? []).map((o) => o.Key), expected.keys, what);
        assert.deepEqual(
          (res.CommonPrefixes ?? []).map((p) => p.Prefix),
          expected.prefixes,
          what,
        );
        assert.equal(res.KeyCount, expected.entries.length, `KeyCount, ${what}`);
        assert.equal(res.Prefix ?? "", prefix ?? "", what);
        if (delimiter) assert.equal(res.Delimiter, delimiter, what);
      }
    });

    await t.step("ListObjectsV2 max-keys and continuation tokens, page sizes 1..7", async () => {
      for (const [prefix, delimiter] of [[undefined, undefined], [undefined, "/"], ["a", "/"]]) {
        const expected = expectedListing(LISTING_KEYS, prefix, delimiter);
        for (let size = 1; size <= 7; size++) {
          const what = `page size ${size}, prefix ${prefix}, delimiter ${delimiter}`;
          const got = await listAll(s3, {
            Bucket: LISTING,
            Prefix: prefix,
            Delimiter: delimiter,
            MaxKeys: size,
          });
          assert.deepEqual(got.keys, expected.keys, what);
          assert.deepEqual(got.prefixes, expected.prefixes, what);
          assert.equal(
            got.pages.length,
            Math.max(1, Math.ceil(expected.entries.length / size)),
            what,
          );
          let seen = 0;
          for (const [i, page] of got.pages.entries()) {
            const n = (page.Contents?.length ?? 0) + (page.CommonPrefixes?.length ?? 0);
            assert.equal(page.KeyCount, n, what);
            assert.equal(page.MaxKeys, size, what);
            const last = i === got.pages.length - 1;
            assert.equal(page.IsTruncated, !last, what);
            assert.equal(n, last ? expected.entries.length - seen : size, what);
            seen += n;
          }
        }
      }
      // max-keys 0 answers an empty, untruncated-or-truncated page without entries.
      const zero = await s3.send(new ListObjectsV2Command({ Bucket: LISTING, MaxKeys: 0 }));
      assert.equal(zero.Contents?.length ?? 0, 0);
      assert.equal(zero.KeyCount, 0);
      // A bad continuation token is refused.
      await assertS3Error(
        s3.send(
          new ListObjectsV2Command({ Bucket: LISTING, ContinuationToken: "%%%not-a-token%%%" }),
        ),
        "InvalidArgument",
        400,
      );
    });

    await t.step("ListObjectsV2 start-after", async () => {
      for (
        const [startAfter, prefix, delimiter] of [
          ["a/b/1", undefined, undefined],
          ["a/", undefined, "/"],
          ["b", undefined, undefined],
          ["b/x", "b/", undefined],
          ["photos/2024/", "photos/", "/"],
          ["zz", undefined, undefined],
          ["", undefined, undefined],
        ] as [string, string | undefined, string | undefined][]
      ) {
        const expected = expectedListing(LISTING_KEYS, prefix, delimiter, startAfter);
        const what = `start-after ${
          JSON.stringify(startAfter)
        } prefix ${prefix} delimiter ${delimiter}`;
        const one = await s3.send(
          new ListObjectsV2Command({
            Bucket: LISTING,
            StartAfter: startAfter,
            Prefix: prefix,
            Delimiter: delimiter,
          }),
        );
        assert.deepEqual((one.Contents ?? []).map((o) => o.Key), expected.keys, what);
        assert.deepEqual((one.CommonPrefixes ?? []).map((p) => p.Prefix), expected.prefixes, what);
        const paged = await listAll(s3, {
          Bucket: LISTING,
          StartAfter: startAfter,
          Prefix: prefix,
          Delimiter: delimiter,
          MaxKeys: 2,
        });
        assert.deepEqual(paged.keys, expected.keys, `${what}, paged`);
        assert.deepEqual(paged.prefixes, expected.prefixes, `${what}, paged`);
      }
    });

    await t.step("NoSuchBucket and NoSuchKey", async () => {
      const before = await snapshotStore(s3);
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "missing" })),
        "NoSuchKey",
        404,
      );
      await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "missing" })), 404);
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "no-such-bucket", Key: "k" })),
        "NoSuchBucket",
        404,
      );
      await assertS3Error(
        s3.send(new PutObjectCommand({ Bucket: "no-such-bucket", Key: "k", Body: "x" })),
        "NoSuchBucket",
        404,
      );
      await assertS3Error(
        s3.send(new ListObjectsV2Command({ Bucket: "no-such-bucket" })),
        "NoSuchBucket",
        404,
      );
      await assertS3Error(
        s3.send(new DeleteObjectCommand({ Bucket: "no-such-bucket", Key: "k" })),
        "NoSuchBucket",
        404,
      );
      const raw = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath(BUCKET, "missing"),
      });
      const xml = await assertErrorResponse(raw, 404, "NoSuchKey");
      assert.match(xml, /<Key>missing<\/Key>/);
      const rawBucket = await signedFetch(server, credentials, {
        method: "GET",
        path: objectPath("no-such-bucket", "k"),
      });
      await assertErrorResponse(rawBucket, 404, "NoSuchBucket");
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("DeleteObject removes the object; deleting a missing key is 204", async () => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "to-delete", Body: "bye" }));
      const res = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "to-delete" }));
      assert.equal(res.$metadata.httpStatusCode, 204);
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "to-delete" })),
        "NoSuchKey",
        404,
      );
      const list = await listAll(s3, { Bucket: BUCKET });
      assert.ok(!list.keys.includes("to-delete"));
      const before = await snapshotStore(s3);
      const again = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "to-delete" }));
      assert.equal(again.$metadata.httpStatusCode, 204);
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step("Content-MD5: verified (BadDigest), malformed (InvalidDigest)", async () => {
      const body = "md5 checked body";
      const ok = await signedFetch(server, credentials, {
        method: "PUT",
        path: objectPath(BUCKET, "md5"),
        body,
        headers: { "content-md5": md5Base64(body) },
      });
      assert.equal(ok.status, 200, await ok.text());
      assert.equal(ok.headers.get("etag"), `"${md5Hex(body)}"`);

      const before = await snapshotStore(s3);
      for (const key of ["md5", "md5-new"]) {
        const bad = await signedFetch(server, credentials, {
          method: "PUT",
          path: objectPath(BUCKET, key),
          body: "another body",
          headers: { "content-md5": md5Base64(body) },
        });
        await assertErrorResponse(bad, 400, "BadDigest");
        for (const malformed of ["not-base64!", md5Base64(body).slice(0, 10), btoa("short")]) {
          const res = await signedFetch(server, credentials, {
            method: "PUT",
            path: objectPath(BUCKET, key),
            body: "another body",
            headers: { "content-md5": malformed },
          });
          await assertErrorResponse(res, 400, "InvalidDigest");
        }
      }
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step(
      "checksums of every S3 algorithm but CRC64NVME: verified and returned",
      async () => {
        const body = enc.encode("checksummed content \u00e9\u00e8");
        // Every algorithm remise knows; CRC64NVME has a step of its own (multipart).
        type Tested = Exclude<ChecksumAlgorithm, "CRC64NVME">;
        const algorithms = CHECKSUM_ALGORITHMS.filter((a): a is Tested => a !== "CRC64NVME");
        const valueOf = (algorithm: Tested, data: Uint8Array) => {
          switch (algorithm) {
            case "XXHASH64":
            case "XXHASH3":
            case "XXHASH128":
              return xxhashOf(algorithm, data);
            default:
              return Promise.resolve(checksumOf(algorithm, data));
          }
        };
        const reader = server.client(credentials, { responseChecksumValidation: "WHEN_REQUIRED" });
        // Reference values of the local implementation (AWS documentation examples).
        assert.equal(checksumOf("CRC32", enc.encode("123456789")), btoa("\xcb\xf4\x39\x26"));
        assert.equal(checksumOf("CRC32C", enc.encode("123456789")), btoa("\xe3\x06\x92\x83"));
        for (const algorithm of algorithms) {
          const key = `sum-${algorithm}`;
          const expected = await valueOf(algorithm, body);
          // The SDK computes the first four itself; the others it is given.
          const computedBySdk = ["CRC32", "CRC32C", "SHA1", "SHA256"].includes(algorithm);
          const put = await s3.send(
            new PutObjectCommand({
              Bucket: BUCKET,
              Key: key,
              Body: body,
              ...(computedBySdk
                ? { ChecksumAlgorithm: algorithm }
                : { [`Checksum${algorithm}`]: expected }),
            }),
          );
          assert.equal(put[`Checksum${algorithm}`], expected, `PUT answer, ${algorithm}`);
          // The SDK refuses to read a body whose checksum it cannot compute unless told not to
          // check it: the raw GET below checks those.
          const got = await (computedBySdk ? s3 : reader).send(
            new GetObjectCommand({
              Bucket: BUCKET,
              Key: key,
              ...(computedBySdk ? { ChecksumMode: "ENABLED" } : {}),
            }),
          );
          if (computedBySdk) {
            assert.equal(got[`Checksum${algorithm}`], expected, `GET, ${algorithm}`);
          }
          assert.deepEqual(await got.Body!.transformToByteArray(), body);
          const head = await s3.send(
            new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }),
          );
          assert.equal(head[`Checksum${algorithm}`], expected, `HEAD, ${algorithm}`);
          // Raw: the header itself, with a raw signed PUT giving the checksum explicitly.
          const header = `x-amz-checksum-${algorithm.toLowerCase()}`;
          const rawPut = await signedFetch(server, credentials, {
            method: "PUT",
            path: objectPath(BUCKET, `${key}-raw`),
            body,
            headers: { [header]: expected },
          });
          assert.equal(rawPut.status, 200, await rawPut.text());
          const rawGet = await signedFetch(server, credentials, {
            method: "GET",
            path: objectPath(BUCKET, `${key}-raw`),
            headers: { "x-amz-checksum-mode": "ENABLED" },
          });
          assert.equal(rawGet.headers.get(header), expected, `raw GET, ${algorithm}`);
          await rawGet.body?.cancel();
        }

        // Wrong values are BadDigest and store nothing, neither new keys nor overwrites; nor
        // does a checksum of an algorithm remise does not know, which it cannot verify.
        const before = await snapshotStore(reader);
        const unknown = await signedFetch(server, credentials, {
          method: "PUT",
          path: objectPath(BUCKET, "sum-unknown"),
          body: enc.encode("different content"),
          headers: { "x-amz-checksum-blake3": "AAAA" },
        });
        await assertErrorResponse(unknown, 400, "InvalidRequest");
        for (const algorithm of algorithms) {
          const wrong = await valueOf(algorithm, enc.encode("something else"));
          for (const key of [`sum-${algorithm}`, `sum-${algorithm}-new`]) {
            const res = await signedFetch(server, credentials, {
              method: "PUT",
              path: objectPath(BUCKET, key),
              body: enc.encode("different content"),
              headers: { [`x-amz-checksum-${algorithm.toLowerCase()}`]: wrong },
            });
            await assertErrorResponse(res, 400, "BadDigest").catch((e) => {
              throw new Error(`${algorithm} ${key}: ${e.message}`);
            });
          }
          await assertS3Error(
            s3.send(
              new PutObjectCommand({
                Bucket: BUCKET,
                Key: `sum-${algorithm}-sdk`,
                Body: "sdk body",
                [`Checksum${algorithm}`]: wrong,
              }),
            ),
            "BadDigest",
            400,
          );
        }
        assert.deepEqual(await snapshotStore(reader), before);
        // The objects the SDK cannot read with its defaults go, for the steps after.
        for (const algorithm of algorithms) {
          for (const key of [`sum-${algorithm}`, `sum-${algorithm}-raw`]) {
            await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
          }
        }
      },
    );

    await t.step("a PUT over 5 GiB is EntityTooLarge, answered from its headers", async () => {
      const before = await snapshotStore(s3);
      const path = objectPath(BUCKET, "too-large");
      const head = await signedRawHead(server, credentials, "PUT", path, {
        "content-length": "5368709121",
      });
      const reply = await rawExchange(server.apiPort, head, enc.encode("x".repeat(1024)), {
        timeoutMs: 15_000,
      });
      assert.equal(reply.status, 400, `reply: ${JSON.stringify(reply.text.slice(0, 500))}`);
      assert.match(reply.text, /<Code>EntityTooLarge<\/Code>/);
      assert.deepEqual(await snapshotStore(s3), before);
    });

    await t.step(
      "a body shorter than its Content-Length stores nothing (IncompleteBody)",
      async () => {
        const before = await snapshotStore(s3);
        const cases: [string, number, Uint8Array][] = [
          ["incomplete", 1000, enc.encode("0123456789")],
          ["hello.txt", 1000, enc.encode("0123456789")],
          // Announced to go to blocks, cut off after one and a half.
          ["incomplete-large", 3 * 1024 * 1024, pseudoRandomBytes(1.5 * 1024 * 1024, 5)],
        ];
        for (const [key, announced, sent] of cases) {
          const path = objectPath(BUCKET, key);
          const head = await signedRawHead(server, credentials, "PUT", path, {
            "content-length": String(announced),
          });
          const reply = await rawExchange(server.apiPort, head, sent, {
            closeWrite: true,
            timeoutMs: 15_000,
          });
          if (reply.status !== undefined) {
            assert.equal(reply.status, 400, `reply: ${JSON.stringify(reply.text.slice(0, 500))}`);
            assert.match(reply.text, /<Code>IncompleteBody<\/Code>/);
          } else {
            assert.ok(reply.closed, "no answer, and the connection stayed open");
          }
        }
        // Give a server that finishes the upload after answering a moment to do so.
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(await snapshotStore(s3), before);
      },
    );

    await t.step("a restart keeps objects, metadata and the access key", async () => {
      const body = pseudoRandomBytes(200_000, 42);
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "survives/restart",
          Body: body,
          ContentType: "application/x-test",
          Metadata: { kept: "yes" },
        }),
      );
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "small", Body: "inline" }));
      const before = await snapshotStore(s3);
      await server.restart();
      assert.deepEqual(await snapshotStore(s3), before);
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "survives/restart" }));
      assert.equal(got.ContentType, "application/x-test");
      assert.deepEqual(got.Metadata, { kept: "yes" });
      assert.equal(sha256Hex(await got.Body!.transformToByteArray()), sha256Hex(body));
      // The key can still write.
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "after-restart", Body: "ok" }));
      assert.equal(new TextDecoder().decode(await getBytes(s3, BUCKET, "after-restart")), "ok");
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});

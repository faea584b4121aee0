/**
 * Multipart uploads through the AWS SDK against a real `remise server` with
 * 64 KiB blocks: a 200 MiB `@aws-sdk/lib-storage` upload from a stream, the
 * hand-driven CreateMultipartUpload / UploadPart / Complete cycle and its
 * errors, AbortMultipartUpload, ListParts, ListMultipartUploads, partNumber
 * reads, UploadPartCopy and composite checksums. After every refused request
 * the store must hold exactly what it held before.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  type ChecksumType,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { checksumHasher } from "../lib/util/hash.ts";
import { deterministicBytes, deterministicStream, TestServer, withServer } from "./harness.ts";
import {
  assertErrorResponse,
  assertS3Error,
  assertS3Status,
  checksumOf,
  getBytes,
  keysOf,
  md5Hex,
  objectPath,
  referencedBlocks,
  sameBytes,
  signedFetch,
  snapshotBucket,
  snapshotStore,
} from "./_s3_helpers.ts";

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
const BIG = "big-objects";
const MP = "multipart";
const ERR = "errors";
const UPLOADS = "uploads";

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then `-N`. */
function multipartEtag(parts: Uint8Array[]): string {
  const h = createHash("md5");
  for (const p of parts) h.update(createHash("md5").update(p).digest());
  return `"${h.digest("hex")}-${parts.length}"`;
}

type Algo = "CRC32" | "CRC32C" | "SHA256" | "SHA512" | "MD5";

/** The algorithms the AWS SDK for JavaScript computes and checks itself; others it is given. */
const SDK_ALGORITHMS: readonly string[] = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"];
const sdkAlgorithm = (algorithm: string | undefined) =>
  algorithm !== undefined && SDK_ALGORITHMS.includes(algorithm)
    ? algorithm as ChecksumAlgorithm
    : undefined;

/** The composite checksum of a multipart object: checksum of the parts' raw checksums, `-N`. */
function compositeChecksum(algorithm: Algo, parts: Uint8Array[]): string {
  const raw = concatBytes(
    ...parts.map((p) => Uint8Array.from(atob(checksumOf(algorithm, p)), (c) => c.charCodeAt(0))),
  );
  return `${checksumOf(algorithm, raw)}-${parts.length}`;
}

function checksumField(algorithm: Algo): `Checksum${Algo}` {
  return `Checksum${algorithm}`;
}

/** The checksums of an upload's parts: algorithm (and type), and who computes each part's. */
interface PartChecksums {
  create: { ChecksumAlgorithm: ChecksumAlgorithm; ChecksumType?: ChecksumType };
  ofPart: (body: Uint8Array) => string;
  sent: "declared" | "computed by the SDK";
}

/**
 * Creates an upload and uploads `parts` as parts 1..N, checking each answer's
 * ETag (and checksum); returns the creation's answer, the id and completed parts.
 */
async function uploadParts(
  s3: S3Client,
  bucket: string,
  key: string,
  parts: Uint8Array[],
  checksums?: PartChecksums,
) {
  const created = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...checksums?.create }),
  );
  const uploadId = created.UploadId!;
  assert.ok(uploadId);
  const algorithm = checksums?.create.ChecksumAlgorithm;
  const field = `Checksum${algorithm}` as const;
  const completed: CompletedPart[] = [];
  for (const [i, body] of parts.entries()) {
    const declared = checksums?.sent === "declared" ? { [field]: checksums.ofPart(body) } : {};
    const res = await s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: i + 1,
        Body: body,
        ChecksumAlgorithm: sdkAlgorithm(algorithm),
        ...declared,
      }),
    );
    assert.equal(res.ETag, `"${md5Hex(body)}"`, `ETag of part ${i + 1}`);
    if (!checksums) {
      completed.push({ PartNumber: i + 1, ETag: res.ETag });
      continue;
    }
    const checksum = res[field as keyof typeof res];
    assert.equal(checksum, checksums.ofPart(body), `${algorithm} of part ${i + 1}`);
    completed.push({ PartNumber: i + 1, ETag: res.ETag, [field]: checksum });
  }
  return { created, uploadId, completed };
}

async function listPartsOf(s3: S3Client, bucket: string, key: string, uploadId: string) {
  const res = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  return (res.Parts ?? []).map((p) => ({ n: p.PartNumber, etag: p.ETag, size: p.Size }));
}

Deno.test("S3 multipart uploads", async (t) => {
  const server = await TestServer.start({ blockSize: BLOCK });
  const credentials = await server.createKey("owner");
  const s3 = server.client(credentials);
  try {
    for (const b of [BIG, MP, ERR, UPLOADS]) await s3.send(new CreateBucketCommand({ Bucket: b }));

    /** Runs `fn` (a refused request) and checks the bucket and the upload's parts did not change. */
    const unchanged = async (
      bucket: string,
      upload: { key: string; uploadId: string } | undefined,
      fn: () => Promise<unknown>,
    ) => {
      const before = await snapshotBucket(s3, bucket);
      const partsBefore = upload && (await listPartsOf(s3, bucket, upload.key, upload.uploadId));
      await fn();
      assert.deepEqual(await snapshotBucket(s3, bucket), before, "the bucket changed");
      if (upload) {
        assert.deepEqual(
          await listPartsOf(s3, bucket, upload.key, upload.uploadId),
          partsBefore,
          "the upload's parts changed",
        );
      }
    };

    await t.step("lib-storage Upload of 200 MiB from a stream, read back streaming", async () => {
      const size = 200 * MiB + 12345;
      const sent = createHash("sha256");
      let produced = 0;
      const upload = new Upload({
        client: s3,
        params: {
          Bucket: BIG,
          Key: "stream/200mib.bin",
          Body: deterministicStream(size, 42, (c) => {
            sent.update(c);
            produced += c.byteLength;
          }),
          ContentType: "application/x-test",
        },
        partSize: 8 * MiB,
        queueSize: 4,
        leavePartsOnError: false,
      });
      const out = await upload.done();
      assert.equal(produced, size);
      const expectedSha = sent.digest("hex");
      const parts = Math.ceil(size / (8 * MiB));
      assert.match(out.ETag ?? "", new RegExp(`^"[0-9a-f]{32}-${parts}"$`), `ETag ${out.ETag}`);

      const head = await s3.send(new HeadObjectCommand({ Bucket: BIG, Key: "stream/200mib.bin" }));
      assert.equal(head.ContentLength, size);
      assert.equal(head.ETag, out.ETag);
      assert.equal(head.ContentType, "application/x-test");

      const res = await s3.send(new GetObjectCommand({ Bucket: BIG, Key: "stream/200mib.bin" }));
      assert.equal(res.ContentLength, size);
      const got = createHash("sha256");
      let received = 0;
      for await (const chunk of res.Body!.transformToWebStream()) {
        got.update(chunk);
        received += chunk.byteLength;
      }
      assert.equal(received, size);
      assert.equal(
        got.digest("hex"),
        expectedSha,
        "the object read back differs from what was sent",
      );

      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BIG }));
      assert.deepEqual(uploads.Uploads ?? [], [], "a completed upload is no longer listed");
    });

    const part1 = deterministicBytes(5 * MiB + 1, 1);
    const part2 = deterministicBytes(5 * MiB + 2 * BLOCK + 7, 2);
    const part3 = deterministicBytes(1000, 3);
    const whole = concatBytes(part1, part2, part3);

    await t.step("by hand: invisible until completed, ETag of part MD5s, replaces", async () => {
      const old = new TextEncoder().encode("the previous object");
      await s3.send(new PutObjectCommand({ Bucket: MP, Key: "replace-me", Body: old }));
      for (const key of ["fresh", "replace-me"]) {
        const created = await s3.send(
          new CreateMultipartUploadCommand({
            Bucket: MP,
            Key: key,
            ContentType: "image/x-test",
            Metadata: { origin: "multipart" },
          }),
        );
        assert.equal(created.Bucket, MP);
        assert.equal(created.Key, key);
        const uploadId = created.UploadId!;
        const completed: CompletedPart[] = [];
        for (const [i, body] of [part1, part2, part3].entries()) {
          const res = await s3.send(
            new UploadPartCommand({
              Bucket: MP,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body: body,
            }),
          );
          assert.equal(res.ETag, `"${md5Hex(body)}"`);
          completed.push({ PartNumber: i + 1, ETag: res.ETag });
        }
        // Still invisible: the previous state of the key is all that shows.
        if (key === "fresh") {
          await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: MP, Key: key })), 404);
          await assertS3Error(
            s3.send(new GetObjectCommand({ Bucket: MP, Key: key })),
            "NoSuchKey",
            404,
          );
          assert.ok(!(await keysOf(s3, MP)).includes(key), "an uploading object is listed");
        } else {
          assert.deepEqual(await getBytes(s3, MP, key), old);
          const head = await s3.send(new HeadObjectCommand({ Bucket: MP, Key: key }));
          assert.equal(head.ContentLength, old.byteLength);
        }
        const complete = () =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: MP,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: completed },
            }),
          );
        const done = await complete();
        const etag = multipartEtag([part1, part2, part3]);
        assert.equal(done.ETag, etag);
        assert.equal(done.Key, key);
        assert.equal(done.Bucket, MP);
        const head = await s3.send(new HeadObjectCommand({ Bucket: MP, Key: key }));
        assert.equal(head.ETag, etag);
        assert.equal(head.ContentLength, whole.byteLength);
        assert.equal(head.ContentType, "image/x-test");
        assert.deepEqual(head.Metadata, { origin: "multipart" });
        const got = await getBytes(s3, MP, key);
        assert.equal(got.byteLength, whole.byteLength);
        assert.ok(Buffer.from(got).equals(Buffer.from(whole)), `body of ${key} differs`);
        await assertS3Error(
          s3.send(new ListPartsCommand({ Bucket: MP, Key: key, UploadId: uploadId })),
          "NoSuchUpload",
          404,
        );
        // A client whose answer was lost completes again: it gets the same answer.
        assert.equal((await complete()).ETag, etag);
        assert.equal((await s3.send(new HeadObjectCommand({ Bucket: MP, Key: key }))).ETag, etag);
      }
      const list = await s3.send(new ListObjectsV2Command({ Bucket: MP }));
      const entry = list.Contents!.find((o) => o.Key === "replace-me")!;
      assert.equal(entry.Size, whole.byteLength);
      assert.equal(entry.ETag, multipartEtag([part1, part2, part3]));
    });

    await t.step("GetObject and HeadObject with PartNumber", async () => {
      // The count of parts is told only with a part number, as S3 documents.
      assert.equal(
        (await s3.send(new HeadObjectCommand({ Bucket: MP, Key: "fresh" }))).PartsCount,
        undefined,
      );
      const sizes = [part1.byteLength, part2.byteLength, part3.byteLength];
      let start = 0;
      for (const [i, part] of [part1, part2, part3].entries()) {
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: MP, Key: "fresh", PartNumber: i + 1 }),
        );
        assert.equal(head.ContentLength, sizes[i], `HEAD part ${i + 1} length`);
        assert.equal(head.PartsCount, 3, `HEAD part ${i + 1} PartsCount`);
        assert.equal(head.ETag, multipartEtag([part1, part2, part3]));
        const res = await s3.send(
          new GetObjectCommand({ Bucket: MP, Key: "fresh", PartNumber: i + 1 }),
        );
        assert.equal(res.ContentLength, sizes[i]);
        assert.equal(res.PartsCount, 3);
        assert.equal(
          res.ContentRange,
          `bytes ${start}-${start + sizes[i] - 1}/${whole.byteLength}`,
          `Content-Range of part ${i + 1}`,
        );
        const bytes = await res.Body!.transformToByteArray();
        assert.ok(Buffer.from(bytes).equals(Buffer.from(part)), `body of part ${i + 1}`);
        start += sizes[i];
      }
      // A part the object does not have is 400 InvalidPart (as ceph's s3-tests expect of S3).
      await assertS3Status(
        s3.send(new HeadObjectCommand({ Bucket: MP, Key: "fresh", PartNumber: 4 })),
        400,
      );
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: MP, Key: "fresh", PartNumber: 4 })),
        "InvalidPart",
        400,
      );
      // A plain object has one part: part 1 is the whole object.
      const small = new TextEncoder().encode("single part object");
      await s3.send(new PutObjectCommand({ Bucket: MP, Key: "single", Body: small }));
      assert.deepEqual(await getBytes(s3, MP, "single", 1), small);
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: MP, Key: "single", PartNumber: 1 }),
      );
      assert.equal(head.ContentLength, small.byteLength);
    });

    await t.step("Complete errors: order, missing part, wrong ETag, too small", async () => {
      await s3.send(
        new PutObjectCommand({
          Bucket: ERR,
          Key: "target",
          Body: new TextEncoder().encode("keep me"),
        }),
      );
      const a = deterministicBytes(5 * MiB, 11);
      const b = deterministicBytes(5 * MiB + 3, 12);
      const c = deterministicBytes(10, 13);
      const { uploadId, completed } = await uploadParts(s3, ERR, "target", [a, b, c]);
      const upload = { key: "target", uploadId };
      const complete = (parts: CompletedPart[], size?: number) =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: ERR,
            Key: "target",
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            MpuObjectSize: size,
          }),
        );
      await unchanged(
        ERR,
        upload,
        () =>
          assertS3Error(
            complete([completed[1], completed[0], completed[2]]),
            "InvalidPartOrder",
            400,
          ),
      );
      await unchanged(
        ERR,
        upload,
        () =>
          assertS3Error(
            complete([completed[0], completed[0], completed[2]]),
            "InvalidPartOrder",
            400,
          ),
      );
      // Misordered with the small part first: the order is what is wrong.
      await unchanged(
        ERR,
        upload,
        () =>
          assertS3Error(
            complete([completed[2], completed[0], completed[1]]),
            "InvalidPartOrder",
            400,
          ),
      );
      await unchanged(ERR, upload, () =>
        assertS3Error(
          complete([completed[0], completed[1], { PartNumber: 4, ETag: `"${md5Hex("x")}"` }]),
          "InvalidPart",
          400,
        ));
      await unchanged(ERR, upload, () =>
        assertS3Error(
          complete([completed[0], { PartNumber: 2, ETag: `"${md5Hex(a)}"` }, completed[2]]),
          "InvalidPart",
          400,
        ));
      await unchanged(ERR, upload, () => assertS3Error(complete([]), "MalformedXML", 400));
      // A size announced (x-amz-mp-object-size) that is not the parts' total.
      const size = a.byteLength + b.byteLength + c.byteLength;
      await unchanged(
        ERR,
        upload,
        () => assertS3Error(complete(completed, size - 1), "InvalidRequest", 400),
      );
      await unchanged(ERR, upload, async () => {
        const partsXml = completed.map((p) =>
          `<Part><PartNumber>${p.PartNumber}</PartNumber><ETag>${p.ETag}</ETag></Part>`
        ).join("");
        const res = await signedFetch(server, credentials, {
          method: "POST",
          path: objectPath(ERR, "target"),
          query: { uploadId },
          headers: { "x-amz-mp-object-size": "ten megabytes" },
          body: `<CompleteMultipartUpload>${partsXml}</CompleteMultipartUpload>`,
        });
        await assertErrorResponse(res, 400, "InvalidArgument");
      });
      assert.deepEqual(await getBytes(s3, ERR, "target"), new TextEncoder().encode("keep me"));
      // The upload survived every refusal: completing it properly still works.
      const done = await complete(completed, size);
      assert.equal(done.ETag, multipartEtag([a, b, c]));
      const got = await getBytes(s3, ERR, "target");
      assert.ok(Buffer.from(got).equals(Buffer.from(concatBytes(a, b, c))));

      // A subset of the uploaded parts may be completed (parts 1 and 3 here).
      const sub = await uploadParts(s3, ERR, "subset", [a, b, c]);
      const subDone = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: ERR,
          Key: "subset",
          UploadId: sub.uploadId,
          MultipartUpload: { Parts: [sub.completed[0], sub.completed[2]] },
        }),
      );
      assert.equal(subDone.ETag, multipartEtag([a, c]));
      assert.ok(
        Buffer.from(await getBytes(s3, ERR, "subset")).equals(Buffer.from(concatBytes(a, c))),
      );

      // A 1 MiB part that is not the last one.
      const tiny = await uploadParts(s3, ERR, "too-small", [
        deterministicBytes(MiB, 14),
        deterministicBytes(100, 15),
      ]);
      await unchanged(ERR, { key: "too-small", uploadId: tiny.uploadId }, () =>
        assertS3Error(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: ERR,
              Key: "too-small",
              UploadId: tiny.uploadId,
              MultipartUpload: { Parts: tiny.completed },
            }),
          ),
          "EntityTooSmall",
          400,
        ));
      await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: ERR, Key: "too-small" })), 404);
      // A single small part is fine: the last part may be of any size.
      const one = await uploadParts(s3, ERR, "one-small", [deterministicBytes(100, 15)]);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: ERR,
          Key: "one-small",
          UploadId: one.uploadId,
          MultipartUpload: { Parts: one.completed },
        }),
      );
      assert.deepEqual(await getBytes(s3, ERR, "one-small"), deterministicBytes(100, 15));
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: ERR, Key: "too-small", UploadId: tiny.uploadId }),
      );
    });

    await t.step("CompleteMultipartUpload with If-None-Match and If-Match", async () => {
      const key = "conditional";
      const body = (n: number) => deterministicBytes(100, 40 + n);
      const complete = (
        upload: { uploadId: string; completed: CompletedPart[] },
        condition: { IfMatch?: string; IfNoneMatch?: string },
      ) =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: ERR,
            Key: key,
            UploadId: upload.uploadId,
            MultipartUpload: { Parts: upload.completed },
            ...condition,
          }),
        );
      // If-Match on a key without an object: NoSuchKey, and the upload stays.
      const first = await uploadParts(s3, ERR, key, [body(1)]);
      await unchanged(
        ERR,
        { key, ...first },
        () => assertS3Error(complete(first, { IfMatch: "*" }), "NoSuchKey", 404),
      );
      const created = await complete(first, { IfNoneMatch: "*" });
      assert.equal(created.ETag, multipartEtag([body(1)]));

      // Refused completions leave the object and the upload as they were.
      const second = await uploadParts(s3, ERR, key, [body(2)]);
      for (
        const condition of [
          { IfNoneMatch: "*" },
          { IfNoneMatch: created.ETag },
          { IfMatch: `"${md5Hex("not it")}"` },
        ]
      ) {
        await unchanged(
          ERR,
          { key, ...second },
          () => assertS3Error(complete(second, condition), "PreconditionFailed", 412),
        );
      }
      assert.deepEqual(await getBytes(s3, ERR, key), body(1));
      const replaced = await complete(second, { IfMatch: created.ETag });
      assert.equal(replaced.ETag, multipartEtag([body(2)]));
      assert.deepEqual(await getBytes(s3, ERR, key), body(2));
      const third = await uploadParts(s3, ERR, key, [body(3)]);
      await complete(third, { IfNoneMatch: created.ETag });
      assert.deepEqual(await getBytes(s3, ERR, key), body(3));
    });

    await t.step(
      "an upload goes on whatever is written to its key meanwhile, as in S3",
      async () => {
        const key = "written-meanwhile";
        const start = async () =>
          (await s3.send(new CreateMultipartUploadCommand({ Bucket: ERR, Key: key }))).UploadId!;
        const upload = async (uploadId: string, body: string) => {
          const part = await s3.send(
            new UploadPartCommand({
              Bucket: ERR,
              Key: key,
              UploadId: uploadId,
              PartNumber: 1,
              Body: body,
            }),
          );
          return { PartNumber: 1, ETag: part.ETag };
        };
        const complete = (uploadId: string, part: CompletedPart) =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: ERR,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: [part] },
            }),
          );
        const read = async () => new TextDecoder().decode(await getBytes(s3, ERR, key));
        const first = await start();
        await s3.send(new PutObjectCommand({ Bucket: ERR, Key: key, Body: "put meanwhile" }));
        const firstPart = await upload(first, "the first upload");
        await s3.send(new DeleteObjectCommand({ Bucket: ERR, Key: key }));
        const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: ERR, Prefix: key }));
        assert.deepEqual(listed.Uploads?.map((u) => u.UploadId), [first]);
        assert.equal((await listPartsOf(s3, ERR, key, first)).length, 1);
        // Of two uploads of the key, the one started last completes first; the other completes
        // after it, and is the object.
        const second = await start();
        await complete(second, await upload(second, "the second upload"));
        assert.equal(await read(), "the second upload");
        await complete(first, firstPart);
        assert.equal(await read(), "the first upload");
        const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: ERR, Prefix: key }));
        assert.equal(left.Uploads, undefined);
      },
    );

    await t.step("AbortMultipartUpload, then NoSuchUpload; made-up ids", async () => {
      await s3.send(
        new PutObjectCommand({ Bucket: ERR, Key: "aborted", Body: new TextEncoder().encode("v1") }),
      );
      const { uploadId, completed } = await uploadParts(s3, ERR, "aborted", [
        deterministicBytes(5 * MiB, 21),
        deterministicBytes(300, 22),
      ]);
      const res = await s3.send(
        new AbortMultipartUploadCommand({ Bucket: ERR, Key: "aborted", UploadId: uploadId }),
      );
      assert.equal(res.$metadata.httpStatusCode, 204);
      assert.deepEqual(await getBytes(s3, ERR, "aborted"), new TextEncoder().encode("v1"));
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: ERR }));
      assert.ok(
        !(listed.Uploads ?? []).some((u) => u.UploadId === uploadId),
        "aborted upload listed",
      );

      for (const id of [uploadId, "made-up-upload-id", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]) {
        await unchanged(ERR, undefined, async () => {
          await assertS3Error(
            s3.send(
              new UploadPartCommand({
                Bucket: ERR,
                Key: "aborted",
                UploadId: id,
                PartNumber: 3,
                Body: new TextEncoder().encode("late part"),
              }),
            ),
            "NoSuchUpload",
            404,
          );
          await assertS3Error(
            s3.send(
              new CompleteMultipartUploadCommand({
                Bucket: ERR,
                Key: "aborted",
                UploadId: id,
                MultipartUpload: { Parts: completed },
              }),
            ),
            "NoSuchUpload",
            404,
          );
          await assertS3Error(
            s3.send(new ListPartsCommand({ Bucket: ERR, Key: "aborted", UploadId: id })),
            "NoSuchUpload",
            404,
          );
          await assertS3Error(
            s3.send(new AbortMultipartUploadCommand({ Bucket: ERR, Key: "aborted", UploadId: id })),
            "NoSuchUpload",
            404,
          );
          await assertS3Error(
            s3.send(
              new UploadPartCopyCommand({
                Bucket: ERR,
                Key: "aborted",
                UploadId: id,
                PartNumber: 1,
                CopySource: `${ERR}/aborted`,
              }),
            ),
            "NoSuchUpload",
            404,
          );
        });
      }
      // An upload id is tied to its key.
      const other = await uploadParts(s3, ERR, "key-a", [deterministicBytes(10, 23)]);
      await unchanged(ERR, { key: "key-a", uploadId: other.uploadId }, () =>
        assertS3Error(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: ERR,
              Key: "key-b",
              UploadId: other.uploadId,
              MultipartUpload: { Parts: other.completed },
            }),
          ),
          "NoSuchUpload",
          404,
        ));
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: ERR, Key: "key-a", UploadId: other.uploadId }),
      );
    });

    await t.step(
      "ListParts pages with MaxParts and PartNumberMarker; re-uploaded part",
      async () => {
        const bodies = [1, 2, 3, 4, 5].map((i) => deterministicBytes(1000 + i, 30 + i));
        const { uploadId } = await uploadParts(s3, ERR, "five-parts", bodies);
        // Re-uploading part 4 replaces it.
        bodies[3] = deterministicBytes(777, 99);
        const again = await s3.send(
          new UploadPartCommand({
            Bucket: ERR,
            Key: "five-parts",
            UploadId: uploadId,
            PartNumber: 4,
            Body: bodies[3],
          }),
        );
        assert.equal(again.ETag, `"${md5Hex(bodies[3])}"`);
        const seen: { n?: number; etag?: string; size?: number }[] = [];
        let marker: string | undefined;
        const pages: number[][] = [];
        for (let i = 0; i < 10; i++) {
          const page = await s3.send(
            new ListPartsCommand({
              Bucket: ERR,
              Key: "five-parts",
              UploadId: uploadId,
              MaxParts: 2,
              PartNumberMarker: marker,
            }),
          );
          assert.equal(page.MaxParts, 2);
          assert.equal(page.UploadId, uploadId);
          assert.equal(page.Key, "five-parts");
          const parts = page.Parts ?? [];
          pages.push(parts.map((p) => p.PartNumber!));
          for (const p of parts) {
            seen.push({ n: p.PartNumber, etag: p.ETag, size: p.Size });
            assert.ok(p.LastModified instanceof Date);
          }
          if (!page.IsTruncated) break;
          assert.equal(page.NextPartNumberMarker, String(parts.at(-1)!.PartNumber));
          marker = page.NextPartNumberMarker;
        }
        assert.deepEqual(pages, [[1, 2], [3, 4], [5]]);
        assert.deepEqual(
          seen,
          bodies.map((b, i) => ({ n: i + 1, etag: `"${md5Hex(b)}"`, size: b.byteLength })),
        );
        const fromMarker = await s3.send(
          new ListPartsCommand({
            Bucket: ERR,
            Key: "five-parts",
            UploadId: uploadId,
            PartNumberMarker: "3",
          }),
        );
        assert.deepEqual(fromMarker.Parts!.map((p) => p.PartNumber), [4, 5]);
        assert.equal(fromMarker.IsTruncated, false);
        // No part asked for: an empty page that a paginator does not follow.
        const none = await s3.send(
          new ListPartsCommand({ Bucket: ERR, Key: "five-parts", UploadId: uploadId, MaxParts: 0 }),
        );
        assert.equal(none.Parts, undefined);
        assert.equal(none.IsTruncated, false);
        // The page's last upload aborted before the next page: the next page goes on after it.
        const uploadIds = [];
        for (let i = 0; i < 4; i++) {
          const created = await s3.send(
            new CreateMultipartUploadCommand({ Bucket: ERR, Key: "paged-uploads" }),
          );
          uploadIds.push(created.UploadId!);
        }
        const firstPage = await s3.send(
          new ListMultipartUploadsCommand({ Bucket: ERR, Prefix: "paged-", MaxUploads: 2 }),
        );
        assert.deepEqual(firstPage.Uploads!.map((u) => u.UploadId), uploadIds.slice(0, 2));
        await s3.send(
          new AbortMultipartUploadCommand({
            Bucket: ERR,
            Key: "paged-uploads",
            UploadId: firstPage.NextUploadIdMarker,
          }),
        );
        const nextPage = await s3.send(
          new ListMultipartUploadsCommand({
            Bucket: ERR,
            Prefix: "paged-",
            KeyMarker: firstPage.NextKeyMarker,
            UploadIdMarker: firstPage.NextUploadIdMarker,
          }),
        );
        assert.deepEqual(nextPage.Uploads!.map((u) => u.UploadId), uploadIds.slice(2));
        // An encoding other than url is refused, not claimed and left undone.
        await assertS3Error(
          s3.send(new ListMultipartUploadsCommand({ Bucket: ERR, EncodingType: "bogus" as "url" })),
          "InvalidArgument",
          400,
        );
        await s3.send(
          new AbortMultipartUploadCommand({ Bucket: ERR, Key: "five-parts", UploadId: uploadId }),
        );
      },
    );

    await t.step("ListMultipartUploads: prefix, delimiter, key and upload-id markers", async () => {
      const keys = [
        "docs/x",
        "docs/x",
        "docs/y",
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
        "photos/top.jpg",
        "zzz",
      ];
      const ids: { key: string; id: string }[] = [];
      for (const key of keys) {
        const res = await s3.send(new CreateMultipartUploadCommand({ Bucket: UPLOADS, Key: key }));
        ids.push({ key, id: res.UploadId! });
        await new Promise((r) => setTimeout(r, 5));
      }
      // An aborted and a completed upload are not listed.
      const gone = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: UPLOADS, Key: "docs/gone" }),
      );
      await s3.send(
        new AbortMultipartUploadCommand({
          Bucket: UPLOADS,
          Key: "docs/gone",
          UploadId: gone.UploadId,
        }),
      );
      const fin = await uploadParts(s3, UPLOADS, "docs/done", [deterministicBytes(5, 5)]);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: UPLOADS,
          Key: "docs/done",
          UploadId: fin.uploadId,
          MultipartUpload: { Parts: fin.completed },
        }),
      );

      const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: UPLOADS }));
      assert.equal(all.IsTruncated, false);
      assert.deepEqual(
        all.Uploads!.map((u) => ({ key: u.Key, id: u.UploadId })),
        ids,
        "all uploads, sorted by key then initiation time",
      );
      for (const u of all.Uploads!) assert.ok(u.Initiated instanceof Date);

      const docs = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: UPLOADS, Prefix: "docs/" }),
      );
      assert.equal(docs.Prefix, "docs/");
      assert.deepEqual(docs.Uploads!.map((u) => u.UploadId), ids.slice(0, 3).map((u) => u.id));

      const grouped = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: UPLOADS, Prefix: "photos/", Delimiter: "/" }),
      );
      assert.equal(grouped.Delimiter, "/");
      assert.deepEqual(grouped.CommonPrefixes!.map((p) => p.Prefix), [
        "photos/2024/",
        "photos/2025/",
      ]);
      assert.deepEqual(grouped.Uploads!.map((u) => u.Key), ["photos/top.jpg"]);

      const top = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: UPLOADS, Delimiter: "/" }),
      );
      assert.deepEqual(top.CommonPrefixes!.map((p) => p.Prefix), ["docs/", "photos/"]);
      assert.deepEqual(top.Uploads!.map((u) => u.Key), ["zzz"]);

      for (const size of [1, 2, 3]) {
        const seen: { key: string; id: string }[] = [];
        let keyMarker: string | undefined;
        let idMarker: string | undefined;
        for (let i = 0; i < 20; i++) {
          const page = await s3.send(
            new ListMultipartUploadsCommand({
              Bucket: UPLOADS,
              MaxUploads: size,
              KeyMarker: keyMarker,
              UploadIdMarker: idMarker,
            }),
          );
          assert.equal(page.MaxUploads, size);
          const uploads = page.Uploads ?? [];
          for (const u of uploads) seen.push({ key: u.Key!, id: u.UploadId! });
          if (!page.IsTruncated) break;
          assert.equal(uploads.length, size, "a truncated page is full");
          assert.equal(page.NextKeyMarker, uploads.at(-1)!.Key);
          assert.equal(page.NextUploadIdMarker, uploads.at(-1)!.UploadId);
          keyMarker = page.NextKeyMarker;
          idMarker = page.NextUploadIdMarker;
        }
        assert.deepEqual(seen, ids, `paging by ${size}`);
      }
      // KeyMarker alone skips every upload of that key.
      const after = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: UPLOADS, KeyMarker: "docs/x" }),
      );
      assert.deepEqual(after.Uploads!.map((u) => u.Key), keys.slice(2));
      // KeyMarker with UploadIdMarker resumes after that upload of the key.
      const within = await s3.send(
        new ListMultipartUploadsCommand({
          Bucket: UPLOADS,
          KeyMarker: "docs/x",
          UploadIdMarker: ids[0].id,
        }),
      );
      assert.deepEqual(within.Uploads!.map((u) => u.UploadId), ids.slice(1).map((u) => u.id));
      for (const { key, id } of ids) {
        await s3.send(new AbortMultipartUploadCommand({ Bucket: UPLOADS, Key: key, UploadId: id }));
      }
      const empty = await s3.send(new ListMultipartUploadsCommand({ Bucket: UPLOADS }));
      assert.deepEqual(empty.Uploads ?? [], []);
    });

    await t.step("UploadPartCopy: whole source and ranges across block boundaries", async () => {
      const source = deterministicBytes(5 * MiB + 70001, 50);
      await s3.send(new PutObjectCommand({ Bucket: MP, Key: "copy-source", Body: source }));
      const created = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: MP, Key: "copied" }),
      );
      const uploadId = created.UploadId!;
      const copyPart = async (partNumber: number, from: string, range?: string) => {
        const res = await s3.send(
          new UploadPartCopyCommand({
            Bucket: MP,
            Key: "copied",
            UploadId: uploadId,
            PartNumber: partNumber,
            CopySource: from,
            CopySourceRange: range,
          }),
        );
        return res.CopyPartResult!.ETag!;
      };
      const p1 = source;
      assert.equal(await copyPart(1, `${MP}/copy-source`), `"${md5Hex(p1)}"`);
      // Across the boundary between parts 1 and 2 of the multipart object "fresh", and its blocks.
      const edge = part1.byteLength;
      const p2 = whole.slice(edge - 1000, edge + 5 * MiB);
      assert.equal(
        await copyPart(2, `${MP}/fresh`, `bytes=${edge - 1000}-${edge + 5 * MiB - 1}`),
        `"${md5Hex(p2)}"`,
      );
      // 65000..200000 crosses the 64 KiB block boundaries at 65536, 131072 and 196608.
      const p3 = source.slice(65000, 200001);
      assert.equal(await copyPart(3, `${MP}/copy-source`, "bytes=65000-200000"), `"${md5Hex(p3)}"`);
      // A range past the end of the source, or a missing source, is refused and stores no part.
      await unchanged(MP, { key: "copied", uploadId }, async () => {
        const e = await copyPart(
          4,
          `${MP}/copy-source`,
          `bytes=${source.byteLength}-${source.byteLength + 10}`,
        ).then(() => undefined, (e) => e);
        assert.ok(e, "a range past the end of the source must fail");
        assert.ok(
          [400, 416].includes(e.$metadata?.httpStatusCode),
          `expected 400/416, got ${e.$metadata?.httpStatusCode} ${e.name}`,
        );
        await assertS3Error(copyPart(4, `${MP}/no-such-source`), "NoSuchKey", 404);
        await assertS3Error(copyPart(4, `no-such-bucket/copy-source`), "NoSuchBucket", 404);
      });
      const parts = await listPartsOf(s3, MP, "copied", uploadId);
      assert.deepEqual(parts.map((p) => p.size), [p1.byteLength, p2.byteLength, p3.byteLength]);
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: MP,
          Key: "copied",
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      );
      assert.equal(done.ETag, multipartEtag([p1, p2, p3]));
      const got = await getBytes(s3, MP, "copied");
      assert.ok(
        Buffer.from(got).equals(Buffer.from(concatBytes(p1, p2, p3))),
        "copied object differs",
      );

      // Exactly one block, as the only part.
      const single = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: MP, Key: "one-block" }),
      );
      const block = source.slice(BLOCK, 2 * BLOCK);
      const res = await s3.send(
        new UploadPartCopyCommand({
          Bucket: MP,
          Key: "one-block",
          UploadId: single.UploadId,
          PartNumber: 1,
          CopySource: `${MP}/copy-source`,
          CopySourceRange: `bytes=${BLOCK}-${2 * BLOCK - 1}`,
        }),
      );
      assert.equal(res.CopyPartResult!.ETag, `"${md5Hex(block)}"`);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: MP,
          Key: "one-block",
          UploadId: single.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: res.CopyPartResult!.ETag }] },
        }),
      );
      assert.ok(Buffer.from(await getBytes(s3, MP, "one-block")).equals(Buffer.from(block)));
    });

    await t.step(
      "checksums: CRC32, CRC32C, SHA256, SHA512 and MD5 composite; BadDigest",
      async () => {
        const reader = server.client(credentials, { responseChecksumValidation: "WHEN_REQUIRED" });
        const bodies = [
          deterministicBytes(5 * MiB, 60),
          deterministicBytes(5 * MiB + 9, 61),
          deterministicBytes(4321, 62),
        ];
        for (const algorithm of ["CRC32", "CRC32C", "SHA256", "SHA512", "MD5"] as Algo[]) {
          const key = `checksum-${algorithm}`;
          const field = checksumField(algorithm);
          const { created, uploadId, completed } = await uploadParts(s3, MP, key, bodies, {
            create: { ChecksumAlgorithm: algorithm },
            ofPart: (body) => checksumOf(algorithm, body),
            sent: "declared",
          });
          assert.equal(created.ChecksumAlgorithm, algorithm);
          // A part whose declared checksum is wrong is refused and not stored.
          await unchanged(MP, { key, uploadId }, () =>
            assertS3Error(
              s3.send(
                new UploadPartCommand({
                  Bucket: MP,
                  Key: key,
                  UploadId: uploadId,
                  PartNumber: 2,
                  Body: bodies[2],
                  ChecksumAlgorithm: sdkAlgorithm(algorithm),
                  [field]: checksumOf(algorithm, bodies[1]),
                }),
              ),
              "BadDigest",
              400,
            ));
          const parts = await s3.send(
            new ListPartsCommand({ Bucket: MP, Key: key, UploadId: uploadId }),
          );
          assert.deepEqual(
            parts.Parts!.map((p) => p[field]),
            bodies.map((b) => checksumOf(algorithm, b)),
            "ListParts returns each part's checksum",
          );
          const complete = (wholeChecksum?: string) =>
            s3.send(
              new CompleteMultipartUploadCommand({
                Bucket: MP,
                Key: key,
                UploadId: uploadId,
                MultipartUpload: { Parts: completed },
                ...(wholeChecksum === undefined ? {} : { [field]: wholeChecksum }),
              }),
            );
          // A part's checksum that is no text is MalformedXML.
          await unchanged(MP, { key, uploadId }, async () => {
            const partsXml = completed.map((p) =>
              `<Part><PartNumber>${p.PartNumber}</PartNumber><ETag>${p.ETag}</ETag>` +
              `<${field}><Nested/></${field}></Part>`
            ).join("");
            const res = await signedFetch(server, credentials, {
              method: "POST",
              path: objectPath(MP, key),
              query: { uploadId },
              body: `<CompleteMultipartUpload>${partsXml}</CompleteMultipartUpload>`,
            });
            await assertErrorResponse(res, 400, "MalformedXML");
          });
          // A whole-upload checksum that does not match is BadDigest, and completes nothing.
          await assertS3Error(complete(checksumOf(algorithm, bodies[0])), "BadDigest", 400);
          // So is a list naming a part with a checksum the part does not have: InvalidPart.
          await unchanged(MP, { key, uploadId }, () =>
            assertS3Error(
              s3.send(
                new CompleteMultipartUploadCommand({
                  Bucket: MP,
                  Key: key,
                  UploadId: uploadId,
                  MultipartUpload: {
                    Parts: completed.map((p, i) =>
                      i === 1 ? { ...p, [field]: checksumOf(algorithm, bodies[0]) } : p
                    ),
                  },
                }),
              ),
              "InvalidPart",
              400,
            ));
          const expected = compositeChecksum(algorithm, bodies);
          const done = await complete(expected);
          assert.equal(done[field], expected, `composite ${algorithm} from Complete`);
          assert.equal(done.Location, `${server.endpoint}/${MP}/${key}`, "the object's URL");
          assert.match(done[field]!, /-3$/);
          const head = await s3.send(
            new HeadObjectCommand({ Bucket: MP, Key: key, ChecksumMode: "ENABLED" }),
          );
          assert.equal(head[field], expected, `composite ${algorithm} from HeadObject`);
          // The SDK cannot check a body against a checksum it cannot compute, unless told not to.
          const checkedBySdk = sdkAlgorithm(algorithm) !== undefined;
          const get = await (checkedBySdk ? s3 : reader).send(
            new GetObjectCommand({ Bucket: MP, Key: key, ChecksumMode: "ENABLED" }),
          );
          assert.equal(get[field], expected, `composite ${algorithm} from GetObject`);
          const bytes = await get.Body!.transformToByteArray();
          assert.ok(Buffer.from(bytes).equals(Buffer.from(concatBytes(...bodies))));
          assert.equal(get.ETag, multipartEtag(bodies));
        }
        // A wrong checksum on a part of an upload without a checksum algorithm.
        const plain = await uploadParts(s3, MP, "plain-bad-digest", [deterministicBytes(10, 70)]);
        await unchanged(
          MP,
          { key: "plain-bad-digest", uploadId: plain.uploadId },
          () =>
            assertS3Error(
              s3.send(
                new UploadPartCommand({
                  Bucket: MP,
                  Key: "plain-bad-digest",
                  UploadId: plain.uploadId,
                  PartNumber: 2,
                  Body: deterministicBytes(10, 71),
                  ContentMD5: Buffer.from(md5Hex("something else"), "hex").toString("base64"),
                }),
              ),
              "BadDigest",
              400,
            ),
        );
        await s3.send(
          new AbortMultipartUploadCommand({
            Bucket: MP,
            Key: "plain-bad-digest",
            UploadId: plain.uploadId,
          }),
        );
      },
    );

    await t.step("full-object checksums: CRC32, CRC32C and CRC64NVME; BadDigest", async () => {
      const bodies = [
        deterministicBytes(5 * MiB, 80),
        deterministicBytes(5 * MiB + 3, 81),
        deterministicBytes(777, 82),
      ];
      const crcOf = (algorithm: "CRC32" | "CRC32C" | "CRC64NVME", data: Uint8Array) => {
        if (algorithm !== "CRC64NVME") return checksumOf(algorithm, data);
        const hasher = checksumHasher(algorithm);
        hasher.update(data);
        return Buffer.from(hasher.digest()).toString("base64");
      };
      for (const algorithm of ["CRC32", "CRC32C", "CRC64NVME"] as const) {
        const key = `full-object-${algorithm}`;
        const field = `Checksum${algorithm}` as const;
        // CRC64NVME has full-object checksums only: the type is then S3's default.
        const { created, uploadId, completed } = await uploadParts(s3, MP, key, bodies, {
          create: {
            ChecksumAlgorithm: algorithm,
            ...(algorithm === "CRC64NVME" ? {} : { ChecksumType: "FULL_OBJECT" as const }),
          },
          ofPart: (body) => crcOf(algorithm, body),
          sent: "computed by the SDK",
        });
        assert.equal(created.ChecksumType, "FULL_OBJECT");
        const listed = await s3.send(
          new ListPartsCommand({ Bucket: MP, Key: key, UploadId: uploadId }),
        );
        assert.equal(listed.ChecksumType, "FULL_OBJECT");
        const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: MP, Prefix: key }));
        assert.deepEqual(
          uploads.Uploads?.map((u) => [u.UploadId, u.ChecksumAlgorithm, u.ChecksumType]),
          [[uploadId, algorithm, "FULL_OBJECT"]],
        );
        const complete = (wholeChecksum: string) =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: MP,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: completed },
              [field]: wholeChecksum,
            }),
          );
        // The whole object's CRC, computed from the parts' CRCs, is checked.
        await unchanged(
          MP,
          { key, uploadId },
          () => assertS3Error(complete(crcOf(algorithm, bodies[0])), "BadDigest", 400),
        );
        // A completion that asks for the other checksum type is refused.
        await unchanged(MP, { key, uploadId }, () =>
          assertS3Error(
            s3.send(
              new CompleteMultipartUploadCommand({
                Bucket: MP,
                Key: key,
                UploadId: uploadId,
                MultipartUpload: { Parts: completed },
                ChecksumType: "COMPOSITE",
              }),
            ),
            "InvalidRequest",
            400,
          ));
        const expected = crcOf(algorithm, concatBytes(...bodies));
        const done = await complete(expected);
        assert.equal(done[field], expected, `full-object ${algorithm} from Complete`);
        assert.equal(done.ChecksumType, "FULL_OBJECT");
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: MP, Key: key, ChecksumMode: "ENABLED" }),
        );
        assert.equal(head[field], expected, `full-object ${algorithm} from HeadObject`);
        assert.equal(head.ChecksumType, "FULL_OBJECT");
        const attributes = await s3.send(
          new GetObjectAttributesCommand({ Bucket: MP, Key: key, ObjectAttributes: ["Checksum"] }),
        );
        assert.equal(attributes.Checksum?.[field], expected);
        assert.equal(attributes.Checksum?.ChecksumType, "FULL_OBJECT");
        // A part read by its number comes with that part's checksum.
        const part = await s3.send(
          new GetObjectCommand({ Bucket: MP, Key: key, PartNumber: 2, ChecksumMode: "ENABLED" }),
        );
        assert.equal(part[field], crcOf(algorithm, bodies[1]), `${algorithm} of part 2 on GET`);
        assert.ok(
          Buffer.from(await part.Body!.transformToByteArray()).equals(Buffer.from(bodies[1])),
        );
      }
      // An upload created with a CRC and no type is composite, unless its completion names
      // FULL_OBJECT, as some clients send the type only then.
      const late = await uploadParts(s3, MP, "full-object-late", bodies.slice(0, 2), {
        create: { ChecksumAlgorithm: "CRC32" },
        ofPart: (body) => crcOf("CRC32", body),
        sent: "computed by the SDK",
      });
      assert.equal(late.created.ChecksumType, "COMPOSITE");
      const lateDone = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: MP,
          Key: "full-object-late",
          UploadId: late.uploadId,
          MultipartUpload: { Parts: late.completed },
          ChecksumType: "FULL_OBJECT",
          ChecksumCRC32: crcOf("CRC32", concatBytes(bodies[0], bodies[1])),
        }),
      );
      assert.equal(lateDone.ChecksumType, "FULL_OBJECT");
      assert.equal(lateDone.ChecksumCRC32, crcOf("CRC32", concatBytes(bodies[0], bodies[1])));
      // A part copied from another object gets its checksum too.
      const copyKey = "full-object-copied";
      const copyUpload = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: MP,
          Key: copyKey,
          ChecksumAlgorithm: "CRC32C",
          ChecksumType: "FULL_OBJECT",
        }),
      );
      const copiedPart = await s3.send(
        new UploadPartCopyCommand({
          Bucket: MP,
          Key: copyKey,
          UploadId: copyUpload.UploadId,
          PartNumber: 1,
          CopySource: `${MP}/full-object-CRC32`,
          CopySourceRange: `bytes=0-${5 * MiB - 1}`,
        }),
      );
      assert.equal(copiedPart.CopyPartResult?.ChecksumCRC32C, crcOf("CRC32C", bodies[0]));
      const lastPart = await s3.send(
        new UploadPartCommand({
          Bucket: MP,
          Key: copyKey,
          UploadId: copyUpload.UploadId,
          PartNumber: 2,
          Body: bodies[2],
          ChecksumAlgorithm: "CRC32C",
        }),
      );
      const copyDone = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: MP,
          Key: copyKey,
          UploadId: copyUpload.UploadId,
          MultipartUpload: {
            Parts: [
              {
                PartNumber: 1,
                ETag: copiedPart.CopyPartResult?.ETag,
                ChecksumCRC32C: copiedPart.CopyPartResult?.ChecksumCRC32C,
              },
              { PartNumber: 2, ETag: lastPart.ETag, ChecksumCRC32C: lastPart.ChecksumCRC32C },
            ],
          },
        }),
      );
      assert.equal(copyDone.ChecksumCRC32C, crcOf("CRC32C", concatBytes(bodies[0], bodies[2])));
      // Types an algorithm cannot have, a type without an algorithm, and an unknown type.
      const refusedTypes: [ChecksumAlgorithm | undefined, string][] = [
        ["SHA256", "FULL_OBJECT"],
        ["SHA1", "FULL_OBJECT"],
        ["CRC64NVME", "COMPOSITE"],
        [undefined, "FULL_OBJECT"],
        ["CRC32", "WHOLE"],
      ];
      for (const [algorithm, type] of refusedTypes) {
        await unchanged(MP, undefined, () =>
          assertS3Error(
            s3.send(
              new CreateMultipartUploadCommand({
                Bucket: MP,
                Key: "refused-type",
                ChecksumAlgorithm: algorithm,
                ChecksumType: type as ChecksumType,
              }),
            ),
            "InvalidRequest",
            400,
          ));
      }
      const uploads = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: MP, Prefix: "refused-type" }),
      );
      assert.equal(uploads.Uploads, undefined, "no upload was created");
    });

    await t.step("every bucket still lists and reads consistently", async () => {
      const snapshot = await snapshotStore(s3);
      assert.deepEqual(Object.keys(snapshot).sort(), [BIG, ERR, MP, UPLOADS]);
      assert.deepEqual(snapshot[UPLOADS].map((o) => o.key), ["docs/done"]);
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});

Deno.test("ended multipart uploads leave no record and no data behind but their objects'", async () => {
  await withServer(async (server, s3) => {
    const Bucket = "ended";
    await s3.send(new CreateBucketCommand({ Bucket }));
    const put = async (Key: string, UploadId: string, PartNumber: number, Body: Uint8Array) =>
      (await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }))).ETag!;
    const create = async (Key: string) =>
      (await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId!;

    // Completed: part 1 uploaded twice, part 3 left out.
    const done = await create("done");
    await put("done", done, 1, deterministicBytes(5 * MiB, 1));
    const first = deterministicBytes(5 * MiB, 2, BLOCK);
    const last = deterministicBytes(BLOCK, 3);
    const parts = [
      { PartNumber: 1, ETag: await put("done", done, 1, first) },
      { PartNumber: 2, ETag: await put("done", done, 2, last) },
    ];
    await put("done", done, 3, deterministicBytes(BLOCK, 4));
    // Completed twice at once (a client's retry while its first attempt runs): both answered.
    const completions = await Promise.all([1, 2].map(() =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: "done",
          UploadId: done,
          MultipartUpload: { Parts: parts },
        }),
      )
    ));
    assert.equal(completions[0].ETag, completions[1].ETag);
    // Aborted.
    const aborted = await create("aborted");
    await put("aborted", aborted, 1, deterministicBytes(5 * MiB, 5, BLOCK));
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: "aborted", UploadId: aborted }));
    // In progress: its record stays.
    const going = await create("going");
    await put("going", going, 1, deterministicBytes(BLOCK, 6));

    // The abort's parts are released after its answer.
    const blocksOfKept = 5 * MiB / BLOCK + 1 + 1;
    const deadline = Date.now() + 10_000;
    let referenced = await referencedBlocks(server.dir);
    while (referenced !== blocksOfKept && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      referenced = await referencedBlocks(server.dir);
    }
    assert.equal(referenced, blocksOfKept, "only the object's and the upload in progress's blocks");
    assert.deepEqual(await storedUploads(server.dir), [going], "only the upload in progress");
    assert.ok(sameBytes(await getBytes(s3, Bucket, "done"), concatBytes(first, last)));
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: "going", UploadId: going }));
  }, { blockSize: BLOCK });
});

/** The upload ids of the multipart upload records in a node's metadata. */
async function storedUploads(dir: string): Promise<string[]> {
  const kv = await Deno.openKv(`${dir}/meta/metadata.kv`);
  try {
    const ids: string[] = [];
    for await (const { key } of kv.list({ prefix: ["t", "mpu"] })) ids.push(String(key[3]));
    return ids;
  } finally {
    kv.close();
  }
}

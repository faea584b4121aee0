/**
 * Two PutObject of one key at once: as in S3, the request that ends last is
 * kept, whichever began first, and the other one's data is released. A
 * conditional DeleteObject racing a PutObject deletes only what it matched.
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { withServer } from "./harness.ts";
import {
  assertOneConditionalWriterWins,
  md5Base64,
  referencedBlocks,
  sameBytes,
  signedRawHead,
} from "./_s3_helpers.ts";

const BLOCK_SIZE = 65536;

Deno.test("of two PUTs of one key at once, the one that ends last wins and the other's data goes", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "race" }));
    // The first PUT is held after a few blocks, or before its first block is complete; or it is
    // held, then fails (a wrong Content-MD5), and the second one stays.
    const cases = [
      { key: "after-blocks", held: BLOCK_SIZE * 3, seed: 0, fails: false },
      { key: "early", held: 1000, seed: 50, fails: false },
      { key: "failing", held: BLOCK_SIZE * 3, seed: 20, fails: true },
    ];
    for (const { key, held, seed, fails } of cases) {
      // Every block differs from every other: none is shared.
      const first = new Uint8Array(BLOCK_SIZE * 12).map((_, i) => 100 + seed + (i >> 16));
      const second = new Uint8Array(BLOCK_SIZE * 5).map((_, i) => 2 + seed + (i >> 16));
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.apiPort });
      try {
        const head = await signedRawHead(server, credentials, "PUT", `/race/${key}`, {
          "content-length": String(first.byteLength),
          ...(fails ? { "content-md5": md5Base64("something else") } : {}),
        });
        await conn.write(new TextEncoder().encode(head));
        for (let at = 0; at < held;) at += await conn.write(first.subarray(at, held));
        await new Promise((r) => setTimeout(r, 300)); // what it sent is stored
        // The second PUT begins later and ends first: it is replaced.
        await s3.send(new PutObjectCommand({ Bucket: "race", Key: key, Body: second }));
        for (let at = held; at < first.byteLength;) at += await conn.write(first.subarray(at));
        const reply = new Uint8Array(4096);
        const n = await conn.read(reply);
        const status = fails ? /^HTTP\/1\.1 400/ : /^HTTP\/1\.1 200/;
        assert.match(new TextDecoder().decode(reply.subarray(0, n ?? 0)), status);
      } finally {
        conn.close();
      }
      const got = await s3.send(new GetObjectCommand({ Bucket: "race", Key: key }));
      const body = await got.Body!.transformToByteArray();
      const kept = fails ? second : first;
      assert.ok(sameBytes(body, kept), `${key}: the request that ended last and succeeded won`);
    }
    // Only the kept objects' blocks stay referenced: 12, 12 and 5.
    const deadline = Date.now() + 10_000;
    let referenced = await referencedBlocks(server.dir);
    while (referenced !== 29 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      referenced = await referencedBlocks(server.dir);
    }
    assert.equal(
      referenced,
      29,
      `${referenced}: the replaced writes' blocks were released, the kept ones not`,
    );
  }, { blockSize: BLOCK_SIZE });
});

Deno.test("a DELETE with If-Match racing a PUT of its key deletes only the object it matched", async () => {
  await withServer(async (_server, s3) => {
    await s3.send(new CreateBucketCommand({ Bucket: "race" }));
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 40; round++) {
      const key = `k${round}`;
      const old = await s3.send(new PutObjectCommand({ Bucket: "race", Key: key, Body: "old" }));
      // Inline and block-stored replacements: both paths write the key's entry.
      const replacement = round % 2 === 0 ? `new ${round}` : new Uint8Array(BLOCK_SIZE * 2);
      const [, deletion] = await Promise.all([
        s3.send(new PutObjectCommand({ Bucket: "race", Key: key, Body: replacement })),
        s3.send(new DeleteObjectCommand({ Bucket: "race", Key: key, IfMatch: old.ETag })).then(
          () => "deleted",
          (e) => {
            assert.ok(e instanceof S3ServiceException && e.name === "PreconditionFailed", `${e}`);
            return "refused";
          },
        ),
      ]);
      outcomes.set(deletion, (outcomes.get(deletion) ?? 0) + 1);
      // Deleted before the PUT, or refused after it: the replacement stays either way.
      const got = await s3.send(new GetObjectCommand({ Bucket: "race", Key: key }));
      const body = await got.Body!.transformToByteArray();
      const expected = typeof replacement === "string"
        ? new TextEncoder().encode(replacement)
        : replacement;
      assert.ok(sameBytes(body, expected), `round ${round}: ${deletion}, the replacement stays`);
    }
    assert.equal((outcomes.get("deleted") ?? 0) + (outcomes.get("refused") ?? 0), 40);
  }, { blockSize: BLOCK_SIZE });
});

Deno.test("of conditional PUTs of one key at once, exactly one succeeds", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "race" }));
    // Each writer its own client (connection), inline and block-stored bodies by turns.
    const clients = [s3, server.client(credentials), server.client(credentials)];
    await assertOneConditionalWriterWins((w) => clients[w], "race", {
      rounds: 12,
      writers: 3,
      bodySize: (round) => round % 2 === 0 ? 100 : BLOCK_SIZE * 2 + 1,
    });
  }, { blockSize: BLOCK_SIZE });
});

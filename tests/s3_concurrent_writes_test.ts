/**
 * Two PutObject of one key at once: as in S3, the request that began last is
 * kept, whichever ends last, and the other one's data is released.
 */
import assert from "node:assert/strict";
import { deserialize } from "node:v8";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { withServer } from "./harness.ts";
import { sameBytes, signedRawHead } from "./_s3_helpers.ts";

const BLOCK_SIZE = 65536;

/** Blocks with a reference count above zero in the server's metadata. */
async function referencedBlocks(dir: string): Promise<number> {
  const kv = await Deno.openKv(`${dir}/meta/metadata.kv`);
  try {
    let n = 0;
    for await (const { value } of kv.list<Uint8Array>({ prefix: ["block", "rc"] })) {
      // A stored value is a tag byte, then the value in V8's serialization format.
      if ((deserialize(value.subarray(1)) as { count: number }).count > 0) n++;
    }
    return n;
  } finally {
    kv.close();
  }
}

Deno.test("of two PUTs of one key at once, the later request wins and the other's data goes", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "race" }));
    // The first PUT is held after a few blocks, or before its first block is complete.
    for (
      const [key, held, seed] of [["after-blocks", BLOCK_SIZE * 3, 0], ["early", 1000, 50]] as const
    ) {
      // Every block differs from every other: none is shared.
      const first = new Uint8Array(BLOCK_SIZE * 12).map((_, i) => 100 + seed + (i >> 16));
      const second = new Uint8Array(BLOCK_SIZE * 5).map((_, i) => 2 + seed + (i >> 16));
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.apiPort });
      try {
        const head = await signedRawHead(server, credentials, "PUT", `/race/${key}`, {
          "content-length": String(first.byteLength),
        });
        await conn.write(new TextEncoder().encode(head));
        for (let at = 0; at < held;) at += await conn.write(first.subarray(at, held));
        await new Promise((r) => setTimeout(r, 300)); // what it sent is stored
        // The second PUT begins later and ends first.
        await s3.send(new PutObjectCommand({ Bucket: "race", Key: key, Body: second }));
        for (let at = held; at < first.byteLength;) at += await conn.write(first.subarray(at));
        const reply = new Uint8Array(4096);
        const n = await conn.read(reply);
        assert.match(new TextDecoder().decode(reply.subarray(0, n ?? 0)), /^HTTP\/1\.1 200/);
      } finally {
        conn.close();
      }
      const got = await s3.send(new GetObjectCommand({ Bucket: "race", Key: key }));
      const body = await got.Body!.transformToByteArray();
      assert.ok(sameBytes(body, second), `${key}: the later request won`);
    }
    // Only the kept objects' blocks stay referenced.
    const deadline = Date.now() + 10_000;
    let referenced = await referencedBlocks(server.dir);
    while (referenced !== 10 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      referenced = await referencedBlocks(server.dir);
    }
    assert.equal(referenced, 10, "the replaced writes' blocks were released");
  }, { blockSize: BLOCK_SIZE });
});

/**
 * Uploads refused before their body is read (unknown bucket, wrong
 * signature, SSE-KMS): the client still gets the S3 error, not a closed
 * connection, and the connection serves the next request.
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { TestServer } from "./harness.ts";
import { assertS3Error, keysOf } from "./_s3_helpers.ts";

const EIGHT_MIB = new Uint8Array(8 * 1024 * 1024).fill(97);

Deno.test("an 8 MiB upload refused unread gets its S3 error", async (t) => {
  const server = await TestServer.start();
  const owner = await server.createKey("owner");
  const s3 = server.client(owner);
  const wrongSecret = server.client({ ...owner, secretAccessKey: "0".repeat(64) });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "target" }));
    await t.step("through the AWS SDK, which asks for 100-continue", async () => {
      // Sent one at a time: each call starts when its turn comes.
      const cases: [() => Promise<unknown>, string, number][] = [
        [
          () =>
            s3.send(new PutObjectCommand({ Bucket: "no-such-bucket", Key: "k", Body: EIGHT_MIB })),
          "NoSuchBucket",
          404,
        ],
        [
          () =>
            wrongSecret.send(new PutObjectCommand({ Bucket: "target", Key: "k", Body: EIGHT_MIB })),
          "SignatureDoesNotMatch",
          403,
        ],
        [
          () =>
            s3.send(
              new PutObjectCommand({
                Bucket: "target",
                Key: "k",
                Body: EIGHT_MIB,
                ServerSideEncryption: "aws:kms",
              }),
            ),
          "NotImplemented",
          501,
        ],
      ];
      for (const [call, code, status] of cases) await assertS3Error(call(), code, status);
      assert.deepEqual(await keysOf(s3, "target"), [], "nothing was stored");
    });

    await t.step("over one raw connection: the error, then the next request", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.apiPort });
      try {
        const head = `PUT /no-such-bucket/k HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Content-Length: ${EIGHT_MIB.byteLength}\r\n\r\n`;
        const writing = (async () => {
          await conn.write(new TextEncoder().encode(head));
          let sent = 0;
          while (sent < EIGHT_MIB.byteLength) sent += await conn.write(EIGHT_MIB.subarray(sent));
          await conn.write(
            new TextEncoder().encode("GET /no-such-bucket HTTP/1.1\r\nHost: x\r\n\r\n"),
          );
        })();
        let text = "";
        const buf = new Uint8Array(65536);
        while ((text.match(/HTTP\/1\.1 /g) ?? []).length < 2 || !text.endsWith("</Error>")) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        await writing;
        const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
        assert.deepEqual(statuses, ["404", "404"], text);
        assert.match(text, /<Code>NoSuchBucket<\/Code>/);
      } finally {
        conn.close();
      }
    });
  } finally {
    s3.destroy();
    wrongSecret.destroy();
    await server.close();
  }
});

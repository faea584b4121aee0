/**
 * Uploads refused before their body is read (unknown bucket, wrong
 * signature, SSE-KMS), and requests answered without reading the body they
 * carry: the client still gets the answer, not a closed or stalled
 * connection, and the connection serves the next request.
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { TestServer } from "./harness.ts";
import { assertS3Error, keysOf, signRequest } from "./_s3_helpers.ts";

const EIGHT_MIB = new Uint8Array(8 * 1024 * 1024).fill(97);

/**
 * Sends `head`, an 8 MiB body, then a second request on one connection, as
 * clients do (the whole body before reading); returns the statuses of the
 * two answers and their text. Fails after 20 s: a server that neither reads
 * the body nor closes stalls both ends.
 */
async function twoRequests(
  port: number,
  head: string,
  next: string,
): Promise<{ statuses: string[]; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 20_000);
  try {
    const writing = (async () => {
      await conn.write(new TextEncoder().encode(head));
      let sent = 0;
      while (sent < EIGHT_MIB.byteLength) sent += await conn.write(EIGHT_MIB.subarray(sent));
      await conn.write(new TextEncoder().encode(next));
    })();
    let text = "";
    const buf = new Uint8Array(65536);
    while ((text.match(/HTTP\/1\.1 /g) ?? []).length < 2 || !/<\/\w+>\s*$/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    await writing;
    return { statuses: [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), text };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

Deno.test("an 8 MiB body left unread, refused or not needed, still gets its answer", async (t) => {
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
      const { statuses, text } = await twoRequests(
        server.apiPort,
        `PUT /no-such-bucket/k HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Content-Length: ${EIGHT_MIB.byteLength}\r\n\r\n`,
        "GET /no-such-bucket HTTP/1.1\r\nHost: x\r\n\r\n",
      );
      assert.deepEqual(statuses, ["404", "404"], text);
      assert.match(text, /<Code>NoSuchBucket<\/Code>/);
    });

    await t.step(
      "a body the request does not need: the answer, then the next request",
      async () => {
        // CreateMultipartUpload reads no body; a client may send one all the same.
        const { url, headers } = await signRequest(server, owner, {
          method: "POST",
          path: "/target/unneeded",
          query: { uploads: "" },
          payloadHash: "UNSIGNED-PAYLOAD",
        });
        const target = new URL(url);
        const head = `POST ${target.pathname}${target.search} HTTP/1.1\r\n` +
          Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("") +
          `Content-Length: ${EIGHT_MIB.byteLength}\r\n\r\n`;
        const { statuses, text } = await twoRequests(
          server.apiPort,
          head,
          "GET /no-such-bucket HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert.deepEqual(statuses, ["200", "404"], text);
        assert.match(text, /<UploadId>/);
      },
    );
  } finally {
    s3.destroy();
    wrongSecret.destroy();
    await server.close();
  }
});

import assert from "node:assert/strict";
import { verifiedBody } from "./verified_body.ts";
import { decodeAwsChunked } from "./aws_chunked_decoder.ts";
import { assertS3Error, bytesOf, readAll } from "./_test_helpers.ts";

const IDLE_MS = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client's body: `pieces` sent `gapMs` apart, then the end, or (stall)
 * nothing more; `cancelled` resolves with the reason the body was cancelled.
 */
function clientBody(pieces: Uint8Array[], gapMs: number, stall: boolean) {
  let cancelled!: (reason: unknown) => void;
  const cancel = new Promise<unknown>((resolve) => cancelled = resolve);
  let sent = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream({
    type: "bytes",
    async pull(controller: ReadableByteStreamController) {
      if (sent === pieces.length) {
        if (stall) {
          // Never answers: a client that stopped sending.
          await new Promise((resolve) => timer = setTimeout(resolve, 60_000));
          return;
        }
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      if (sent > 0) await sleep(gapMs);
      controller.enqueue(pieces[sent++].slice());
    },
    cancel(reason) {
      clearTimeout(timer);
      cancelled(reason);
    },
  });
  return { body, cancel };
}

/** An aws-chunked encoding (unsigned) of `data` as one chunk. */
function awsChunked(data: Uint8Array): Uint8Array {
  return new Uint8Array([
    ...bytesOf(`${data.length.toString(16)}\r\n`),
    ...data,
    ...bytesOf("\r\n0\r\n\r\n"),
  ]);
}

const data = bytesOf("x".repeat(3000));

Deno.test("a client that stops sending its body gets RequestTimeout, and the body is cancelled", async () => {
  for (const byteStream of [true, false]) {
    const { body, cancel } = clientBody([data.subarray(0, 1000)], 0, true);
    const source = byteStream ? body : body.pipeThrough(new TransformStream());
    const started = performance.now();
    await assertS3Error(
      readAll(verifiedBody(source, { contentLength: data.length }, IDLE_MS)),
      "RequestTimeout",
      400,
    );
    assert.ok(performance.now() - started >= IDLE_MS - 5);
    const reason = await cancel;
    assert.ok(reason instanceof Error && /not read from or written to/.test(reason.message));
  }
});

Deno.test("an aws-chunked body the client stops sending gets RequestTimeout", async () => {
  const encoded = awsChunked(data);
  const { body, cancel } = clientBody([encoded.subarray(0, 100)], 0, true);
  const decoded = decodeAwsChunked(body, { trailer: false, idleMs: IDLE_MS });
  await assertS3Error(readAll(decoded.body), "RequestTimeout", 400);
  await cancel;
});

Deno.test("a slow client whose gaps are each under the limit is read to its end", async () => {
  // Five gaps of 2/3 of the limit: the whole body takes more than three limits.
  const pieces = [0, 1, 2, 3, 4, 5].map((i) => data.subarray(i * 500, (i + 1) * 500));
  const { body } = clientBody(pieces, IDLE_MS * 2 / 3, false);
  assert.deepEqual(
    await readAll(verifiedBody(body, { contentLength: data.length }, IDLE_MS)),
    data,
  );
  const chunked = awsChunked(data);
  const slowChunked = clientBody(
    [chunked.subarray(0, 1500), chunked.subarray(1500)],
    IDLE_MS / 2,
    false,
  );
  const decoded = decodeAwsChunked(slowChunked.body, { trailer: false, idleMs: IDLE_MS });
  assert.deepEqual(await readAll(decoded.body), data);
});

Deno.test("time the consumer takes between reads does not count against the client", async () => {
  const pieces = [data.subarray(0, 1000), data.subarray(1000)];
  const { body } = clientBody(pieces, 0, false);
  const reader = verifiedBody(body, { contentLength: data.length }, IDLE_MS).getReader();
  const read: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    read.push(value);
    // A block written to a slow replica before the next read.
    await sleep(IDLE_MS * 2);
  }
  assert.equal(read.reduce((n, c) => n + c.byteLength, 0), data.length);
});

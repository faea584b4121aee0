import assert from "node:assert/strict";
import { sha256Hex } from "../../../util/hash.ts";
import { verifiedBody } from "./verified_body.ts";
import { assertStreamFails, bytesOf, readAll, streamOf } from "./_test_helpers.ts";

const data = bytesOf("The quick brown fox jumps over the lazy dog");

Deno.test("a body matching its hash and length passes through, same chunks", async () => {
  const pieces = [data.subarray(0, 10), data.subarray(10)];
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of pieces) controller.enqueue(p);
      controller.close();
    },
  });
  const reader = verifiedBody(source, { sha256Hex: sha256Hex(data), contentLength: data.length })
    .getReader();
  assert.equal((await reader.read()).value, pieces[0]);
  assert.equal((await reader.read()).value, pieces[1]);
  assert.ok((await reader.read()).done);
});

Deno.test("a body whose SHA-256 differs errors at the end with XAmzContentSHA256Mismatch", async () => {
  const body = verifiedBody(streamOf(data, [5]), {
    sha256Hex: sha256Hex("other"),
    contentLength: data.length,
  });
  assert.equal(await assertStreamFails(body, "XAmzContentSHA256Mismatch"), data.length);
});

Deno.test("an unsigned body is only counted", async () => {
  assert.deepEqual(await readAll(verifiedBody(streamOf(data, [3]), {})), data);
  assert.deepEqual(
    await readAll(verifiedBody(streamOf(data), { contentLength: data.length })),
    data,
  );
});

Deno.test("a body shorter than Content-Length errors with IncompleteBody", async () => {
  await assertStreamFails(
    verifiedBody(streamOf(data), { contentLength: data.length + 1 }),
    "IncompleteBody",
  );
});

Deno.test("a failing source (client gone) errors with IncompleteBody", async () => {
  let first = true;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (first) {
        first = false;
        controller.enqueue(data);
      } else {
        controller.error(new TypeError("connection reset"));
      }
    },
  });
  await assertStreamFails(verifiedBody(source, { contentLength: 1000 }), "IncompleteBody");
});

Deno.test("cancelling the verified body cancels the source", async () => {
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(data);
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const body = verifiedBody(source, {});
  const reader = body.getReader();
  await reader.read();
  await reader.cancel("stop");
  assert.equal(cancelled, "stop");
});

import assert from "node:assert/strict";
import { sha256Hex } from "../../../util/hash.ts";
import { verifiedBody } from "./verified_body.ts";
import { assertStreamFails, bytesOf, readAll, streamOf } from "./_test_helpers.ts";
import { BYOB_MIN_BYTES } from "../../../util/byob_reader.ts";

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

/** A byte stream (as a request body is) of `data` in pieces cut at `cuts`. */
function byteStreamOf(bytes: Uint8Array, cuts: number[] = []): ReadableStream<Uint8Array> {
  const bounds = [0, ...cuts, bytes.length];
  let i = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (i + 1 >= bounds.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      controller.enqueue(bytes.slice(bounds[i], bounds[i + 1]));
      i++;
    },
  });
}

Deno.test("a byte-stream body fills a BYOB reader's buffers and is checked the same", async () => {
  const large = Uint8Array.from({ length: BYOB_MIN_BYTES + 100 }, (_, i) => i % 253);
  const body = verifiedBody(byteStreamOf(large, [7, 20, 40_000]), {
    sha256Hex: sha256Hex(large),
    contentLength: large.length,
  });
  const reader = body.getReader({ mode: "byob" });
  let buffer = new Uint8Array(large.length + 1);
  let filled = 0;
  for (;;) {
    const { done, value } = await reader.read(buffer.subarray(filled));
    buffer = new Uint8Array(value!.buffer);
    if (done) break;
    filled += value!.byteLength;
  }
  assert.deepEqual(buffer.subarray(0, filled), large);
  // A small body is passed on in chunks, whatever its source.
  assert.throws(
    () =>
      verifiedBody(byteStreamOf(data), { contentLength: data.length }).getReader({ mode: "byob" }),
    /non-byte stream/,
  );

  assert.deepEqual(await readAll(verifiedBody(byteStreamOf(data, [3]), {})), data);
  await assertStreamFails(
    verifiedBody(byteStreamOf(data, [5]), { sha256Hex: sha256Hex("other") }),
    "XAmzContentSHA256Mismatch",
  );
  await assertStreamFails(
    verifiedBody(byteStreamOf(data), { contentLength: data.length + 1 }),
    "IncompleteBody",
  );
});

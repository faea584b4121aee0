import assert from "node:assert/strict";
import { drainUnreadBody } from "./unread_body.ts";
import { UNREAD_BODY_DRAIN_MAX_BYTES } from "../../util/limits.ts";

/** A body of `chunks` chunks of 1 MiB; `pulled` counts the chunks read. */
function body(chunks: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n === chunks) return controller.close();
      n++;
      controller.enqueue(new Uint8Array(1 << 20));
    },
  });
  return { stream, pulled: () => n };
}

const MIB = 1 << 20;

Deno.test("a refused body is read to its end when within the bound", async () => {
  const { stream, pulled } = body(3);
  assert.equal(
    await drainUnreadBody(stream, new Headers({ "content-length": String(3 * MIB) })),
    true,
  );
  assert.equal(pulled(), 3);
  assert.equal(await drainUnreadBody(null, new Headers()), true, "no body: nothing to read");
  // A request without a length or a transfer encoding has no body (Deno.serve gives a DELETE's
  // a stream), nor has one of length 0: their stream is not read.
  for (const headers of [new Headers(), new Headers({ "content-length": "0" })]) {
    const none = body(1);
    assert.equal(await drainUnreadBody(none.stream, headers), true);
    assert.equal(none.stream.locked, false);
    assert.equal((await new Response(none.stream).bytes()).byteLength, MIB, "left whole");
  }
});

Deno.test("a refused body over the bound is not read: the connection is to close", async () => {
  const announced = body(100);
  const tooLarge = String(UNREAD_BODY_DRAIN_MAX_BYTES + 1);
  assert.equal(
    await drainUnreadBody(announced.stream, new Headers({ "content-length": tooLarge })),
    false,
  );
  assert.equal(announced.pulled(), 0, "a body announced too large is not read at all");

  // Sent without a length (chunked): read up to the bound, then given up.
  const chunks = UNREAD_BODY_DRAIN_MAX_BYTES / MIB + 10;
  const unannounced = body(chunks);
  const chunked = new Headers({ "transfer-encoding": "chunked" });
  assert.equal(await drainUnreadBody(unannounced.stream, chunked), false);
  assert.ok(unannounced.pulled() < chunks, "reading stopped at the bound");
});

Deno.test("a body someone else is reading is left to them", async () => {
  const { stream } = body(1);
  const reader = stream.getReader();
  assert.equal(await drainUnreadBody(stream, new Headers()), false);
  reader.releaseLock();
});

Deno.test("a refused body that stalls is given up when its time is out: the connection is to close", async () => {
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(1000)); // then nothing more, and no end
    },
  });
  assert.equal(
    await drainUnreadBody(stalled, new Headers({ "content-length": "5000" }), 50),
    false,
  );
});

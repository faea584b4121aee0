import assert from "node:assert/strict";
import { BYOB_MIN_BYTES, byobReader } from "./byob_reader.ts";

const byteStream = () => new ReadableStream({ type: "bytes", pull: (c) => c.close() });
const plainStream = () => new ReadableStream<Uint8Array>({ pull: (c) => c.close() });

Deno.test("byobReader reads byte streams of a large known size, and leaves others unlocked", () => {
  assert.ok(byobReader(byteStream(), BYOB_MIN_BYTES) instanceof ReadableStreamBYOBReader);
  const others = [[byteStream(), 4096], [byteStream(), undefined], [plainStream(), BYOB_MIN_BYTES]];
  for (const [stream, size] of others as [ReadableStream<Uint8Array>, number | undefined][]) {
    assert.equal(byobReader(stream, size), undefined);
    assert.equal(stream.locked, false);
  }
});

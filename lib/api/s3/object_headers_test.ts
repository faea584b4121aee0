import assert from "node:assert/strict";
import { headersToStore } from "./object_headers.ts";

Deno.test("headersToStore drops aws-chunked from Content-Encoding and keeps the rest as S3 lists it", () => {
  const stored = (encoding: string) =>
    headersToStore(new Headers({ "content-encoding": encoding })).find(([n]) =>
      n === "content-encoding"
    )?.[1];
  assert.equal(stored("aws-chunked,deflate,gzip"), "deflate, gzip");
  assert.equal(stored("deflate, aws-chunked, gzip"), "deflate, gzip");
  assert.equal(stored("gzip"), "gzip");
  assert.equal(stored("aws-chunked"), undefined, "nothing is left to store");
});

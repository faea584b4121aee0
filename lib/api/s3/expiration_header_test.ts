import assert from "node:assert/strict";
import type { Bucket } from "../../model/bucket_table.ts";
import { expirationHeader } from "./expiration_header.ts";

const bucketWith = (id: string | undefined) =>
  ({
    lifecycle: {
      t: 1,
      v: [{ id, enabled: true, prefix: "", expirationDateMs: Date.UTC(2030, 0, 1) }],
    },
  }) as unknown as Bucket;
const meta = { size: 1, etag: "e", headers: [] };

Deno.test("x-amz-expiration names the rule in a form a header can hold", () => {
  assert.deepEqual(expirationHeader(bucketWith('über "old"'), "k", 0, meta), {
    "x-amz-expiration":
      'expiry-date="Tue, 01 Jan 2030 00:00:00 GMT", rule-id="%C3%BCber %22old%22"',
  });
  // A header with it is accepted.
  new Headers(expirationHeader(bucketWith("line\nbreak%"), "k", 0, meta));
  assert.deepEqual(expirationHeader(bucketWith(undefined), "k", 0, meta), {
    "x-amz-expiration": 'expiry-date="Tue, 01 Jan 2030 00:00:00 GMT"',
  });
  assert.deepEqual(expirationHeader({} as Bucket, "k", 0, meta), {});
});

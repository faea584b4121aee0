import assert from "node:assert/strict";
import { toS3Error } from "./s3_api.ts";
import { ConditionalConflictError } from "../../model/objects.ts";
import { QuorumError } from "../../rpc/quorum.ts";

Deno.test("a conditional write that met a newer write is 409 ConditionalRequestConflict, as in S3", () => {
  const error = toS3Error(new ConditionalConflictError("photos/a.jpg"), "req-1");
  assert.equal(error.code, "ConditionalRequestConflict");
  assert.equal(error.status, 409);
  assert.match(error.message, /Another write of "photos\/a.jpg" landed .*: retry the request/);
  // Not the 503 of a write that lost its locks, whose outcome is unknown.
  const lost = toS3Error(new QuorumError("keep the key's lock", 2, 1, []), "req-2");
  assert.equal(lost.status, 503);
});

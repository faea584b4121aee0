import assert from "node:assert/strict";
import { AbsentKeys } from "./absent_keys.ts";

Deno.test("AbsentKeys records reads that found nothing and deletions; writes clear them", () => {
  const absent = new AbsentKeys(3);
  absent.beginRead("a")(false);
  assert.equal(absent.has("a"), true);
  absent.beginRead("b")(true);
  assert.equal(absent.has("b"), false, "a key found is not recorded");
  absent.beginRead("c")(undefined);
  assert.equal(absent.has("c"), false, "a failed read records nothing");
  absent.written("a", true);
  assert.equal(absent.has("a"), false, "a write makes the key present");
  absent.written("d", false);
  assert.equal(absent.has("d"), true, "a deletion makes it absent");
  for (const k of ["e", "f", "g"]) absent.written(k, false);
  assert.equal(absent.has("d"), false, "the oldest went out");
  assert.equal(absent.has("g"), true);
});

Deno.test("AbsentKeys: a read overtaken by a commit records nothing", () => {
  const absent = new AbsentKeys(10);
  const found = absent.beginRead("k");
  absent.written("k", true); // the commit lands while the read is in flight
  found(false); // the read saw the older state
  assert.equal(absent.has("k"), false);
});

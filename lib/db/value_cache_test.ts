import assert from "node:assert/strict";
import { ValueCache } from "./value_cache.ts";

const bytes = (n: number) => new Uint8Array(n);

Deno.test("ValueCache keeps written values and absences, least recently used out", () => {
  const cache = new ValueCache(64 * 1024 * 1024);
  assert.equal(cache.get("a"), undefined);
  cache.written("a", bytes(10));
  cache.written("gone", null);
  assert.equal(cache.get("a")!.byteLength, 10);
  assert.equal(cache.get("gone"), null);

  const small = new ValueCache(64 * 1000); // values up to ~1,000 bytes are kept
  for (let i = 0; i < 200; i++) small.written(`k${i}`, bytes(500));
  assert.equal(small.get("k0"), undefined, "the oldest went out");
  assert.ok(small.get("k199"), "the newest stayed");
  small.written("big", bytes(5000));
  assert.equal(small.get("big"), undefined, "a value over a 64th of the budget is not kept");
});

Deno.test("ValueCache: reads record absences only, and not when overtaken by a commit", () => {
  const cache = new ValueCache(1024 * 1024);
  const fillAbsent = cache.beginRead("y");
  fillAbsent(null);
  assert.equal(cache.get("y"), null, "a read that found nothing records the absence");

  const fillValue = cache.beginRead("v");
  fillValue(bytes(3));
  assert.equal(cache.get("v"), undefined, "a read of a value records nothing");

  const fillOld = cache.beginRead("k");
  cache.written("k", bytes(2)); // the commit lands while the read is in flight
  fillOld(null); // the read returns the older state
  assert.equal(cache.get("k")!.byteLength, 2);

  const fillFailed = cache.beginRead("x");
  fillFailed(undefined);
  assert.equal(cache.get("x"), undefined, "a failed read records nothing");
});

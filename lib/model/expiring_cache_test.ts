import assert from "node:assert/strict";
import { ExpiringCache } from "./expiring_cache.ts";

function counted(value: string | undefined) {
  const loads = { count: 0 };
  const load = () => {
    loads.count++;
    return Promise.resolve(value);
  };
  return { loads, load };
}

Deno.test("ExpiringCache reuses a value until it expires, then loads it again", async () => {
  let now = 1_000;
  const cache = new ExpiringCache<string>(() => now, 2_000, 10);
  const { loads, load } = counted("v");
  assert.equal(await cache.get("k", load), "v");
  now += 1_999;
  assert.equal(await cache.get("k", load), "v");
  assert.equal(loads.count, 1);
  now += 1;
  assert.equal(await cache.get("k", load), "v");
  assert.equal(loads.count, 2);
});

Deno.test("ExpiringCache keeps no undefined value", async () => {
  const cache = new ExpiringCache<string>(() => 0, 2_000, 10);
  const { loads, load } = counted(undefined);
  assert.equal(await cache.get("k", load), undefined);
  assert.equal(await cache.get("k", load), undefined);
  assert.equal(loads.count, 2);
});

Deno.test("ExpiringCache.clear drops what it holds and voids the loads in flight", async () => {
  const cache = new ExpiringCache<string>(() => 0, 2_000, 10);
  await cache.get("held", () => Promise.resolve("old"));
  // A load that read the value from before a change, which lands while it runs.
  let finish!: (v: string) => void;
  const inFlight = cache.get("loading", () => new Promise<string>((r) => finish = r));
  cache.clear();
  finish("read before the change");
  assert.equal(await inFlight, "read before the change", "its caller still gets what it read");
  assert.equal(await cache.get("loading", () => Promise.resolve("new")), "new");
  assert.equal(await cache.get("held", () => Promise.resolve("new")), "new");
});

Deno.test("ExpiringCache empties itself when full rather than grow", async () => {
  const cache = new ExpiringCache<string>(() => 0, 2_000, 2);
  await cache.get("a", () => Promise.resolve("a"));
  await cache.get("b", () => Promise.resolve("b"));
  await cache.get("c", () => Promise.resolve("c"));
  const { loads, load } = counted("a again");
  assert.equal(await cache.get("a", load), "a again");
  assert.equal(loads.count, 1);
});

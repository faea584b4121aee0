import assert from "node:assert/strict";
import { syncedEnough } from "./layout_sync.ts";

// Partition 0: version 1 on a, b, c; version 2 (b replaced by d) on a, c, d.
const layout = { versions: [{ partitions: [["a", "b", "c"]] }, { partitions: [["a", "c", "d"]] }] };
const majority = (n: number) => Math.floor(n / 2) + 1;
/** A pass over partition 0 that could not sync with `unsynced`. */
const pass = (...unsynced: string[]) => ({
  partitions: 1,
  partitionsSynced: unsynced.length === 0 ? 1 : 0,
  unsynced: unsynced.map((node) => ({ partition: 0, node })),
});

Deno.test("layout sync: a pass that reached every replica is enough", () => {
  assert.ok(syncedEnough(layout, "d", pass(), majority));
});

Deno.test("layout sync: a replica down for good does not hold up a new node, while a quorum was reached", () => {
  // d synced with a and c: 2 of version 1's 3, which meets every write quorum of 2.
  assert.ok(syncedEnough(layout, "d", pass("b"), majority));
  // a counts itself: a and c are a read quorum of both versions.
  assert.ok(syncedEnough(layout, "a", pass("b"), majority));
  // Reaching only c leaves writes acknowledged by a and b unseen.
  assert.equal(
    syncedEnough(layout, "d", pass("b", "a"), majority),
    false,
  );
});

Deno.test("layout sync: with writes to a single replica (dangerous mode), every replica must be reached", () => {
  assert.equal(syncedEnough(layout, "d", pass("b"), () => 1), false);
  assert.ok(syncedEnough(layout, "d", pass(), () => 1));
});

Deno.test("layout sync: a pass cut short (the node stopping) is not enough", () => {
  assert.equal(
    syncedEnough(layout, "d", { partitions: 2, partitionsSynced: 1, unsynced: [] }, majority),
    false,
  );
});

/**
 * A retention (object lock) ends by the clock of the node a deletion reaches:
 * one whose clock is far ahead of its peers' keeps every retention anyway.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import { ObjectLockedError } from "./object_lock.ts";
import { deleteVersion, putObject } from "./objects.ts";
import type { Retention } from "./object_table.ts";
import { versionIdOf } from "./object_table.ts";
import { Store } from "./store.ts";

const DAY_MS = 24 * 3600 * 1000;

/** This node, with peers whose clocks are `offsetsMs` from its own. */
class PeersWithClocks extends LocalReplication {
  constructor(readonly offsetsMs: number[]) {
    super();
  }
  override peerClockOffsetsMs(): number[] {
    return this.offsetsMs;
  }
}

/** Writes a version retained for a day, then deletes it with the clock two days on. */
async function deleteTwoDaysOn(offsetsMs: number[], retention: Retention["mode"]) {
  const dir = await Deno.makeTempDir({ prefix: "remise-retention-clock-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const start = Date.UTC(2026, 10, 1);
    const clock = { ms: start };
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: 1024,
      replication: new PeersWithClocks(offsetsMs),
      nowMs: () => clock.ms,
    });
    const { version } = await putObject(store, "bucket-id", "k", new Blob(["kept"]).stream(), {
      headers: [],
      maxSize: 1 << 20,
      versioning: "Enabled",
      lock: { retention: { mode: retention, untilMs: start + DAY_MS } },
    });
    clock.ms = start + 2 * DAY_MS;
    return await deleteVersion(store, "bucket-id", "k", versionIdOf(version)).then(
      (deleted) => deleted !== undefined,
      (e) => e,
    );
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a retention ends when the clock says so, unless that clock is far from its peers'", async () => {
  assert.equal(await deleteTwoDaysOn([0, 40_000], "COMPLIANCE"), true, "clocks agree: it ended");
  assert.equal(await deleteTwoDaysOn([-1_000], "GOVERNANCE"), true);
  // The peers' clocks say two days less: to them, the retention has a day to go.
  for (const mode of ["COMPLIANCE", "GOVERNANCE"] as const) {
    const refused = await deleteTwoDaysOn([-2 * DAY_MS, -2 * DAY_MS], mode);
    assert.ok(refused instanceof ObjectLockedError, String(refused));
    assert.match(
      refused.message,
      new RegExp(
        `retained in ${mode} mode until 2026-11-02.*, and this node's clock is 2 days ahead`,
      ),
    );
  }
});

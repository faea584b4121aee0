/**
 * A conditional write confirms its key's locks before it writes and once it
 * wrote (see KeyCommitLocks): one whose locks ended meanwhile is not
 * acknowledged, since another conditional write may have come between; nor
 * is one that meets a version written after its check.
 */
import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { QuorumError } from "../rpc/quorum.ts";
import type { LocalReplication } from "../rpc/replication.ts";
import { OneReplicaAhead, Twins } from "./_test_replications.ts";
import type { HeldKeyLock } from "./key_commit_locks.ts";
import { ConditionalConflictError, getCurrent, putObject } from "./objects.ts";
import type { ObjectVersion } from "./object_table.ts";
import { Store } from "./store.ts";

/** A store with replicas (the replicated paths, Twins by default) whose key locks the test may replace. */
async function withStore(
  fn: (store: Store) => Promise<void>,
  replication: LocalReplication = new Twins(),
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-conditional-commit-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    await fn(
      new Store(db, await BlockStore.open(`${dir}/data`), {
        blockSize: 1024,
        replication,
      }),
    );
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `text` as object "k"; a `precondition` makes the write conditional. */
function put(store: Store, text: string, precondition?: () => void) {
  return putObject(store, "bucket-id", "k", new Blob([text]).stream(), {
    headers: [],
    maxSize: 1 << 20,
    precondition,
  });
}

/** A copy of "k"'s current version, as another write timestamped a minute ahead would make. */
async function versionAhead(store: Store): Promise<ObjectVersion> {
  const version = { ...(await getCurrent(store, "bucket-id", "k"))!.version };
  version.uuid = crypto.randomUUID();
  version.timestampMs = Date.now() + 60_000;
  return version;
}

Deno.test("a conditional write whose locks ended while it wrote fails (503), its data kept", () =>
  withStore(async (store) => {
    // The locks hold at the check, and have ended once the write landed (this node stalled).
    const confirmed: boolean[] = [];
    const lock: HeldKeyLock = {
      confirm: (written = false) => {
        confirmed.push(written);
        return written
          ? Promise.reject(new QuorumError("keep the key's lock", 2, 1, []))
          : Promise.resolve();
      },
      release: () => {},
    };
    Object.assign(store.keyCommits, { acquire: () => Promise.resolve(lock) });
    const body = crypto.getRandomValues(new Uint8Array(3000));
    await assert.rejects(
      putObject(store, "bucket-id", "k", new Blob([body]).stream(), {
        headers: [],
        maxSize: 1 << 20,
        precondition: () => {},
      }),
      QuorumError,
    );
    assert.deepEqual(confirmed, [false, true], "confirmed before the write, and after it");
    // It may have landed, as here: its data stays, for the journal's settling to decide.
    const current = await getCurrent(store, "bucket-id", "k");
    assert.equal(current?.data.meta.size, 3000);
    await store.releases.settled();
    assert.equal(current?.data.type, "parts");
    if (current?.data.type === "parts") {
      let live = 0;
      for await (const b of store.versions.scan(current.data.parts[0].dataId)) {
        if (!b.deleted) live++;
      }
      assert.equal(live, 3, "its blocks are not released");
    }
  }));

Deno.test("a conditional write that meets a version written after its check does not replace it (409)", () =>
  withStore(async (store) => {
    await put(store, "base");
    // Another node's write lands between this write's check and its write, with a
    // timestamp ahead of this node's clock (as its clock may be).
    const between = await versionAhead(store);
    const lock: HeldKeyLock = {
      confirm: async (written = false) => {
        if (!written) {
          await store.objects.insert({ bucketId: "bucket-id", key: "k", versions: [between] });
        }
      },
      release: () => {},
    };
    Object.assign(store.keyCommits, { acquire: () => Promise.resolve(lock) });
    await assert.rejects(put(store, "conditional", () => {}), ConditionalConflictError);
    assert.equal((await getCurrent(store, "bucket-id", "k"))?.version.uuid, between.uuid);
  }));

Deno.test("a conditional write that meets a version on one replica alone spreads it, so its retry sees it", async () => {
  const replication = new OneReplicaAhead();
  await withStore(async (store) => {
    await put(store, "base");
    // A write through a node whose clock is ahead failed after it reached replica "a" alone.
    const ahead = await versionAhead(store);
    replication.aheadOnA = { bucketId: "bucket-id", key: "k", versions: [ahead] };
    assert.notEqual((await getCurrent(store, "bucket-id", "k"))?.version.uuid, ahead.uuid);

    await assert.rejects(put(store, "conditional", () => {}), ConditionalConflictError);
    // Spread before the 409: quorum reads (this node and "b") see it now.
    assert.equal((await getCurrent(store, "bucket-id", "k"))?.version.uuid, ahead.uuid);
    // The retry checks against it, and is written after it.
    const retried = await put(store, "retried", () => {});
    assert.equal((await getCurrent(store, "bucket-id", "k"))?.version.uuid, retried.version.uuid);
  }, replication);
});

Deno.test("a conditional write that meets a newer version answers 409 though a replica does not answer its spreading", async () => {
  const replication = new OneReplicaAhead();
  await withStore(async (store) => {
    await put(store, "base");
    replication.aheadOnA = {
      bucketId: "bucket-id",
      key: "k",
      versions: [await versionAhead(store)],
    };
    replication.aHangs = true;
    // The spreading waits for a bounded time (CONFLICT_SPREAD_WAIT_MS), then the 409 goes out.
    await assert.rejects(put(store, "conditional", () => {}), ConditionalConflictError);
  }, replication);
});

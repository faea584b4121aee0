import assert from "node:assert/strict";
import { sha256Hasher, toHex } from "../util/hash.ts";
import { PINNED_VALUE } from "../util/_pinned_value.ts";
import { DbTransaction } from "./transaction.ts";
import {
  DIGEST_BYTES,
  itemHash,
  LEAF_COUNT,
  type LeafItem,
  leafOf,
  MERKLE_FORMAT_VERSION,
} from "./merkle.ts";
import { type Op, partitionOf, TestReplica, withReplicas } from "./_merkle_test_replica.ts";

const TABLE = "object";
const PK = "bucket-1";
const PARTITION = partitionOf(PK);

function stored(sk: string, value: string) {
  return { v: 1, entry: { pk: PK, sk, t: 1, value, tags: [] as string[] } };
}

async function items(r: TestReplica, leaf: number): Promise<LeafItem[]> {
  const out: LeafItem[] = [];
  for await (const item of r.index.leafItems(TABLE, PARTITION, leaf)) out.push(item);
  return out;
}

function xorAll(hashes: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(DIGEST_BYTES);
  for (const h of hashes) for (let i = 0; i < DIGEST_BYTES; i++) out[i] ^= h[i];
  return out;
}

/** Checks every leaf digest against the XOR of the items it lists, and the items against `expected`. */
async function assertConsistent(r: TestReplica, expected: Map<string, unknown>): Promise<void> {
  const leaves = await r.index.leafDigests(TABLE, PARTITION);
  assert.equal(leaves.length, LEAF_COUNT);
  // The digests the index knows in memory are those stored.
  const stored: Uint8Array[] = Array.from(
    { length: LEAF_COUNT },
    () => new Uint8Array(DIGEST_BYTES),
  );
  for await (const { key, value } of r.db.list<Uint8Array>({ prefix: ["md", TABLE, PARTITION] })) {
    stored[key[3] as number] = value;
  }
  assert.deepEqual(leaves, stored, "leaf digests as stored");
  let listed = 0;
  for (let leaf = 0; leaf < LEAF_COUNT; leaf++) {
    const leafItems = await items(r, leaf);
    listed += leafItems.length;
    assert.deepEqual(leaves[leaf], xorAll(leafItems.map((i) => i.hash)), `leaf ${leaf}`);
    for (const { pk, sk, hash } of leafItems) {
      assert.equal(leafOf(pk, sk), leaf);
      assert.ok(expected.has(sk), `item ${sk} is expected`);
      assert.deepEqual(hash, itemHash(pk, sk, expected.get(sk)));
    }
  }
  assert.equal(listed, expected.size);
  const hasher = sha256Hasher();
  for (const leaf of leaves) hasher.update(leaf);
  assert.deepEqual(await r.index.partitionDigest(TABLE, PARTITION), hasher.digest());
}

async function applyAll(r: TestReplica, ops: Op[], batch = 50): Promise<void> {
  for (let i = 0; i < ops.length; i += batch) await r.apply(TABLE, ops.slice(i, i + batch));
}

Deno.test("MerkleIndex tracks inserts, updates and deletes, and matches a full rebuild", () =>
  withReplicas(2, async (a, fresh) => {
    const expected = new Map<string, unknown>();
    const ops: Op[] = [];
    for (let i = 0; i < 400; i++) {
      const sk = `key-${i}`;
      ops.push({ pk: PK, sk, stored: stored(sk, "v1") });
    }
    // Updates and deletes in the same transactions as other writes to the same leaves.
    for (let i = 0; i < 400; i += 3) {
      ops.push({ pk: PK, sk: `key-${i}`, stored: stored(`key-${i}`, "v2") });
    }
    for (let i = 0; i < 400; i += 7) ops.push({ pk: PK, sk: `key-${i}`, stored: undefined });
    for (const op of ops) {
      if (op.stored === undefined) expected.delete(op.sk);
      else expected.set(op.sk, op.stored);
    }
    await applyAll(a, ops);
    await assertConsistent(a, expected);

    // A rebuild of the same data changes nothing.
    assert.equal(await a.index.isBuilt(TABLE, PARTITION), false);
    const digestBefore = await a.index.partitionDigest(TABLE, PARTITION);
    const again = await a.index.rebuild(TABLE, PARTITION, a.entries(TABLE, PARTITION));
    assert.deepEqual(again, { items: expected.size, changed: 0, leavesChanged: 0 });
    assert.equal(await a.index.isBuilt(TABLE, PARTITION), true);
    assert.deepEqual(await a.index.partitionDigest(TABLE, PARTITION), digestBefore);

    // A rebuild from scratch on another store gives the same digests.
    const entries = [...expected].map(([sk, value]) => ({ pk: PK, sk, entry: value }));
    const built = await fresh.index.rebuild(
      TABLE,
      PARTITION,
      (async function* () {
        yield* entries;
      })(),
    );
    const nonEmptyLeaves = (await a.index.leafDigests(TABLE, PARTITION))
      .filter((d) => d.some((b) => b !== 0)).length;
    assert.deepEqual(built, {
      items: expected.size,
      changed: expected.size,
      leavesChanged: nonEmptyLeaves,
    });
    assert.deepEqual(
      await fresh.index.leafDigests(TABLE, PARTITION),
      await a.index.leafDigests(TABLE, PARTITION),
    );
    assert.deepEqual(await fresh.index.partitionDigest(TABLE, PARTITION), digestBefore);
    await assertConsistent(fresh, expected);
  }));

Deno.test("MerkleIndex digests do not depend on the order of updates", () =>
  withReplicas(2, async (a, b) => {
    const final: Op[] = Array.from({ length: 300 }, (_, i) => ({
      pk: PK,
      sk: `k${i}`,
      stored: stored(`k${i}`, `value ${i}`),
    }));
    await applyAll(a, final, 40);
    // b: reverse order, through intermediate values, with an item added then removed.
    const reversed = [...final].reverse();
    await applyAll(b, reversed.map((op) => ({ ...op, stored: stored(op.sk, "draft") })), 17);
    await b.apply(TABLE, [{ pk: PK, sk: "gone", stored: stored("gone", "x") }]);
    await applyAll(b, reversed, 23);
    await b.apply(TABLE, [{ pk: PK, sk: "gone", stored: undefined }]);
    assert.deepEqual(
      await b.index.leafDigests(TABLE, PARTITION),
      await a.index.leafDigests(TABLE, PARTITION),
    );
    assert.deepEqual(
      await b.index.partitionDigest(TABLE, PARTITION),
      await a.index.partitionDigest(TABLE, PARTITION),
    );
    // Key order inside an entry does not matter either (stableString).
    assert.deepEqual(itemHash("p", "s", { a: 1, b: [2] }), itemHash("p", "s", { b: [2], a: 1 }));
    assert.notDeepEqual(itemHash("p", "s", { a: 1 }), itemHash("p", "s", { a: 2 }));
    assert.notDeepEqual(itemHash("p\u0000s", "", 1), itemHash("p", "s", 1));
  }));

Deno.test("itemHash gives what earlier versions gave (replicas of both compare them)", () => {
  assert.equal(
    toHex(itemHash("bucket-é", "photos/été", PINNED_VALUE)),
    "1933b34b444cb8c2a8e80185b286ec12222634209b063835cd5eed2442b2e35a",
  );
});

Deno.test("MerkleIndex loses no update when parallel transactions on one leaf hold the lock keys", () =>
  withReplicas(1, async (a) => {
    const leaf = leafOf(PK, "c0");
    const sks: string[] = [];
    for (let i = 0; sks.length < 120; i++) if (leafOf(PK, `c${i}`) === leaf) sks.push(`c${i}`);
    const expected = new Map<string, unknown>();
    const writes: Promise<void>[] = [];
    for (const [i, sk] of sks.entries()) {
      const value = stored(sk, `v${i}`);
      expected.set(sk, value);
      writes.push(a.apply(TABLE, [{ pk: PK, sk, stored: value }]));
    }
    await Promise.all(writes);
    // Then concurrent updates and deletes of the same items.
    const more: Promise<void>[] = [];
    for (const [i, sk] of sks.entries()) {
      if (i % 2 === 0) {
        expected.delete(sk);
        more.push(a.apply(TABLE, [{ pk: PK, sk, stored: undefined }]));
      } else {
        const value = stored(sk, `w${i}`);
        expected.set(sk, value);
        more.push(a.apply(TABLE, [{ pk: PK, sk, stored: value }]));
      }
    }
    await Promise.all(more);
    assert.equal((await items(a, leaf)).length, sks.length / 2);
    await assertConsistent(a, expected);
    const check = await a.index.rebuild(TABLE, PARTITION, a.entries(TABLE, PARTITION));
    assert.deepEqual(check, { items: sks.length / 2, changed: 0, leavesChanged: 0 });
    assert.equal(a.mutex.size, 0, "every lock was released");
  }));

Deno.test("MerkleIndex keeps the leaf digests it knows equal to the stored ones: across a failed commit, a listing during writes and a rebuild", () =>
  withReplicas(1, async (a) => {
    const entry = (sk: string, value: string) => ({ pk: PK, sk, t: 1, value, tags: [] });
    const expected = new Map<string, unknown>();
    // Values only grow, so that each merge makes the value given (the greater wins).
    const merge = async (sk: string, value: string) => {
      await a.merge(TABLE, [entry(sk, value)]);
      expected.set(sk, { v: 1, entry: entry(sk, value) });
    };
    for (let i = 0; i < 40; i++) await merge(`k${i}`, "1");
    await assertConsistent(a, expected);

    // A commit that fails leaves the stored digest as it was: the next write of the leaf sees it.
    const commit = a.db.commit.bind(a.db);
    a.db.commit = () => Promise.reject(new Error("disk full"));
    await assert.rejects(() => a.merge(TABLE, [entry("k1", "2")]), /disk full/);
    a.db.commit = commit;
    await merge("k1", "3");
    await assertConsistent(a, expected);

    // A rebuild rewrites leaf keys behind the index's back: what it knew is dropped.
    for await (const { key } of a.db.list({ prefix: ["md", TABLE, PARTITION] })) {
      await a.db.commit([{ type: "delete", key }]);
    }
    const rebuilt = await a.index.rebuild(TABLE, PARTITION, a.entries(TABLE, PARTITION));
    assert.ok(rebuilt.leavesChanged > 0);
    await merge("k2", "5");

    // A listing that read the leaves before a write committed is not kept.
    const list = a.db.list.bind(a.db);
    let read!: () => void;
    const wasRead = new Promise<void>((resolve) => read = resolve);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => open = resolve);
    a.db.list = async function* <T>(...args: Parameters<typeof list>) {
      const entries = [];
      for await (const e of list<T>(...args)) entries.push(e);
      read();
      await gate;
      yield* entries;
    };
    const early = a.index.leafDigests(TABLE, PARTITION);
    await wasRead;
    a.db.list = list;
    await merge("k3", "6");
    open();
    await early;
    await assertConsistent(a, expected);

    // A listing that writes overlap is not taken as the partition's digests.
    const writes: Promise<void>[] = [];
    const listings: Promise<Uint8Array[]>[] = [];
    for (let i = 0; i < 40; i++) {
      listings.push(a.index.leafDigests(TABLE, PARTITION));
      writes.push(merge(`k${i}`, "9"), merge(`n${i}`, "1"));
    }
    await Promise.all([...writes, ...listings]);
    await assertConsistent(a, expected);
  }));

Deno.test("MerkleIndex.rebuild repairs a stale index and deletes stale item keys", () =>
  withReplicas(2, async (a, reference) => {
    const ops: Op[] = Array.from({ length: 200 }, (_, i) => ({
      pk: PK,
      sk: `r${i}`,
      stored: stored(`r${i}`, "v"),
    }));
    await applyAll(a, ops);
    // Damage: entries changed or removed behind the index's back, and index keys of nothing.
    await a.db.commit([
      { type: "delete", key: ["t", TABLE, PARTITION, PK, "r1"] },
      { type: "set", key: ["t", TABLE, PARTITION, PK, "r2"], value: stored("r2", "other") },
      { type: "set", key: ["t", TABLE, PARTITION, PK, "new"], value: stored("new", "n") },
      { type: "set", key: ["m", TABLE, PARTITION, 7, PK, "ghost"], value: new Uint8Array(32) },
      {
        type: "set",
        key: ["m", TABLE, PARTITION, leafOf(PK, "r3"), "x", "y"],
        value: new Uint8Array(32),
      },
    ]);
    const result = await a.index.rebuild(TABLE, PARTITION, a.entries(TABLE, PARTITION));
    const damagedLeaves = new Set([leafOf(PK, "r1"), leafOf(PK, "r2"), leafOf(PK, "new")]);
    assert.deepEqual(result, { items: 200, changed: 5, leavesChanged: damagedLeaves.size });
    const expected = new Map<string, unknown>(ops.map((op) => [op.sk, op.stored]));
    expected.delete("r1");
    expected.set("r2", stored("r2", "other"));
    expected.set("new", stored("new", "n"));
    await assertConsistent(a, expected);
    await applyAll(reference, [...expected].map(([sk, value]) => ({ pk: PK, sk, stored: value })));
    assert.deepEqual(
      await a.index.partitionDigest(TABLE, PARTITION),
      await reference.index.partitionDigest(TABLE, PARTITION),
    );
    assert.deepEqual(await a.db.get(["mv", TABLE, PARTITION]), { v: MERKLE_FORMAT_VERSION });

    // An empty rebuild clears the partition's index.
    await a.index.rebuild(TABLE, PARTITION, (async function* () {})());
    const empty = await reference.index.partitionDigest(TABLE, 0);
    assert.deepEqual(await a.index.partitionDigest(TABLE, PARTITION), empty);
    let left = 0;
    for await (const _ of a.db.list({ prefix: ["m", TABLE, PARTITION] })) left++;
    for await (const _ of a.db.list({ prefix: ["md", TABLE, PARTITION] })) left++;
    assert.equal(left, 0);
  }));

Deno.test("MerkleIndex writes nothing for an unchanged item and invalidates the cached digest on a change", () =>
  withReplicas(1, async (a) => {
    await a.apply(TABLE, [{ pk: PK, sk: "s", stored: stored("s", "1") }]);
    const first = await a.index.partitionDigest(TABLE, PARTITION);
    assert.deepEqual(await a.index.partitionDigest(TABLE, PARTITION), first, "cached");

    const tx = new DbTransaction(a.db);
    const hash = itemHash(PK, "s", stored("s", "1"));
    await a.index.recordUpdate(tx, TABLE, PARTITION, PK, "s", hash);
    assert.equal(tx.mutations.length, 0);

    await a.apply(TABLE, [{ pk: PK, sk: "s", stored: stored("s", "2") }]);
    const second = await a.index.partitionDigest(TABLE, PARTITION);
    assert.notDeepEqual(second, first);
    await a.apply(TABLE, [{ pk: PK, sk: "s", stored: stored("s", "1") }]);
    assert.deepEqual(await a.index.partitionDigest(TABLE, PARTITION), first);
    await a.apply(TABLE, [{ pk: PK, sk: "s", stored: undefined }]);
    assert.deepEqual(
      await a.index.partitionDigest(TABLE, PARTITION),
      await a.index.partitionDigest(TABLE, (PARTITION + 1) % 256),
      "an emptied partition has the empty digest",
    );
    await assert.rejects(() => a.index.partitionDigest(TABLE, 256), RangeError);
    await assert.rejects(
      () => a.index.recordUpdate(tx, TABLE, PARTITION, PK, "s", new Uint8Array(3)),
      TypeError,
    );
    assert.deepEqual(
      a.index.lockKeys(TABLE, PARTITION, PK, "s"),
      a.index.lockKeys(TABLE, PARTITION, PK, "s"),
    );
    assert.notDeepEqual(
      a.index.lockKeys("other", PARTITION, PK, "s"),
      a.index.lockKeys(TABLE, PARTITION, PK, "s"),
    );
  }));

Deno.test("MerkleIndex.markBuiltIfEmpty marks an empty partition only, and writes keep it right", () =>
  withReplicas(1, async (a) => {
    assert.equal(await a.index.isBuilt(TABLE, PARTITION), false);
    assert.equal(await a.index.markBuiltIfEmpty(TABLE, PARTITION), true);
    assert.equal(await a.index.isBuilt(TABLE, PARTITION), true);
    await a.apply(TABLE, [{ pk: PK, sk: "s", stored: stored("s", "1") }]);
    await assertConsistent(a, new Map([["s", stored("s", "1")]]));

    const other = (PARTITION + 1) % 256;
    const pk = Array.from({ length: 1000 }, (_, i) => `b-${i}`).find((k) =>
      partitionOf(k) === other
    )!;
    await a.apply(TABLE, [{ pk, sk: "x", stored: stored("x", "1") }]);
    assert.equal(await a.index.markBuiltIfEmpty(TABLE, other), false, "it has index items");
  }));

Deno.test("MerkleIndex.markTableBuiltIfEmpty marks every partition of a table without index keys, in one go", () =>
  withReplicas(1, async (a) => {
    assert.equal(await a.index.markTableBuiltIfEmpty(TABLE), true);
    for (const p of [0, PARTITION, 255]) assert.equal(await a.index.isBuilt(TABLE, p), true);
    assert.equal(await a.index.isBuilt("other", PARTITION), false, "other tables are left alone");

    await a.apply("other", [{ pk: PK, sk: "s", stored: stored("s", "1") }]);
    assert.equal(await a.index.markTableBuiltIfEmpty("other"), false, "it has index items");
    assert.equal(await a.index.isBuilt("other", (PARTITION + 1) % 256), false);
  }));

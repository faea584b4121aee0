import assert from "node:assert/strict";
import { KvStore } from "./kv_store.ts";

async function withStore(fn: (db: KvStore) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const db = await KvStore.open(`${dir}/meta.db`);
  try {
    await fn(db);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("KvStore stores, lists in key order and deletes", () =>
  withStore(async (db) => {
    await db.commit([
      { type: "set", key: ["t", "b"], value: { n: 2 } },
      { type: "set", key: ["t", "a"], value: { n: 1 } },
      { type: "set", key: ["u", "c"], value: 3 },
    ]);
    assert.deepEqual(await db.get(["t", "a"]), { n: 1 });
    const listed = [];
    for await (const e of db.list<{ n: number }>({ prefix: ["t"] })) listed.push(e.value.n);
    assert.deepEqual(listed, [1, 2]);
    await db.commit([{ type: "delete", key: ["t", "a"] }]);
    assert.equal(await db.get(["t", "a"]), undefined);
  }));

Deno.test("KvStore splits values over the engine's value limit and cleans their chunks", () =>
  withStore(async (db) => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    await db.commit([{ type: "set", key: ["big"], value: { big } }]);
    const got = await db.get<{ big: Uint8Array }>(["big"]);
    assert.deepEqual(got?.big, big);
    const all = [];
    for await (const e of db.kv.list({ prefix: [] })) all.push(e.key);
    assert.ok(all.length > 2, "chunks are stored under their own keys");
    await db.commit([{ type: "set", key: ["big"], value: "small" }]);
    assert.equal(await db.get(["big"]), "small");
    const after = [];
    for await (const e of db.kv.list({ prefix: [] })) after.push(e.key);
    assert.deepEqual(after, [["big"]]);
  }));

Deno.test("KvStore cleans the chunks of a value split before it was reopened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = ["obj", "k", new Uint8Array([1, 2]), 7];
    const first = await KvStore.open(`${dir}/meta.db`);
    await first.commit([{ type: "set", key, value: new Uint8Array(200_000).fill(1) }]);
    first.close();
    const db = await KvStore.open(`${dir}/meta.db`);
    try {
      // Larger, then smaller than before, then gone: no chunk may stay behind.
      await db.commit([{ type: "set", key, value: new Uint8Array(70_000).fill(2) }]);
      assert.deepEqual(await db.get(key), new Uint8Array(70_000).fill(2));
      await db.commit([
        { type: "set", key, value: new Uint8Array(300_000).fill(3) },
        { type: "set", key, value: "small" },
      ]);
      assert.equal(await db.get(key), "small");
      const keys = [];
      for await (const e of db.kv.list({ prefix: [] })) keys.push(e.key);
      assert.deepEqual(keys, [key]);
      await db.commit([{ type: "delete", key }]);
      for await (const e of db.kv.list({ prefix: [] })) assert.fail(`left behind: ${e.key}`);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KvStore cleans the chunks of a split value whose overwrite failed to commit", () =>
  withStore(async (db) => {
    await db.commit([{ type: "set", key: ["big"], value: new Uint8Array(200_000).fill(1) }]);
    // A key over the engine's 2 KiB limit fails the whole commit.
    await assert.rejects(
      db.commit([
        { type: "set", key: ["big"], value: "small" },
        { type: "set", key: ["x".repeat(3000)], value: 1 },
      ]),
      /Cannot commit to the metadata store/,
    );
    assert.deepEqual(await db.get(["big"]), new Uint8Array(200_000).fill(1), "nothing changed");
    await db.commit([{ type: "set", key: ["big"], value: "small" }]);
    assert.equal(await db.get(["big"]), "small");
    const keys = [];
    for await (const e of db.kv.list({ prefix: [] })) keys.push(e.key);
    assert.deepEqual(keys, [["big"]], "no chunk of the split value is left behind");
  }));

Deno.test("KvStore tells its write outcomes of each commit, not of a mutation the engine refuses", () =>
  withStore(async (db) => {
    const outcomes: string[] = [];
    db.writeOutcomes = {
      writeFailed: (e) => outcomes.push(`failed: ${(e as Error).name}`),
      writeSucceeded: () => outcomes.push("ok"),
    };
    await db.commit([{ type: "set", key: ["a"], value: 1 }]);
    await assert.rejects(db.commit([{ type: "set", key: ["x".repeat(3000)], value: 1 }]));
    assert.deepEqual(outcomes, ["ok"], "a key too large is the caller's fault, not the disk's");
    // SQLite cannot write (a read-only or failing disk): the disk's fault.
    const writer = (db as unknown as { writer: Deno.Kv }).writer;
    const atomic = writer.atomic.bind(writer);
    writer.atomic = () => {
      const op = atomic();
      op.commit = () => Promise.reject(new Error("attempt to write a readonly database"));
      return op;
    };
    await assert.rejects(db.commit([{ type: "set", key: ["b"], value: 2 }]), /readonly database/);
    // A full disk, which Deno KV throws as a TypeError.
    writer.atomic = () => {
      const op = atomic();
      op.commit = () => Promise.reject(new TypeError("database or disk is full"));
      return op;
    };
    await assert.rejects(db.commit([{ type: "set", key: ["b"], value: 2 }]), /disk is full/);
    writer.atomic = atomic;
    await db.commit([{ type: "set", key: ["b"], value: 2 }]);
    assert.deepEqual(outcomes, ["ok", "failed: Error", "failed: TypeError", "ok"]);
  }));

Deno.test("KvStore sends a commit again once, when one that failed for want of space made room", () =>
  withStore(async (db) => {
    const writer = (db as unknown as { writer: Deno.Kv }).writer;
    const atomic = writer.atomic.bind(writer);
    let failures = 0;
    let failWith = new TypeError("database or disk is full");
    writer.atomic = () => {
      const op = atomic();
      if (failures > 0) {
        failures--;
        op.commit = () => Promise.reject(failWith);
      }
      return op;
    };
    const calls: string[] = [];
    let room = true;
    db.makeRoom = () => {
      calls.push("makeRoom");
      return Promise.resolve(room);
    };
    // Room made (the ballast removed): the second try commits.
    failures = 1;
    await db.commit([{ type: "set", key: ["a"], value: 1 }]);
    assert.equal(await db.get(["a"]), 1);
    assert.deepEqual(calls, ["makeRoom"]);
    // Still full on the second try: one more try only, and the failure is the caller's.
    failures = 2;
    await assert.rejects(db.commit([{ type: "set", key: ["b"], value: 2 }]), /disk is full/);
    assert.equal(await db.get(["b"]), undefined);
    assert.deepEqual(calls, ["makeRoom", "makeRoom"]);
    // No room made: not sent again.
    room = false;
    failures = 1;
    await assert.rejects(db.commit([{ type: "set", key: ["c"], value: 3 }]), /disk is full/);
    assert.equal(failures, 0);
    // Another failure is not for want of space: no room is asked for.
    failWith = new TypeError("attempt to write a readonly database");
    failures = 1;
    await assert.rejects(db.commit([{ type: "set", key: ["d"], value: 4 }]), /readonly/);
    assert.deepEqual(calls, ["makeRoom", "makeRoom", "makeRoom"]);
    writer.atomic = atomic;
  }));

Deno.test("KvStore groups concurrent commits and resolves each", () =>
  withStore(async (db) => {
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) => db.commit([{ type: "set", key: ["k", i], value: i }])),
    );
    let count = 0;
    for await (const _ of db.list({ prefix: ["k"] })) count++;
    assert.equal(count, 2000);
  }));

Deno.test("KvStore lists only the picked properties, of inline and split values alike", () =>
  withStore(async (db) => {
    const value = (n: number) => ({ n, big: "x".repeat(n), nested: { keep: n, drop: [n] } });
    await db.commit([
      { type: "set", key: ["p", 1], value: value(10) },
      { type: "set", key: ["p", 2], value: value(200_000) },
      { type: "set", key: ["p", 3], value: { n: 3, nested: { keep: new Date(3) } } },
    ]);
    const listed = [];
    const pick = { n: true, nested: { keep: true } } as const;
    for await (const e of db.list({ prefix: ["p"] }, { pick })) listed.push(e.value);
    assert.deepEqual(listed, [
      { n: 10, nested: { keep: 10 } },
      { n: 200_000, nested: { keep: 200_000 } },
      { n: 3, nested: { keep: new Date(3) } },
    ]);
  }));

Deno.test("KvStore reads its own commits, with keys found absent and reads in flight", () =>
  withStore(async (db) => {
    for (let n = 0; n < 40; n++) {
      const key = ["t", `k${n % 7}`];
      const reads = [db.get(key), db.get(key)];
      const value = n % 3 === 2 ? undefined : { n };
      await Promise.all([
        db.commit([value ? { type: "set", key, value } : { type: "delete", key }]),
        ...reads,
      ]);
      assert.deepEqual(await db.get(key), value, `round ${n}`);
      assert.deepEqual(await db.get(key), value, `round ${n}, read again`);
    }
  }));

/**
 * Rewrites a split value `writes` times (pausing `pauseMs` between writes)
 * while reading it 4 at a time: each read must be a value that was written.
 * Values of one size, whose bytes differ in every chunk: a read that took
 * chunks of two values would decode to neither, or fail.
 */
async function readWhileRewritten(db: KvStore, size: number, writes: number, pauseMs: number) {
  const valueOf = (n: number) => ({ n, text: String(n % 10).repeat(size) });
  await db.commit([{ type: "set", key: ["t", "big"], value: valueOf(0) }]);
  let writing = true;
  const writer = (async () => {
    for (let n = 1; n <= writes && writing; n++) {
      await db.commit([{ type: "set", key: ["t", "big"], value: valueOf(n) }]);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    writing = false;
  })();
  let reads = 0;
  try {
    while (writing) {
      const got = await Promise.all(
        Array.from({ length: 4 }, () => db.get<{ n: number; text: string }>(["t", "big"])),
      );
      for (const value of got) {
        assert.ok(value !== undefined);
        assert.equal(value.text, valueOf(value.n).text, "the value read is one written");
        reads++;
      }
    }
  } finally {
    writing = false;
    await writer;
  }
  assert.ok(reads > 0);
  const listed = [];
  for await (const e of db.list<{ n: number }>({ prefix: ["t"] })) listed.push(e.value.n);
  assert.deepEqual(listed, [writes]);
}

Deno.test("KvStore reads a split value rewritten meanwhile whole, never mixed", () =>
  withStore(async (db) => {
    // 9 chunks, read at once: whole even under writes without a pause.
    await readWhileRewritten(db, 500_000, 100, 0);
    // 25 chunks, read in three reads and written in two engine commits.
    await readWhileRewritten(db, 1_500_000, 20, 30);
  }));

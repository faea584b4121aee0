import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { createHash } from "node:crypto";
import { type BlockHashing, inlineHashing, WorkerHashing } from "../util/block_hashing.ts";
import { readParts, writeData } from "./object_data.ts";
import { Store } from "./store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import { offsetSortKey, type VersionBlock } from "./version_table.ts";

const BLOCK = 64 * 1024;

/** Bytes that differ from one upload to the next and within each block. */
function dataOf(seed: number, size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

/** A byte stream (read with BYOB when the size is announced) or a plain one, in uneven chunks. */
function bodyOf(data: Uint8Array, bytes: boolean): ReadableStream<Uint8Array> {
  let at = 0;
  const next = () => {
    const n = Math.min(data.byteLength - at, 10_000 + (at % 7) * 3_000);
    const chunk = data.slice(at, at + n);
    at += n;
    return chunk;
  };
  if (!bytes) {
    return new ReadableStream({
      pull(c) {
        if (at === data.byteLength) c.close();
        else c.enqueue(next());
      },
    });
  }
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      if (at === data.byteLength) {
        c.close();
        c.byobRequest?.respond(0);
        return;
      }
      const view = c.byobRequest?.view;
      if (!view) return c.enqueue(next());
      const n = Math.min(view.byteLength, data.byteLength - at, 10_000 + (at % 7) * 3_000);
      new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(at, at + n));
      at += n;
      c.byobRequest!.respond(n);
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A store of blocks of BLOCK bytes in a temporary directory, with `workers` hashing workers. */
async function withStore(workers: number, fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-object-data-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  const hashing = new WorkerHashing(workers);
  try {
    await fn(new Store(db, await BlockStore.open(`${dir}/data`, hashing), { blockSize: BLOCK }));
  } finally {
    hashing.close();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("uploads reuse block buffers: concurrent uploads, twice over, all read back intact", async () => {
  await withStore(2, async (store) => {
    for (const round of [0, 1]) {
      const uploads = Array.from({ length: 8 }, async (_, i) => {
        const seed = round * 100 + i;
        const data = dataOf(seed, 20 * BLOCK + seed * 1_001);
        const dataId = `data-${seed}`;
        const written = await writeData(store, bodyOf(data, i % 2 === 0), {
          dataId,
          maxSize: 1 << 30,
          allowInline: false,
          sizeHint: i % 2 === 0 ? data.byteLength : undefined,
        });
        assert.equal(written.size, data.byteLength);
        const part = { partNumber: 1, dataId, size: data.byteLength, etag: written.md5Hex };
        return { data, part };
      });
      for (const { data, part } of await Promise.all(uploads)) {
        const back = await readAll(
          await readParts(store, [part], { start: 0, end: part.size }),
        );
        assert.ok(back.byteLength === data.byteLength && back.every((b, i) => b === data[i]));
      }
      assert.ok(store.blockBuffers.kept > 0, `round ${round}: block buffers came back`);
    }
  });
});

/** `data` written in blocks under `dataId`, as the one part of an object. */
async function storedPart(store: Store, dataId: string, data: Uint8Array) {
  const written = await writeData(store, bodyOf(data, true), {
    dataId,
    maxSize: 1 << 30,
    allowInline: false,
    sizeHint: data.byteLength,
  });
  return { partNumber: 1, dataId, size: data.byteLength, etag: written.md5Hex };
}

Deno.test("data whose block entries do not cover it is an error, never a short body", async () => {
  await withStore(1, async (store) => {
    const part = await storedPart(store, "gappy", dataOf(7, 4 * BLOCK));
    const blocks = [];
    for await (const block of store.versions.scan("gappy")) blocks.push(block);
    assert.equal(blocks.length, 4);
    // The third block's entry is lost: the first two are sent, then the stream fails.
    await store.versions.insert({ ...blocks[2], deleted: true });
    const stream = await readParts(store, [part], { start: 0, end: part.size });
    await assert.rejects(readAll(stream), /has no block at offset 131072 of its 262144 bytes/);
    // From the gap on, the read fails before anything is sent.
    await assert.rejects(
      readParts(store, [part], { start: 2 * BLOCK + 5, end: part.size }),
      /has no block at offset 131077/,
    );
    // Every entry lost (metadata restored from before the object's deletion).
    for (const block of blocks) await store.versions.insert({ ...block, deleted: true });
    await assert.rejects(
      readParts(store, [part], { start: 0, end: part.size }),
      /has no block at offset 0/,
    );
  });
});

Deno.test("a read the client cancels while a block is on its way logs no failure", async () => {
  await withStore(1, async (store) => {
    const part = await storedPart(store, "cancelled", dataOf(9, 3 * BLOCK));
    // Blocks after the first wait for the gate, as blocks from a slow disk or peer do.
    const gate = Promise.withResolvers<void>();
    const getBlock = store.blocks.getBlock.bind(store.blocks);
    let reads = 0;
    store.blocks.getBlock = async (...args) => {
      if (reads++ > 0) await gate.promise;
      return await getBlock(...args);
    };
    const errors: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(" "));
    try {
      const reader = (await readParts(store, [part], { start: 0, end: part.size })).getReader();
      assert.equal((await reader.read()).value?.byteLength, BLOCK);
      const waiting = reader.read(); // the pull waits for the second block
      await new Promise((r) => setTimeout(r, 20));
      await reader.cancel();
      gate.resolve();
      assert.equal((await waiting).done, true);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      console.error = consoleError;
    }
    assert.deepEqual(errors, []);
  });
});

Deno.test("data announced as small is hashed on the request thread, larger data by the store's hashing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-object-data-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  let calls = 0;
  const counted: BlockHashing = {
    sha256: (data) => (calls++, inlineHashing.sha256(data)),
    md5: () => (calls++, inlineHashing.md5()),
    close: () => {},
  };
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`, counted), {
      blockSize: BLOCK,
    });
    for (const [size, hashedByStore] of [[BLOCK, false], [3 * BLOCK, true]] as const) {
      calls = 0;
      const data = dataOf(size, size);
      const part = await storedPart(store, `data-${size}`, data);
      assert.equal(part.etag, createHash("md5").update(data).digest("hex"));
      const back = await readAll(await readParts(store, [part], { start: 0, end: size }));
      assert.ok(back.every((b, i) => b === data[i]), `${size} bytes read back`);
      assert.equal(calls > 0, hashedByStore, `${size} bytes: hashed by the store's hashing`);
    }
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * This node and a replica "b" that share its metadata, reads needing both;
 * "b" also holds `onlyOnB`, a block entry this node lost. Counts range reads
 * of block entries.
 */
class BlockEntryReads extends LocalReplication {
  override readonly nodeId: string = "this-node";
  rangeReads = 0;
  onlyOnB?: VersionBlock;
  override readSet(): string[] {
    return [this.nodeId, "b"];
  }
  override writeSets(): string[][] {
    return [[this.nodeId, "b"]];
  }
  override readQuorum(): number {
    return 2;
  }
  override async call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    if (path === "table/version/range") this.rangeReads++;
    const answer = await super.call(this.nodeId, path, message);
    if (node !== "b" || path !== "table/version/range" || !this.onlyOnB) return answer;
    const { entries } = answer.body as { entries: VersionBlock[] };
    const held = [...entries, this.onlyOnB].sort((x, y) => x.offset - y.offset);
    return { body: { entries: held } };
  }
}

Deno.test("a read takes a part's block entries from this node when it holds them all, else from a quorum", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-object-data-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const replication = new BlockEntryReads();
    const store = new Store(db, await BlockStore.open(`${dir}/data`), {
      blockSize: BLOCK,
      replication,
    });
    const data = dataOf(9, 3 * BLOCK + 5);
    const part = await storedPart(store, "local-first", data);
    const whole = { start: 0, end: part.size };
    replication.rangeReads = 0;
    assert.deepEqual(await readAll(await readParts(store, [part], whole)), data);
    assert.equal(replication.rangeReads, 0, "no replica asked for the entries");

    // This node lost the second block's entry (metadata restored from a backup); "b" has it.
    const [, lost] = (await store.versions.scanLocal("local-first", 10))!;
    replication.onlyOnB = lost;
    const partition = store.versions.partitionOf(lost.dataId);
    await db.commit([{
      type: "delete",
      key: ["t", "version", partition, lost.dataId, offsetSortKey(lost.offset)],
    }]);
    assert.deepEqual(await readAll(await readParts(store, [part], whole)), data);
    assert.ok(replication.rangeReads >= 2, `${replication.rangeReads} range reads`);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { LocalReplication } from "../rpc/replication.ts";
import type { RpcMessage } from "../net/transport.ts";
import { crc32, sha256Hex } from "../util/hash.ts";
import { BlockManager } from "./block_manager.ts";
import { BlockStore } from "./block_store.ts";
import { BlockBufferPool } from "./buffer_pool.ts";

async function withBlocks(
  fn: (blocks: BlockManager, clock: { ms: number }) => Promise<void>,
  replication = new LocalReplication(),
  buffers?: BlockBufferPool,
) {
  const dir = await Deno.makeTempDir();
  const db = await KvStore.open(`${dir}/meta.kv`);
  const clock = { ms: 1_000_000 };
  try {
    const store = await BlockStore.open(`${dir}/data`);
    const blocks = new BlockManager(
      store,
      db,
      new KeyedMutex(),
      () => clock.ms,
      60_000,
      replication,
      buffers,
    );
    await fn(blocks, clock);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const data = (text: string) => new TextEncoder().encode(text);

Deno.test("a new block is durable when putLocal resolves, and collected once unreferenced past the delay", () =>
  withBlocks(async (blocks, clock) => {
    const bytes = data("a block nobody refers to");
    const hash = sha256Hex(bytes);
    await blocks.putLocal(hash, bytes);
    assert.ok(await blocks.store.has(hash));
    // Its record follows under the block's lock: taking the lock waits for it.
    assert.equal(await blocks.trackUnrecorded(hash), false, "recorded by putLocal");
    assert.equal(await blocks.collectGarbage(), 0, "within the grace period");
    clock.ms += 61_000;
    assert.equal(await blocks.collectGarbage(), 1);
    assert.equal(await blocks.store.has(hash), false);
  }));

Deno.test("a collection run deletes every block that is due, past its batch of 1,000", () =>
  withBlocks(async (blocks, clock) => {
    const hashes: string[] = [];
    for (let i = 0; i < 1_005; i++) {
      const bytes = data(`unreferenced block ${i}`);
      hashes.push(sha256Hex(bytes));
      await blocks.putLocal(hashes[i], bytes);
    }
    clock.ms += 61_000;
    assert.equal(await blocks.collectGarbage(), 1_005);
    for (const hash of [hashes[0], hashes[1_004]]) {
      assert.equal(await blocks.store.has(hash), false);
    }
    assert.equal(await blocks.collectGarbage(), 0);
  }));

Deno.test("trackUnrecorded queues a block file without reference record for collection, once", () =>
  withBlocks(async (blocks, clock) => {
    const bytes = data("left by a node that stopped before recording it");
    const hash = sha256Hex(bytes);
    await blocks.store.write(hash, bytes);
    clock.ms += 61_000;
    assert.equal(await blocks.collectGarbage(), 0, "unknown to the collector");
    assert.equal(await blocks.trackUnrecorded(hash), true);
    assert.equal(await blocks.trackUnrecorded(hash), false, "already recorded");
    assert.equal(await blocks.trackUnrecorded(sha256Hex(data("absent"))), false);
    clock.ms += 61_000;
    assert.equal(await blocks.collectGarbage(), 1);
    assert.equal(await blocks.store.has(hash), false);
  }));

/** This node and two peers, every block on all three; each peer's answer to a call is decided by the test. */
class ThreeReplicas extends LocalReplication {
  readonly answers = new Map<string, PromiseWithResolvers<RpcMessage>>([
    ["peer-a", Promise.withResolvers()],
    ["peer-b", Promise.withResolvers()],
  ]);
  override writeSets(): string[][] {
    return [[this.nodeId, "peer-a", "peer-b"]];
  }
  override writeQuorum(): number {
    return 2;
  }
  override call(node: string, path: string, message: RpcMessage): Promise<RpcMessage> {
    return this.answers.get(node)?.promise ?? super.call(node, path, message);
  }
}

Deno.test("putBlock resolves at quorum, and says every replica stored the block only once all did", async () => {
  for (const lastPeer of ["stores", "fails"]) {
    const replication = new ThreeReplicas();
    await withBlocks(async (blocks) => {
      const bytes = data(`a block whose last replica ${lastPeer}`);
      let allStored = false;
      replication.answers.get("peer-a")!.resolve({ body: null });
      await blocks.putBlock(sha256Hex(bytes), bytes, () => allStored = true);
      assert.equal(allStored, false, "peer-b may still be reading the bytes");
      const last = replication.answers.get("peer-b")!;
      if (lastPeer === "stores") last.resolve({ body: null });
      else last.reject(new Error("peer-b went away"));
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(allStored, lastPeer === "stores");
    }, replication);
  }
});

Deno.test("a block from a peer is checked by its CRC-32 when the sender gives it, else by its hash", async () => {
  const replication = new LocalReplication();
  await withBlocks(async (blocks) => {
    const send = (body: unknown, bytes: Uint8Array) =>
      replication.call(replication.nodeId, "block/put", {
        body,
        stream: new ReadableStream({
          start(controller) {
            controller.enqueue(bytes.slice());
            controller.close();
          },
        }),
      });
    const bytes = data("a block sent by the node that received the upload");
    const hash = sha256Hex(bytes);
    const check = { size: bytes.byteLength, crc32: crc32(bytes) };
    const damaged = bytes.slice();
    damaged[7] ^= 0x01;
    await assert.rejects(send({ hash, check }, damaged), /arrived corrupted/);
    await assert.rejects(send({ hash }, damaged), /arrived corrupted/);
    await assert.rejects(send({ hash, check }, bytes.subarray(1)), /arrived corrupted/);
    assert.equal(await blocks.store.has(hash), false, "nothing damaged was stored");
    await send({ hash, check }, bytes);
    assert.deepEqual(await blocks.store.read(hash), bytes);
    const repaired = data("a block a repair sends, without its CRC-32");
    await send({ hash: sha256Hex(repaired) }, repaired);
    assert.deepEqual(await blocks.store.read(sha256Hex(repaired)), repaired);
  }, replication);
});

Deno.test("a full block from a peer is received into a pooled buffer, given back once its file is written", async () => {
  const replication = new LocalReplication();
  const bytes = data("sixteen bytes!!!");
  const buffers = new BlockBufferPool(bytes.byteLength, 4 * bytes.byteLength);
  await withBlocks(
    async (blocks) => {
      const send = (sent: Uint8Array, check = { size: sent.byteLength, crc32: crc32(sent) }) =>
        replication.call(replication.nodeId, "block/put", {
          body: { hash: sha256Hex(sent), check },
          stream: ReadableStream.from([sent.slice(0, 5), sent.slice(5)]),
        });
      await send(bytes);
      assert.deepEqual(await blocks.store.read(sha256Hex(bytes)), bytes);
      assert.equal(buffers.kept, 1, "the buffer it was received into is back in the pool");
      const longer = data("sixteen bytes!!! and more");
      await assert.rejects(
        send(longer, { size: 16, crc32: crc32(longer) }),
        /not the 16 bytes announced \(25 received\)/,
      );
      await assert.rejects(
        send(bytes.subarray(2), { size: 16, crc32: crc32(bytes) }),
        /\(14 received\)/,
      );
      assert.equal(await blocks.store.has(sha256Hex(longer)), false, "nothing damaged was stored");
      assert.equal(buffers.kept, 1, "the refused blocks' buffer went back too, once");
      const other = data("a block of another size");
      await send(other);
      assert.deepEqual(await blocks.store.read(sha256Hex(other)), other);
    },
    replication,
    buffers,
  );
});

Deno.test("a peer's read of a corrupted or missing copy here queues this node's copy for repair", async () => {
  const replication = new LocalReplication();
  await withBlocks(async (blocks) => {
    const queued: string[] = [];
    blocks.onBadLocalCopy = (hash) => queued.push(hash);
    const ask = (hash: string) =>
      replication.call(replication.nodeId, "block/get", { body: { hash } });
    const bytes = data("a block whose file decays on this node");
    const hash = sha256Hex(bytes);
    await blocks.putLocal(hash, bytes);
    const path = blocks.store.pathOf(hash);
    const file = await Deno.readFile(path);
    file[5] ^= 0x01;
    await Deno.writeFile(path, file);
    await assert.rejects(ask(hash), /is corrupted/);
    assert.deepEqual(queued, [hash]);

    const absent = sha256Hex(data("a block this node should have but lacks"));
    await assert.rejects(ask(absent), /is missing from this node/);
    assert.deepEqual(queued, [hash, absent]);
  }, replication);
});

/**
 * Peers answering block/get: `hung` never answer, the others send their copy
 * in `copies` or fail without one; the signal of every call is kept.
 */
class PeersServingBlocks extends ThreeReplicas {
  readonly signals = new Map<string, AbortSignal>();
  constructor(readonly copies: Record<string, Uint8Array>, readonly hung: string[]) {
    super();
  }
  override readSet(): string[] {
    return [this.nodeId, "peer-a", "peer-b"];
  }
  override call(
    node: string,
    path: string,
    message: RpcMessage,
    options?: { signal?: AbortSignal },
  ): Promise<RpcMessage> {
    if (path !== "block/get") return super.call(node, path, message);
    this.signals.set(node, options!.signal!);
    if (this.hung.includes(node)) return new Promise(() => {});
    const copy = this.copies[node];
    if (!copy) return Promise.reject(new Error(`${node} has no copy`));
    return Promise.resolve({
      body: { size: copy.byteLength },
      stream: new ReadableStream({
        start(controller) {
          controller.enqueue(copy.slice());
          controller.close();
        },
      }),
    });
  }
}

Deno.test("a block is fetched past a replica that does not answer, and past a corrupted copy", async () => {
  const bytes = data("a block this node lacks");
  const hash = sha256Hex(bytes);
  const check = { size: bytes.byteLength, crc32: crc32(bytes) };
  const damaged = bytes.slice();
  damaged[3] ^= 0x20;

  // The nearest replica hangs with its connection open: the next is asked after the hedge delay.
  const hung = new PeersServingBlocks({ "peer-b": bytes }, ["peer-a"]);
  await withBlocks(async (blocks) => {
    assert.deepEqual(await blocks.fetchFromPeers(hash, check), bytes);
    assert.ok(hung.signals.get("peer-a")!.aborted, "the call to the hung replica is cancelled");
    assert.ok(!hung.signals.get("peer-b")!.aborted);
  }, hung);

  // The nearest sends a damaged copy: the next one's is used, by CRC-32 or by hash.
  const corrupt = new PeersServingBlocks({ "peer-a": damaged, "peer-b": bytes }, []);
  await withBlocks(async (blocks) => {
    assert.deepEqual(await blocks.fetchFromPeers(hash, check), bytes);
    assert.deepEqual(await blocks.fetchFromPeers(hash), bytes);
  }, corrupt);

  // No good copy anywhere: every replica's failure is told.
  const none = new PeersServingBlocks({ "peer-a": damaged }, []);
  await withBlocks(async (blocks) => {
    await assert.rejects(
      blocks.fetchFromPeers(hash, check),
      /cannot be read: peer-a: the copy received is corrupted; peer-b: peer-b has no copy$/,
    );
  }, none);
});

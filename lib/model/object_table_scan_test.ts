import assert from "node:assert/strict";
import { decode, encode } from "@msgpack/msgpack";
import { KvStore } from "../db/kv_store.ts";
import type { ValuePick } from "../db/db.ts";
import type { RpcMessage } from "../net/transport.ts";
import type { Replication } from "../rpc/replication.ts";
import type { SystemHandler } from "../rpc/system.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import { currentData, type ObjectEntry, objectSchema, type ObjectVersion } from "./object_table.ts";
import { Table } from "../table/table.ts";

const NODES = ["n0", "n1", "n2"];
const BUCKET = "bucket";

/**
 * Every node replicates every partition; reads merge the answers of a read
 * quorum (all three unless said), a node's own copy first. Bodies go through
 * msgpack, as on the wire.
 */
class TestNetwork {
  readonly handlers = new Map<string, Map<string, SystemHandler>>();
  /** Nodes that predate picks: their range reads ignore them. */
  readonly ignorePick = new Set<string>();
  /** Nodes that predate reports of previous copies: their writes ignore the request. */
  readonly ignoreSeen = new Set<string>();
  /** Nodes whose calls fail, as when their link is down. */
  readonly down = new Set<string>();
  /** Read calls asked ("node get", "node range"), answered or not. */
  readonly reads: string[] = [];

  constructor(private readonly readQuorum: (n: number) => number = (n) => n) {}

  replication(nodeId: string): Replication {
    const handlers = new Map<string, SystemHandler>();
    this.handlers.set(nodeId, handlers);
    return {
      nodeId,
      run: `${nodeId}-run`,
      runOf: () => undefined,
      hasRole: () => true,
      writeSets: () => [NODES],
      readSet: () => NODES,
      storesPartition: () => true,
      writeQuorum: (n) => n,
      readQuorum: this.readQuorum,
      isUp: (node) => !this.down.has(node),
      holdsAllWrites: () => true,
      peersUp: () => NODES.filter((node) => node !== nodeId && !this.down.has(node)),
      peerClockOffsetsMs: () => [],
      byProximity: (nodes) => [nodeId, ...nodes.filter((n) => n !== nodeId)],
      readHedgeMs: () => 100,
      register: (path, handler) => void handlers.set(path, handler),
      call: async (node, path, message): Promise<RpcMessage> => {
        const verb = path.slice(path.lastIndexOf("/") + 1);
        if (verb !== "update") this.reads.push(`${node} ${verb}`);
        if (this.down.has(node)) throw new Error(`${node} is down`);
        const body = decode(encode(message.body)) as Record<string, unknown>;
        if (this.ignorePick.has(node)) delete body.pick;
        if (this.ignoreSeen.has(node)) delete body.seen;
        const reply = await this.handlers.get(node)!.get(path)!(nodeId, { body });
        return { body: decode(encode(reply.body)) };
      },
    };
  }
}

function version(key: string, t: number, etag: string): ObjectVersion {
  return {
    uuid: `${key}-${t}`,
    timestampMs: t,
    state: {
      state: "complete",
      data: {
        type: "inline",
        meta: { size: etag.length, etag, headers: [["content-type", "text/plain"]] },
        bytes: new Uint8Array(8),
      },
    },
  };
}

const LISTING_PICK: ValuePick = {
  key: true,
  versions: {
    uuid: true,
    timestampMs: true,
    state: { state: true, data: { type: true, meta: { size: true, etag: true } } },
  },
};

/** What a listing shows of each entry of a scan. */
async function listing(table: Table<ObjectEntry>, pick?: ValuePick) {
  const shown: unknown[] = [];
  for await (const page of table.scanPages(BUCKET, { pick })) {
    for (const entry of page) {
      const current = currentData(entry);
      shown.push([entry.key, current?.version.timestampMs, current?.data.meta.etag]);
    }
  }
  return shown;
}

/** Runs `fn` with the object table of every node of `network`, each on its own store. */
async function withTables(
  network: TestNetwork,
  fn: (tables: Table<ObjectEntry>[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-object-table-test-" });
  const dbs = await Promise.all(NODES.map((n) => KvStore.open(`${dir}/${n}`)));
  try {
    await fn(
      NODES.map((n, i) =>
        new Table(objectSchema(), dbs[i], new KeyedMutex(), network.replication(n))
      ),
    );
  } finally {
    for (const db of dbs) db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a scan with a pick merges replicas' answers as a whole scan does", async () => {
  const network = new TestNetwork();
  await withTables(network, async (tables) => {
    // 1,300 keys over more than one page of each replica: every replica misses
    // some keys, and some keys have a newer version on one replica only.
    for (let k = 0; k < 1300; k++) {
      const key = `key-${String(k).padStart(5, "0")}`;
      const older: ObjectEntry = { bucketId: BUCKET, key, versions: [version(key, 10, "old")] };
      for (let i = 0; i < NODES.length; i++) {
        if ((k + i) % 7 === 0) continue;
        const newer = k % 5 === i;
        const entry = newer ? { ...older, versions: [version(key, 20 + i, `new-on-${i}`)] } : older;
        await tables[i].applyLocal([entry]);
      }
    }
    const whole = await listing(tables[0]);
    assert.equal(whole.length, 1300);
    assert.deepEqual(whole[1], ["key-00001", 21, "new-on-1"]);
    assert.deepEqual(whole[3], ["key-00003", 10, "old"]);
    assert.deepEqual(await listing(tables[0], LISTING_PICK), whole);
    for await (const entry of tables[0].scan(BUCKET, { pick: LISTING_PICK, limit: 600 })) {
      const data = entry.versions.at(-1)?.state;
      assert.ok(data?.state === "complete" && data.data.type === "inline");
      assert.deepEqual(Object.keys(data.data), ["type", "meta"], "read without its bytes");
    }
    // A replica that answers whole entries merges with those that answer picked ones.
    network.ignorePick.add("n1");
    assert.deepEqual(await listing(tables[2], LISTING_PICK), whole);
  });
});

Deno.test("reads ask the nearest read quorum of replicas, and the third when one is down", async () => {
  const network = new TestNetwork((n) => Math.floor(n / 2) + 1);
  await withTables(network, async (tables) => {
    // Each replica has its own version; the third one's is the newest.
    for (let i = 0; i < NODES.length; i++) {
      const t = 10 * (i + 1);
      await tables[i].applyLocal([{
        bucketId: BUCKET,
        key: "k",
        versions: [version("k", t, `v${t}`)],
      }]);
    }
    const etag = (entry: ObjectEntry | undefined) => currentData(entry)?.data.meta.etag;
    assert.equal(etag(await tables[0].get(BUCKET, "k")), "v20");
    assert.deepEqual(network.reads, ["n0 get", "n1 get"], "the third replica is not asked");
    network.reads.length = 0;
    assert.deepEqual(await listing(tables[0]), [["k", 20, "v20"]]);
    assert.deepEqual(network.reads, ["n0 range", "n1 range"]);

    network.down.add("n1");
    network.reads.length = 0;
    assert.equal(etag(await tables[0].get(BUCKET, "k")), "v30");
    assert.deepEqual(network.reads, ["n0 get", "n1 get", "n2 get"]);
    network.reads.length = 0;
    assert.deepEqual(await listing(tables[0]), [["k", 30, "v30"]]);
    assert.deepEqual(network.reads, ["n0 range", "n1 range", "n2 range"]);
  });
});

Deno.test("a write reports the copies the replicas held before it, and reads them where a replica does not", async () => {
  const network = new TestNetwork();
  await withTables(network, async (tables) => {
    await tables[0].applyLocal([{ bucketId: BUCKET, key: "k", versions: [version("k", 10, "a")] }]);
    await tables[2].applyLocal([{ bucketId: BUCKET, key: "k", versions: [version("k", 30, "c")] }]);
    const pick: ValuePick = { versions: { uuid: true, timestampMs: true } };
    const timestamps = (seen: unknown[]) =>
      seen.map((e) => (e as ObjectEntry | undefined)?.versions.map((v) => v.timestampMs) ?? [])
        .sort();
    const written = { bucketId: BUCKET, key: "k", versions: [version("k", 20, "b")] };
    assert.deepEqual(timestamps(await tables[0].insertSeeing(written, pick)), [[], [10], [30]]);
    assert.deepEqual(
      (await tables[1].getLocal(BUCKET, "k"))?.versions.map((v) => v.timestampMs),
      [20],
      "the write is stored",
    );
    // A replica that does not report: the answer comes from a read after the write.
    network.ignoreSeen.add("n1");
    const later = { bucketId: BUCKET, key: "k", versions: [version("k", 40, "d")] };
    const seen = await tables[0].insertSeeing(later, pick);
    assert.deepEqual(timestamps(seen), [[40]]);
    assert.deepEqual(Object.keys((seen[0] as ObjectEntry).versions[0]), ["uuid", "timestampMs"]);
  });
});

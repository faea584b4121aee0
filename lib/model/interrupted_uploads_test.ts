import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { abortCutOffUploads, releaseInterruptedUploads } from "./interrupted_uploads.ts";
import { writeData } from "./object_data.ts";
import { abortUpload, createUpload, getUpload, recordPart, uploadPart } from "./multipart.ts";
import { getCurrent, putObject } from "./objects.ts";
import { copyObject, copyRange } from "./copy.ts";
import type { DataOwner, JournalEntry } from "./data_journal.ts";
import type { ObjectVersion } from "./object_table.ts";
import { Store } from "./store.ts";
import { LocalReplication } from "../rpc/replication.ts";
import { LEFT_NOTE_SETTLE_DELAY_MS } from "../util/limits.ts";

const BUCKET = "bucket-id";

function bodyOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** A node's metadata and block stores, which a process and the next one open in turn. */
async function withDisks(fn: (db: KvStore, blocks: BlockStore) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-interrupted-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    await fn(db, await BlockStore.open(`${dir}/data`));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the next process releases the data of uploads its node died in, and only theirs", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    // What an upload leaves when its node dies mid-way: its note, and blocks
    // stored and referenced that no record may name.
    const interrupted = async (owner: DataOwner, dataId = crypto.randomUUID()) => {
      await before.journal.begin(dataId, owner);
      await writeData(before, bodyOf(crypto.getRandomValues(new Uint8Array(3000))), {
        dataId,
        maxSize: 1 << 20,
        allowInline: false,
      });
      const hashes: string[] = [];
      for await (const b of before.versions.scan(dataId)) hashes.push(b.hash);
      return { dataId, hashes };
    };
    const object = (key: string): DataOwner => ({ kind: "object", bucketId: BUCKET, key });

    // A PutObject whose key was written again meanwhile (a client's retry):
    // no record names its data.
    const replaced = await interrupted(object("retried"));
    await putObject(before, BUCKET, "retried", bodyOf(new Uint8Array(10)), {
      headers: [],
      maxSize: 1 << 20,
    });
    // A PutObject still recorded as uploading: its note waits until every replica answers.
    const uploading = await interrupted(object("uploading"));
    await before.objects.insert({
      bucketId: BUCKET,
      key: "uploading",
      versions: [{
        uuid: uploading.dataId,
        timestampMs: before.nowMs(),
        state: { state: "uploading", multipart: false, headers: [] },
      }],
    });
    // A PutObject that completed, its note not yet forgotten when the node died.
    const completed = await putObject(
      before,
      BUCKET,
      "done",
      bodyOf(crypto.getRandomValues(new Uint8Array(3000))),
      {
        maxSize: 1 << 20,
        headers: [],
      },
    );
    const noted = async (dataId: string) => (await db.get(["dj", dataId])) !== undefined;
    await new Promise((r) => setTimeout(r, 50)); // the note is forgotten after the answer
    assert.equal(await noted(completed.version.uuid), false, "a finished upload leaves no note");
    await before.journal.begin(completed.version.uuid, object("done"));

    // Parts: one in flight, never recorded; one recorded; one of an upload aborted since.
    const uploadId = await createUpload(before, BUCKET, "big", []);
    const part = (partNumber: number, id = uploadId): DataOwner => ({
      kind: "part",
      bucketId: BUCKET,
      key: "big",
      uploadId: id,
      partNumber,
    });
    const inFlight = await interrupted(part(2));
    const recorded = await interrupted(part(1));
    const active = (await getUpload(before, BUCKET, "big", uploadId))!;
    await recordPart(before, active, 1, {
      dataId: recorded.dataId,
      size: 3000,
      etag: '"e"',
    });
    const abortedId = await createUpload(before, BUCKET, "gone", []);
    const ofAborted = await interrupted({ ...part(1, abortedId), key: "gone" });
    await abortUpload(before, (await getUpload(before, BUCKET, "gone", abortedId))!);

    // The node's next process, while a replica does not answer.
    const after = new Store(db, blocks, { blockSize: 1024 });
    const getEverywhere = after.objects.getFromEveryReplica.bind(after.objects);
    after.objects.getFromEveryReplica = () => Promise.reject(new Error("a replica did not answer"));
    assert.equal(await releaseInterruptedUploads(after), 2);
    const refcounts = async (hashes: string[]) =>
      await Promise.all(hashes.map((h) => after.blocks.refcount(h)));
    // The releases run after their commits: wait for the counts to drop.
    for (let i = 0; i < 50 && (await refcounts(inFlight.hashes)).some((c) => c > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const released of [inFlight, ofAborted]) {
      assert.deepEqual(await refcounts(released.hashes), [0, 0, 0]);
    }
    // The replaced PutObject's completion may have reached a replica alone, newer than its
    // replacement: its data waits too.
    for (const kept of [replaced, uploading, recorded]) {
      assert.deepEqual(await refcounts(kept.hashes), [1, 1, 1]);
    }
    const done = await after.objects.get(BUCKET, "done");
    assert.equal(done?.versions[0].state.state, "complete");
    for await (const block of after.versions.scan(completed.version.uuid)) {
      assert.equal(block.deleted, false, "a completed object keeps its data");
    }
    // Every note is settled but those two, which wait: once every replica answers without
    // their completion, none can come, and the one still uploading is aborted.
    assert.equal(await releaseInterruptedUploads(after), 0);
    after.objects.getFromEveryReplica = getEverywhere;
    assert.equal(await releaseInterruptedUploads(after), 2);
    // Aborted: a lone node keeps no record of it.
    assert.equal(await after.objects.get(BUCKET, "uploading"), undefined);
    for (const released of [replaced, uploading]) {
      for (let i = 0; i < 50 && (await refcounts(released.hashes)).some((c) => c > 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(await refcounts(released.hashes), [0, 0, 0]);
    }
    // The notes of the running process are left alone.
    await after.journal.begin(crypto.randomUUID(), object("now"));
    assert.equal(await releaseInterruptedUploads(after), 0);
    let notes = 0;
    for await (const _ of db.list({ prefix: ["dj"] })) notes++;
    assert.equal(notes, 1);
  }));

Deno.test("a note whose records cannot be read yet is kept for the next pass, the others settled", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    const owner = (key: string): DataOwner => ({ kind: "object", bucketId: BUCKET, key });
    // The unreadable note comes first: it must not hold up the one after it.
    await before.journal.begin("a-unreadable", owner("unreadable"));
    await before.journal.begin("b-readable", owner("readable"));

    const after = new Store(db, blocks, { blockSize: 1024 });
    const get = after.objects.get.bind(after.objects);
    after.objects.get = (bucketId, key) =>
      key === "unreadable"
        ? Promise.reject(new Error("0 of the 2 replicas needed answered"))
        : get(bucketId, key);
    assert.equal(await releaseInterruptedUploads(after), 1);
    const notes = async () => {
      const ids: string[] = [];
      for await (const { key } of db.list({ prefix: ["dj"] })) ids.push(key[1] as string);
      return ids;
    };
    assert.deepEqual(await notes(), ["a-unreadable"]);
    after.objects.get = get; // the peers answer again
    assert.equal(await releaseInterruptedUploads(after), 1);
    assert.deepEqual(await notes(), []);
  }));

Deno.test("the next process releases the data of a copy its node died in, once every replica shows no copy", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    await putObject(
      before,
      BUCKET,
      "source",
      bodyOf(crypto.getRandomValues(new Uint8Array(3000))),
      {
        headers: [],
        maxSize: 1 << 20,
      },
    );
    const source = (await getCurrent(before, BUCKET, "source"))!;
    const notes = async () => {
      const ids: string[] = [];
      for await (const { key } of db.list({ prefix: ["dj"] })) ids.push(key[1] as string);
      return ids.sort();
    };
    // A copy that completed leaves no note; one its precondition refused leaves no data either.
    const done = await copyObject(before, source, { bucketId: BUCKET, key: "done" }, {
      headers: [],
    });
    const refused = copyObject(before, source, { bucketId: BUCKET, key: "refused" }, {
      headers: [],
      precondition: () => {
        throw new Error("precondition failed");
      },
    });
    await assert.rejects(refused, /precondition failed/);
    await new Promise((r) => setTimeout(r, 50)); // notes are forgotten after the answer
    assert.deepEqual(await notes(), []);

    // What copies leave when their node dies: a note, and the data written
    // for a version that never committed, or that did.
    const copyOwner = (key: string, versionUuid: string): DataOwner => ({
      kind: "copy",
      bucketId: BUCKET,
      key,
      versionUuid,
    });
    const cutOff = crypto.randomUUID();
    await before.journal.beginAll([cutOff], copyOwner("cut-off", crypto.randomUUID()));
    await copyRange(before, source, { start: 0, end: 3000 }, cutOff);
    const doneState = done.version.state;
    assert(doneState.state === "complete" && doneState.data.type === "parts");
    const doneData = doneState.data.parts.map((p) => p.dataId);
    await before.journal.beginAll(doneData, copyOwner("done", done.version.uuid));

    const after = new Store(db, blocks, { blockSize: 1024 });
    const getEverywhere = after.objects.getFromEveryReplica.bind(after.objects);
    after.objects.getFromEveryReplica = () => Promise.reject(new Error("a replica did not answer"));
    assert.equal(await releaseInterruptedUploads(after), 0, "a replica may hold the copy yet");
    assert.deepEqual(await notes(), [cutOff, ...doneData].sort());

    after.objects.getFromEveryReplica = getEverywhere;
    assert.equal(await releaseInterruptedUploads(after), 1);
    assert.deepEqual(await notes(), []);
    const liveBlocks = async (dataId: string) => {
      let live = 0;
      for await (const b of after.versions.scan(dataId)) if (!b.deleted) live++;
      return live;
    };
    assert.equal(await liveBlocks(cutOff), 0);
    for (const dataId of doneData) assert.equal(await liveBlocks(dataId), 3);
    // The copies share the source's blocks: the source's and the done copy's references remain.
    for (const part of source.data.type === "parts" ? source.data.parts : []) {
      for await (const b of after.versions.scan(part.dataId)) {
        assert.equal(await after.blocks.refcount(b.hash), 2);
      }
    }
  }));

Deno.test("a PutObject uploading as a quorum reads it, but complete on another replica, keeps its data", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    const uuid = crypto.randomUUID();
    await before.journal.begin(uuid, { kind: "object", bucketId: BUCKET, key: "k" });
    const uploading: ObjectVersion = {
      uuid,
      timestampMs: before.nowMs(),
      state: { state: "uploading", multipart: false, headers: [] },
    };
    await before.objects.insert({ bucketId: BUCKET, key: "k", versions: [uploading] });
    const written = await writeData(before, bodyOf(crypto.getRandomValues(new Uint8Array(3000))), {
      dataId: uuid,
      maxSize: 1 << 20,
      allowInline: false,
    });

    // The completion reached one replica before the node died.
    const after = new Store(db, blocks, { blockSize: 1024 });
    const meta = { size: written.size, etag: `"${written.md5Hex}"`, headers: [] };
    const complete: ObjectVersion = {
      ...uploading,
      state: {
        state: "complete",
        data: {
          type: "parts",
          meta,
          parts: [{ partNumber: 1, dataId: uuid, size: 3000, etag: meta.etag }],
        },
      },
    };
    after.objects.getFromEveryReplica = () =>
      Promise.resolve({ bucketId: BUCKET, key: "k", versions: [complete] });
    assert.equal(await releaseInterruptedUploads(after), 0);
    let live = 0;
    for await (const block of after.versions.scan(uuid)) if (!block.deleted) live++;
    assert.equal(live, 3);
    assert.equal((await after.objects.get(BUCKET, "k"))?.versions[0].state.state, "uploading");
    assert.equal(await db.get(["dj", uuid]), undefined, "the note is settled");
  }));

type Coordinator = { node: string; run: string };

/** A version left uploading, with its data written (one block: no journal note); its data id. */
async function leaveUploading(
  store: Store,
  key: string,
  coordinator?: Coordinator,
  timestampMs = store.nowMs(),
): Promise<string> {
  const uuid = crypto.randomUUID();
  await store.objects.insert({
    bucketId: BUCKET,
    key,
    versions: [{
      uuid,
      timestampMs,
      state: { state: "uploading", multipart: false, headers: [], coordinator },
    }],
  });
  await writeData(store, bodyOf(crypto.getRandomValues(new Uint8Array(1000))), {
    dataId: uuid,
    maxSize: 1 << 20,
    allowInline: false,
  });
  return uuid;
}

Deno.test("the next process aborts the PutObjects this node coordinated and left uploading, once every replica answers", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    const after = new Store(db, blocks, { blockSize: 1024 });
    const node = before.replication.nodeId;
    const uploading = (key: string, coordinator?: Coordinator) =>
      leaveUploading(before, key, coordinator);
    const cutOff = await uploading("cut-off", { node, run: before.journal.run });
    const elsewhere = await uploading("elsewhere", { node: "another-node", run: "its-run" });
    const inProgress = await uploading("in-progress", { node, run: after.journal.run });
    const older = await uploading("older"); // written by a remise that named no coordinator

    const getEverywhere = after.objects.getFromEveryReplica.bind(after.objects);
    after.objects.getFromEveryReplica = () => Promise.reject(new Error("a replica did not answer"));
    const first = await abortCutOffUploads(after, after.objects.scan(BUCKET));
    assert.equal(first.aborted, 0);
    assert.deepEqual(first.waiting.map((e) => e.key), ["cut-off"]);
    after.objects.getFromEveryReplica = getEverywhere;
    // The next pass tries again the uploads that waited, alone.
    assert.deepEqual(await abortCutOffUploads(after, first.waiting), {
      aborted: 1,
      waiting: [],
    });
    await after.releases.settled();

    const liveBlocks = async (dataId: string) => {
      let live = 0;
      for await (const b of after.versions.scan(dataId)) if (!b.deleted) live++;
      return live;
    };
    assert.equal(await liveBlocks(cutOff), 0, "the aborted upload's data is released");
    assert.equal(await after.objects.get(BUCKET, "cut-off"), undefined);
    for (
      const [key, dataId] of [["elsewhere", elsewhere], ["in-progress", inProgress], [
        "older",
        older,
      ]]
    ) {
      const state = (await after.objects.get(BUCKET, key))?.versions[0].state.state;
      assert.equal(state, "uploading", `${key} is left alone`);
      assert.equal(await liveBlocks(dataId), 1);
    }
  }));

Deno.test("a part whose record a quorum read misses is kept while a replica may hold it", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    const uploadId = await createUpload(before, BUCKET, "big", []);
    const dataId = crypto.randomUUID();
    await before.journal.begin(dataId, {
      kind: "part",
      bucketId: BUCKET,
      key: "big",
      uploadId,
      partNumber: 1,
    });
    await writeData(before, bodyOf(crypto.getRandomValues(new Uint8Array(3000))), {
      dataId,
      maxSize: 1 << 20,
      allowInline: false,
    });
    // The record reached one replica, which the next process's quorum read skips.
    const active = (await getUpload(before, BUCKET, "big", uploadId))!;
    const recorded = {
      ...active.upload,
      parts: { "1": { t: 1, v: { dataId, size: 3000, etag: "e" } } },
    };

    const after = new Store(db, blocks, { blockSize: 1024 });
    const notes = async () => (await db.get(["dj", dataId])) !== undefined;
    after.objects.getFromEveryReplica = () => Promise.reject(new Error("unused"));
    after.uploads.getFromEveryReplica = () => Promise.reject(new Error("a replica did not answer"));
    assert.equal(await releaseInterruptedUploads(after), 0);
    assert.equal(await notes(), true, "the note waits");
    after.uploads.getFromEveryReplica = () => Promise.resolve(recorded);
    assert.equal(await releaseInterruptedUploads(after), 0);
    assert.equal(await notes(), false, "settled: the part is named");
    let live = 0;
    for await (const block of after.versions.scan(dataId)) if (!block.deleted) live++;
    assert.equal(live, 3, "its data is kept");
  }));

Deno.test("a copy whose commit fails keeps its notes, naming its version, for the next process", () =>
  withDisks(async (db, blocks) => {
    const before = new Store(db, blocks, { blockSize: 1024 });
    const body = bodyOf(crypto.getRandomValues(new Uint8Array(3000)));
    await putObject(before, BUCKET, "source", body, { headers: [], maxSize: 1 << 20 });
    const source = (await getCurrent(before, BUCKET, "source"))!;
    // Too few replicas take the copy's version: it may show yet, so its data stays.
    const insert = before.objects.insert.bind(before.objects);
    before.objects.insert = (entry) =>
      entry.key === "failed" ? Promise.reject(new Error("too few replicas")) : insert(entry);
    await assert.rejects(
      copyObject(before, source, { bucketId: BUCKET, key: "failed" }, { headers: [] }),
      /too few replicas/,
    );
    const notes: JournalEntry[] = [];
    for await (const { value } of db.list<JournalEntry>({ prefix: ["dj"] })) notes.push(value);
    assert.equal(notes.length, 1, "one note per part of the source");
    const [{ dataId, owner }] = notes;
    assert.equal(owner.kind, "copy");
    assert.equal(owner.key, "failed");
    const liveBlocks = async (store: Store) => {
      let live = 0;
      for await (const b of store.versions.scan(dataId)) if (!b.deleted) live++;
      return live;
    };
    assert.equal(await liveBlocks(before), 3);

    // No replica holds the version: the next process releases the copy's data.
    const after = new Store(db, blocks, { blockSize: 1024 });
    assert.equal(await releaseInterruptedUploads(after), 1);
    assert.equal(await liveBlocks(after), 0);
    assert.equal(await db.get(["dj", dataId]), undefined);
  }));

Deno.test("uploads that fail while their process runs on leave their notes to it, settled once their writes can no longer land", () =>
  withDisks(async (db, blocks) => {
    let now = Date.now();
    const blockSize = 16 * 1024;
    const store = new Store(db, blocks, { blockSize, nowMs: () => now });
    const random = (size: number) => bodyOf(crypto.getRandomValues(new Uint8Array(size)));
    await putObject(store, BUCKET, "source", random(20_000), { headers: [], maxSize: 1 << 20 });
    const source = (await getCurrent(store, BUCKET, "source"))!;
    const uploadId = await createUpload(store, BUCKET, "parts", []);

    // Too few replicas take the final writes (the node's only replica here): one
    // reaches it, the others none, but each may have reached another replica.
    const refused = () => Promise.reject(new Error("too few replicas"));
    const { updateIfAlone: commitAlone, insert } = store.objects;
    const recordAlone = store.uploads.updateIfAlone;
    const refuse = (refusing: boolean) => {
      store.objects.updateIfAlone = refusing
        ? (bucketId, key, update) => {
          if (key !== "reached") return (update(undefined), refused());
          return commitAlone.call(store.objects, bucketId, key, update).then(refused);
        }
        : commitAlone;
      // A copy commits through a write to every replica.
      store.objects.insert = refusing
        ? (entry) => entry.key === "copy" ? refused() : insert.call(store.objects, entry)
        : insert;
      store.uploads.updateIfAlone = refusing ? refused : recordAlone;
    };
    refuse(true);
    const put = (key: string, size: number, sizeHint?: number) =>
      putObject(store, BUCKET, key, random(size), { headers: [], maxSize: 1 << 20, sizeHint });
    await assert.rejects(put("noted", 40_000), /too few replicas/);
    await assert.rejects(put("reached", 40_000), /too few replicas/);
    // One block announced: its upload took no note, and leaves one.
    await assert.rejects(put("one-block", 10_000, 10_000), /too few replicas/);
    const active = (await getUpload(store, BUCKET, "parts", uploadId))!;
    await assert.rejects(
      uploadPart(store, active, 1, random(20_000), { sizeHint: 20_000 }),
      /too few replicas/,
    );
    await assert.rejects(
      copyObject(store, source, { bucketId: BUCKET, key: "copy" }, { headers: [] }),
      /too few replicas/,
    );
    // An upload of this process still going on.
    const going = crypto.randomUUID();
    await store.journal.begin(going, { kind: "object", bucketId: BUCKET, key: "going" });
    refuse(false);

    const notes = async () => {
      const found = new Map<string, string>();
      for await (const { value } of db.list<JournalEntry>({ prefix: ["dj"] })) {
        found.set(value.owner.key, value.dataId);
      }
      return found;
    };
    const left = await notes();
    assert.deepEqual([...left.keys()].sort(), [
      "copy",
      "going",
      "noted",
      "one-block",
      "parts",
      "reached",
    ]);
    const liveBlocks = async (dataId: string) => {
      let live = 0;
      for await (const b of store.versions.scan(dataId)) if (!b.deleted) live++;
      return live;
    };
    const leftData = ["noted", "one-block", "parts", "copy"].map((key) => left.get(key)!);
    const liveBefore = await Promise.all(leftData.map(liveBlocks));
    assert.deepEqual(liveBefore, [3, 1, 2, 2], "the failed uploads' data stays");
    assert.equal(await liveBlocks(left.get("reached")!), 3);

    // A write the uploads sent may still be on its way: their notes wait.
    assert.equal(await releaseInterruptedUploads(store), 0);
    now += LEFT_NOTE_SETTLE_DELAY_MS - 1;
    assert.equal(await releaseInterruptedUploads(store), 0);
    assert.equal((await notes()).size, 6);

    // No replica holds a record naming the data: it is released, the records left
    // uploading aborted, and the upload going on left alone. The data of the
    // version that reached a replica is kept.
    now += 1;
    assert.equal(await releaseInterruptedUploads(store), 4);
    assert.deepEqual([...(await notes()).keys()], ["going"]);
    assert.deepEqual(await Promise.all(leftData.map(liveBlocks)), [0, 0, 0, 0]);
    for (const key of ["noted", "one-block"]) {
      assert.equal(await store.objects.get(BUCKET, key), undefined, `${key}: aborted`);
    }
    assert.equal((await store.objects.get(BUCKET, "reached"))?.versions[0].state.state, "complete");
    assert.equal(await liveBlocks(left.get("reached")!), 3);
    now += LEFT_NOTE_SETTLE_DELAY_MS;
    assert.equal(await releaseInterruptedUploads(store), 0);
    assert.deepEqual([...(await notes()).keys()], ["going"]);
    await store.releases.settled(); // the aborts' own releases, before the store closes
  }));

Deno.test("PutObjects left uploading by another node's process are aborted once it restarted, or a day after its removal", () =>
  withDisks(async (db, blocks) => {
    // The peers as this node sees them: "restarted" answers with a new process,
    // "quiet" is down, "removed" left the layout and is down, "leaving" left it but is up.
    class Peers extends LocalReplication {
      override runOf(node: string): string | undefined {
        const runs: Record<string, string> = { restarted: "new", leaving: "its-run" };
        return node === this.nodeId ? this.run : runs[node];
      }
      override hasRole(node: string): boolean {
        return !["removed", "leaving"].includes(node);
      }
      override isUp(node: string): boolean {
        return ["restarted", "leaving", this.nodeId].includes(node);
      }
    }
    const now = Date.now();
    const store = new Store(db, blocks, {
      blockSize: 1024,
      replication: new Peers(),
      nowMs: () => now,
    });
    const minutesAgo = (minutes: number) => now - minutes * 60_000;
    const cases: [string, Coordinator, number, "aborted" | "kept"][] = [
      ["restarted", { node: "restarted", run: "old" }, minutesAgo(6), "aborted"],
      // A write its old process sent may be on its way yet.
      ["restarted-recent", { node: "restarted", run: "old" }, minutesAgo(4), "kept"],
      ["in-progress", { node: "restarted", run: "new" }, minutesAgo(60), "kept"],
      ["down", { node: "quiet", run: "its-run" }, minutesAgo(48 * 60), "kept"],
      ["removed", { node: "removed", run: "its-run" }, minutesAgo(25 * 60), "aborted"],
      ["removed-recent", { node: "removed", run: "its-run" }, minutesAgo(23 * 60), "kept"],
      ["leaving", { node: "leaving", run: "its-run" }, minutesAgo(48 * 60), "kept"],
    ];
    const dataIds = new Map<string, string>();
    for (const [key, coordinator, timestampMs] of cases) {
      dataIds.set(key, await leaveUploading(store, key, coordinator, timestampMs));
    }
    const { aborted, waiting } = await abortCutOffUploads(store, store.objects.scan(BUCKET));
    assert.equal(aborted, 2);
    assert.deepEqual(waiting, []);
    await store.releases.settled();
    for (const [key, , , outcome] of cases) {
      let live = 0;
      for await (const b of store.versions.scan(dataIds.get(key)!)) if (!b.deleted) live++;
      const state = (await store.objects.get(BUCKET, key))?.versions[0].state.state;
      if (outcome === "aborted") {
        assert.equal(state, undefined, `${key}: aborted`);
        assert.equal(live, 0, `${key}: its data released`);
      } else {
        assert.equal(state, "uploading", `${key}: left alone`);
        assert.equal(live, 1, `${key}: its data kept`);
      }
    }
  }));

Deno.test("a refused part or copy whose data cannot be released leaves its notes, settled once it can be", () =>
  withDisks(async (db, blocks) => {
    let now = Date.now();
    const store = new Store(db, blocks, { blockSize: 16 * 1024, nowMs: () => now });
    const random = (size: number) => bodyOf(crypto.getRandomValues(new Uint8Array(size)));
    await putObject(store, BUCKET, "source", random(20_000), { headers: [], maxSize: 1 << 20 });
    const source = (await getCurrent(store, BUCKET, "source"))!;
    const uploadId = await createUpload(store, BUCKET, "parts", []);
    const active = (await getUpload(store, BUCKET, "parts", uploadId))!;

    // Refused before their records (a bad digest, a precondition), while too
    // few replicas answer the release of their data.
    const releaseData = store.releaseData;
    store.releaseData = () => Promise.reject(new Error("too few replicas"));
    const refused = () => {
      throw new Error("refused");
    };
    await assert.rejects(
      uploadPart(store, active, 1, random(20_000), { sizeHint: 20_000, verify: refused }),
      /refused/,
    );
    await assert.rejects(
      copyObject(store, source, { bucketId: BUCKET, key: "copy" }, {
        headers: [],
        precondition: refused,
      }),
      /refused/,
    );
    await new Promise((r) => setTimeout(r, 50)); // a forgotten note goes after the answer
    const noted: string[] = [];
    for await (const { value } of db.list<JournalEntry>({ prefix: ["dj"] })) {
      noted.push(value.owner.key);
    }
    assert.deepEqual(noted.sort(), ["copy", "parts"], "the notes stay");

    store.releaseData = releaseData;
    now += LEFT_NOTE_SETTLE_DELAY_MS;
    assert.equal(await releaseInterruptedUploads(store), 2);
    let notes = 0;
    for await (const _ of db.list({ prefix: ["dj"] })) notes++;
    assert.equal(notes, 0);
  }));

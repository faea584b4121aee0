import assert from "node:assert/strict";
import {
  type DiskReading,
  FreeSpace,
  isOutOfSpace,
  OutOfSpaceError,
  reserveWarning,
  withFullDiskAdvice,
  writeErrorWarning,
} from "./free_space.ts";

const MiB = 1024 * 1024;

/** A disk whose free space the test sets, and a clock it moves. */
function fakeDisk(free: number) {
  const disk = { free, reads: 0, fail: false, now: 0 };
  // Like statfs, the reading is taken once the caller has gone on.
  const read = async (): Promise<DiskReading> => {
    disk.reads++;
    await Promise.resolve();
    if (disk.fail) throw new Error("statfs failed");
    return { free: disk.free, total: 1000 * MiB };
  };
  return { disk, read, nowMs: () => disk.now };
}

Deno.test("claims are refused once they would leave less than the reserve free", async () => {
  const { disk, read, nowMs } = fakeDisk(100 * MiB);
  const space = new FreeSpace("data disk", "/data", 64 * MiB, read, nowMs);
  await space.refresh();
  space.claim(20 * MiB);
  space.claim(16 * MiB);
  assert.equal(space.free, 64 * MiB);
  assert.throws(
    () => space.claim(1),
    (e: unknown) =>
      e instanceof OutOfSpaceError &&
      e.message === "Not enough free space on the data disk (64 MiB free, 64 MiB kept free)",
  );
  space.claim(0); // exactly the reserve left: still allowed
  assert.equal(space.free, 64 * MiB, "a refused claim counts nothing");

  // Space freed on the disk is seen at the next reading, at most a second later.
  disk.free = 200 * MiB;
  disk.now = 999;
  assert.throws(() => space.claim(MiB), OutOfSpaceError);
  disk.now = 1000;
  assert.throws(() => space.claim(MiB), OutOfSpaceError); // the new reading is on its way
  await space.refresh();
  space.claim(MiB);
  assert.equal(space.free, 199 * MiB);
});

Deno.test("claims made while the disk is read are kept against the new reading", async () => {
  const { disk, read, nowMs } = fakeDisk(100 * MiB);
  const space = new FreeSpace("data disk", "/data", 10 * MiB, read, nowMs);
  await space.refresh();
  space.claim(30 * MiB);
  const reading = space.refresh(); // statfs sees the 30 MiB written...
  disk.free = 70 * MiB;
  space.claim(5 * MiB); // ...but not these 5, claimed while it ran
  await reading;
  assert.equal(space.free, 65 * MiB);
});

Deno.test("a reserve of 0, or a disk that cannot be read, refuses nothing", async () => {
  const zero = fakeDisk(0);
  const off = new FreeSpace("data disk", "/data", 0, zero.read, zero.nowMs);
  await off.refresh();
  off.claim(10 * MiB);
  assert.equal(zero.disk.reads, 1, "a disabled reserve reads the disk only when asked");

  const broken = fakeDisk(0);
  broken.disk.fail = true;
  const unread = new FreeSpace("data disk", "/data", MiB, broken.read, broken.nowMs);
  await assert.rejects(unread.refresh(), /statfs failed/);
  unread.claim(10 * MiB);
  assert.equal(unread.free, undefined);
});

Deno.test("full disks are recognised in errors, local or relayed as text", () => {
  assert.ok(isOutOfSpace(new OutOfSpaceError("data disk", 0, MiB)));
  assert.ok(isOutOfSpace(new Error("block/put: Not enough free space on the data disk (...)")));
  assert.ok(isOutOfSpace(new Error("Cannot write block: No space left on device (os error 28)")));
  assert.ok(isOutOfSpace(new Error("Cannot commit: database or disk is full")));
  assert.ok(!isOutOfSpace(new Error("connection refused")));
  assert.ok(!isOutOfSpace(undefined));
});

Deno.test("a refused write shows in the disk's space until a write succeeds, and status warns of it", async () => {
  const { disk, read, nowMs } = fakeDisk(100 * MiB);
  const space = new FreeSpace("data disk", "/data", 64 * MiB, read, nowMs);
  await space.refresh();
  assert.equal(space.space?.writeError, undefined);
  disk.now = Date.UTC(2026, 10, 27, 4, 2, 50);
  space.writeFailed(new Error("Read-only file system (os error 30)"));
  assert.deepEqual(space.space?.writeError, {
    message: "Read-only file system (os error 30)",
    atMs: disk.now,
  });
  assert.equal(
    writeErrorWarning("Node abc", "data disk", space.space),
    "Node abc: its data disk refused a write at 2026-11-27T04:02:50.000Z (Read-only file system " +
      "(os error 30)); until it accepts writes again, they go to the other replicas " +
      "(where there are), or fail. " +
      "Check the disk (dmesg, mount options).",
  );
  space.writeSucceeded();
  assert.equal(space.space?.writeError, undefined);
  assert.equal(writeErrorWarning("Node abc", "data disk", space.space), undefined);
  assert.equal(
    writeErrorWarning("n", "data disk", {}),
    undefined,
    "an older node's status",
  );
  assert.equal(writeErrorWarning("n", "data disk", null), undefined);
});

Deno.test("a write refused for want of space is behind a disk read with room again; other refusals stay", async () => {
  const { disk, read, nowMs } = fakeDisk(100 * MiB);
  const space = new FreeSpace("data disk", "/data", 64 * MiB, read, nowMs);
  disk.free = 0;
  await space.refresh();
  space.writeFailed(new Error("No space left on device (os error 28)"));
  disk.free = 100 * MiB;
  await space.refresh();
  assert.ok(space.space?.writeError, "past the reserve, but without room for a few blocks");
  disk.free = 200 * MiB;
  await space.refresh();
  assert.equal(space.space?.writeError, undefined, "room again");

  space.writeFailed(new Error("Read-only file system (os error 30)"));
  await space.refresh();
  assert.ok(space.space?.writeError, "a read-only disk stays refused until a write succeeds");
});

Deno.test("status warns about a disk under its reserve, and only then", () => {
  assert.equal(
    reserveWarning("Node abc", "data disk", { free: 10 * MiB, reserve: 128 * MiB }, true),
    "Node abc: its data disk has 10 MiB free, less than its min_free_space (128 MiB): " +
      "it stores no new blocks (writes go to the other replicas, and are refused once too few " +
      "of them have room) until objects are deleted or space is added.",
  );
  assert.match(
    reserveWarning("Node abc", "metadata disk", { free: 0, reserve: MiB }, true)!,
    /: it stores no new metadata entries \(writes go to the other replicas/,
  );
  assert.equal(
    reserveWarning("This node", "data disk", { free: 0, reserve: MiB }, false),
    "This node: its data disk has 0 B free, less than its min_free_space (1 MiB): " +
      "it refuses uploads until objects are deleted or space is added.",
  );
  assert.match(
    reserveWarning("This node", "metadata disk", { free: 0, reserve: MiB }, false)!,
    /^This node: its metadata disk has 0 B free, .* it refuses uploads until/,
  );
  for (const inCluster of [false, true]) {
    const warn = (space: Parameters<typeof reserveWarning>[2]) =>
      reserveWarning("n", "data disk", space, inCluster);
    assert.equal(warn({ free: 2 * MiB, reserve: MiB }), undefined);
    assert.equal(warn({ free: 0, reserve: 0 }), undefined);
    assert.equal(warn({ free: 0 }), undefined, "an older node's status");
    assert.equal(warn(null), undefined);
  }
});

Deno.test("a start stopped by a full disk says which disk, naming one disk once", async () => {
  const meta = await Deno.makeTempDir({ prefix: "remise-meta-" });
  const data = await Deno.makeTempDir({ prefix: "remise-data-" });
  try {
    const dirs = [{ key: "metadata_dir", path: meta }, { key: "data_dir", path: data }];
    const failure = new Error("Cannot open the metadata store: disk I/O error");
    const full = (path: string) => Promise.resolve({ free: path === meta ? 8192 : 0, total: MiB });
    const advised = await withFullDiskAdvice(failure, dirs, full) as Error;
    assert.equal(
      advised.message,
      `Cannot open the metadata store: disk I/O error. The disk of metadata_dir (${meta}) and ` +
        `data_dir (${data}) is full (8 KiB free): make room on it, then start remise again ` +
        "(remise keeps min_free_space free for itself, but other programs can fill a disk).",
    );
    assert.equal(advised.cause, failure);

    const roomy = () => Promise.resolve({ free: 4 * MiB, total: 100 * MiB });
    assert.equal(await withFullDiskAdvice(failure, dirs, roomy), failure, "not full: as it was");
    const unreadable = () => Promise.reject(new Error("statfs failed"));
    assert.equal(await withFullDiskAdvice(failure, dirs, unreadable), failure);
  } finally {
    await Deno.remove(meta, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

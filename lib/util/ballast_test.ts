import assert from "node:assert/strict";
import { Ballast, BALLAST_BYTES } from "./ballast.ts";
import type { DiskReading } from "./free_space.ts";

const MiB = 1024 * 1024;

/** A metadata_dir in a temporary directory, on a disk whose free space the test sets. */
async function withMetadataDir(
  fn: (dir: string, disk: { free: number }, read: () => Promise<DiskReading>) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "remise-ballast-" });
  const disk = { free: 0 };
  try {
    await fn(dir, disk, () => Promise.resolve({ free: disk.free, total: 10_000 * MiB }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the ballast is made, of written blocks, once the disk has room past the reserve", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 128 * MiB, read);
    disk.free = 128 * MiB + BALLAST_BYTES; // room for it, but none past it
    assert.equal(await ballast.keep(), false);
    await assert.rejects(Deno.stat(ballast.path), Deno.errors.NotFound);

    disk.free = 1000 * MiB;
    assert.equal(await ballast.keep(), true);
    const stat = await Deno.stat(ballast.path);
    assert.equal(stat.size, BALLAST_BYTES);
    // A sparse file would hold no space: its blocks are allocated.
    assert.ok(stat.blocks! * 512 >= BALLAST_BYTES, `${stat.blocks} blocks of 512 bytes`);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ballast"]);

    disk.free = 0; // a ballast already there stays, whatever the disk holds
    assert.equal(await ballast.keep(), true);
    assert.equal((await Deno.stat(ballast.path)).size, BALLAST_BYTES);
  });
});

Deno.test("a ballast cut short (a crash while it was written) is written again", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 128 * MiB, read);
    await Deno.writeFile(ballast.path, new Uint8Array(MiB));
    disk.free = 1000 * MiB;
    assert.equal(await ballast.keep(), true);
    assert.equal((await Deno.stat(ballast.path)).size, BALLAST_BYTES);
  });
});

Deno.test("a node that keeps no reserve keeps no ballast", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 0, read);
    disk.free = 1000 * MiB;
    assert.equal(await ballast.keep(), false);
    await assert.rejects(Deno.stat(ballast.path), Deno.errors.NotFound);
  });
});

Deno.test("at start, the ballast gives its space back when the disk has less free than it holds", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 128 * MiB, read);
    disk.free = 1000 * MiB;
    await ballast.keep();

    disk.free = BALLAST_BYTES; // as much free as it holds: kept
    assert.equal(await ballast.releaseIfFull(), false);
    assert.equal((await Deno.stat(ballast.path)).size, BALLAST_BYTES);

    disk.free = 0; // filled by another program to the last byte
    assert.equal(await ballast.releaseIfFull(), true);
    await assert.rejects(Deno.stat(ballast.path), Deno.errors.NotFound);
    assert.equal(await ballast.releaseIfFull(), false, "nothing left to give");

    // Made again once the disk has room past the reserve.
    disk.free = 300 * MiB;
    assert.equal(await ballast.keep(), true);
  });
});

Deno.test("a metadata commit that failed for want of space gives the ballast's space back, once", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 128 * MiB, read);
    disk.free = 1000 * MiB;
    await ballast.keep();
    // Commits fail together: one removal, the others find it done.
    const released = await Promise.all([
      ballast.releaseAfterFailedCommit(),
      ballast.releaseAfterFailedCommit(),
      ballast.releaseAfterFailedCommit(),
    ]);
    assert.deepEqual(released, [true, true, true]);
    await assert.rejects(Deno.stat(ballast.path), Deno.errors.NotFound);
    assert.equal(await ballast.releaseAfterFailedCommit(), false, "nothing left to give");
  });
});

Deno.test("checks that overlap make the ballast once", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    const ballast = new Ballast(dir, 128 * MiB, read);
    disk.free = 1000 * MiB;
    assert.deepEqual(await Promise.all([ballast.keep(), ballast.keep()]), [true, true]);
    assert.equal((await Deno.stat(ballast.path)).size, BALLAST_BYTES);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ballast"]);
  });
});

Deno.test("a ballast that cannot be written is reported missing, with a warning, not an error", async () => {
  await withMetadataDir(async (dir, disk, read) => {
    // A directory where the ballast's partial file would go: opening it as a file fails.
    await Deno.mkdir(`${dir}/ballast.partial`);
    await Deno.writeTextFile(`${dir}/ballast.partial/in-the-way`, "x");
    disk.free = 1000 * MiB;
    const ballast = new Ballast(dir, 128 * MiB, read);
    assert.equal(await ballast.keep(), false);
    await assert.rejects(Deno.stat(ballast.path), Deno.errors.NotFound);
  });
});

import assert from "node:assert/strict";
import { BlockStore, CorruptBlockError } from "./block_store.ts";
import { crc32, sha256Hex } from "../util/hash.ts";
import { FreeSpace } from "../util/free_space.ts";

Deno.test("a block write the disk refuses is reported on the disk's space until one succeeds", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const read = () => Promise.resolve({ free: 2 ** 30, total: 2 ** 31 });
    const space = new FreeSpace("data disk", dir, 0, read);
    await space.refresh();
    const store = await BlockStore.open(dir, undefined, space);
    const refused = new TextEncoder().encode("refused block");
    const refusedHash = sha256Hex(refused);
    // A file where the block's directory goes: the write fails as on a broken disk.
    const blockDir = store.pathOf(refusedHash).split("/").slice(0, -2).join("/");
    await Deno.writeTextFile(blockDir, "not a directory");
    await assert.rejects(() => store.write(refusedHash, refused), /Cannot write block/);
    assert.match(
      space.space?.writeError?.message ?? "",
      new RegExp(`Cannot write block ${refusedHash}`),
    );

    let accepted = new TextEncoder().encode("accepted block");
    while (sha256Hex(accepted).slice(0, 2) === refusedHash.slice(0, 2)) {
      accepted = new TextEncoder().encode(`accepted block ${accepted.length}`);
    }
    await store.write(sha256Hex(accepted), accepted);
    assert.equal(space.space?.writeError, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("BlockStore writes durably, reads back, detects corruption and deletes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await BlockStore.open(dir);
    const data = new TextEncoder().encode("hello block");
    const hash = sha256Hex(data);
    assert.equal(await store.has(hash), false);
    assert.equal(await store.read(hash), undefined);
    await store.write(hash, data);
    await store.write(hash, data); // rewriting the same block is harmless
    assert.equal(await store.has(hash), true);
    assert.deepEqual(await store.read(hash), data);
    assert.deepEqual(
      await store.read(hash, { size: data.byteLength, crc32: crc32(data) }),
      data,
      "read checked by its CRC-32",
    );
    const listed = [];
    for await (const h of store.list()) listed.push(h);
    assert.deepEqual(listed, [hash]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/tmp`)], [], "no temporary file is left");

    await Deno.writeFile(store.pathOf(hash), new TextEncoder().encode("hellO block"));
    await assert.rejects(() => store.read(hash), CorruptBlockError);
    await assert.rejects(
      () => store.read(hash, { size: data.byteLength, crc32: crc32(data) }),
      CorruptBlockError,
    );
    await Deno.writeFile(store.pathOf(hash), data.subarray(0, 5));
    await assert.rejects(
      () => store.read(hash, { size: data.byteLength, crc32: crc32(data) }),
      CorruptBlockError,
      "a truncated file is a corrupted block",
    );

    await store.delete(hash);
    assert.equal(await store.has(hash), false);
    await store.delete(hash);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

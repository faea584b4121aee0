import assert from "node:assert/strict";
import { LOCK_FILE, lockDirectory, lockDirectoryInUse } from "./directory_lock.ts";

Deno.test("directory lock: a second holder is refused until the first lets go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-lock-test-" });
  try {
    const first = await lockDirectory(dir, "metadata_dir", "/etc/remise.toml");
    await assert.rejects(
      lockDirectory(dir, "metadata_dir", "/etc/remise.toml"),
      {
        name: "DirectoriesNotReadyError",
        message: `Another remise process is using ${dir} (metadata_dir in /etc/remise.toml): ` +
          "stop it first, or give this node directories of its own",
      },
    );
    first.close();
    (await lockDirectory(dir, "metadata_dir", "/etc/remise.toml")).close();
    assert.ok((await Deno.stat(`${dir}/${LOCK_FILE}`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("directory lock: a directory where the lock cannot be made names the key", async () => {
  await assert.rejects(
    lockDirectory("/proc/no-such-dir", "data_dir", "/etc/remise.toml"),
    /^DirectoriesNotReadyError: Invalid configuration in \/etc\/remise\.toml: key "data_dir": cannot open /,
  );
});

Deno.test("directory lock: a directory in use is locked, an empty or missing one left untouched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-lock-test-" });
  try {
    assert.equal(await lockDirectoryInUse(`${dir}/missing`, "data_dir", "c"), undefined);
    assert.equal(await lockDirectoryInUse(dir, "data_dir", "c"), undefined);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written in an empty directory");
    await Deno.writeTextFile(`${dir}/remise-data-dir`, "id\n");
    const held = await lockDirectoryInUse(dir, "data_dir", "c");
    assert.ok(held);
    await assert.rejects(lockDirectory(dir, "data_dir", "c"), /Another remise process/);
    held.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

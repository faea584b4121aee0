import assert from "node:assert/strict";
import { LOCK_FILE, lockDirectory } from "./directory_lock.ts";

Deno.test("directory lock: a second holder is refused until the first lets go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remise-lock-test-" });
  try {
    const first = await lockDirectory(dir, "metadata_dir", "/etc/remise.toml");
    await assert.rejects(
      lockDirectory(dir, "metadata_dir", "/etc/remise.toml"),
      {
        name: "ConfigError",
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
    /^ConfigError: Invalid configuration in \/etc\/remise\.toml: key "data_dir": cannot open /,
  );
});

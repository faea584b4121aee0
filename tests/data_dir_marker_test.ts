/**
 * A node refuses to start on a data_dir that is not the one it stored its
 * blocks in (a data disk not mounted at boot), or beside a metadata_dir that
 * does not know it (a metadata disk not mounted), and says what to do; once
 * the right disks are back, it starts and serves what it stored.
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { TestServer, withServer } from "./harness.ts";
import { TestCluster } from "./cluster_harness.ts";
import { getBytes, sameBytes } from "./_s3_helpers.ts";
import { EXIT_CONFIG } from "../lib/cli/cli.ts";

/**
 * Starting `server` fails with output matching every pattern, and exit code
 * 1: a refusal that may pass once the right disk is mounted, which systemd
 * retries (a configuration error exits EXIT_CONFIG, which it does not).
 */
function assertRefusesToStart(server: TestServer, ...patterns: RegExp[]): Promise<string> {
  return assertRefusesToStartWith(1, server, ...patterns);
}

async function assertRefusesToStartWith(
  code: number,
  server: TestServer,
  ...patterns: RegExp[]
): Promise<string> {
  let output = "";
  await assert.rejects(server.launch(), (e: Error) => {
    output = e.message;
    assert.match(output, new RegExp(`remise exited with code ${code} at start`));
    for (const pattern of patterns) assert.match(output, pattern);
    return true;
  });
  return output;
}

Deno.test("a node does not start on a data_dir or metadata_dir that is not its own", async () => {
  await withServer(async (server, _s3, credentials) => {
    const data = new TextEncoder().encode("kept on the data disk ".repeat(100_000));
    const s3 = server.client(credentials);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "marked" }));
      await s3.send(new PutObjectCommand({ Bucket: "marked", Key: "big", Body: data }));
    } finally {
      s3.destroy();
    }
    await server.stop();
    const dataDir = `${server.dir}/data`;
    const metaDir = `${server.dir}/meta`;

    // The data disk is not mounted, data_dir a directory on it: data_dir is missing.
    await Deno.rename(dataDir, `${dataDir}.disk`);
    const refused = await assertRefusesToStart(
      server,
      /data_dir ".*\/data" is not the one this node stored its blocks in/,
      /is its disk mounted\?/,
    );
    // Not made on the system disk, where the data disk once mounted would hide what it got.
    await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound);
    // Mounted on an empty mount point: the same.
    await Deno.mkdir(dataDir);
    await assertRefusesToStart(server, /is not the one this node stored its blocks in/);
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
    await Deno.remove(dataDir, { recursive: true });
    await Deno.rename(`${dataDir}.disk`, dataDir);

    // The metadata disk is not mounted: metadata_dir is empty, data_dir holds blocks.
    await Deno.rename(metaDir, `${metaDir}.disk`);
    await assertRefusesToStart(
      server,
      /holds the blocks of a remise store whose metadata is not in metadata_dir/,
      /is the metadata disk mounted\?/,
    );
    await Deno.remove(metaDir, { recursive: true });
    await Deno.rename(`${metaDir}.disk`, metaDir);

    // Both disks back: the node starts and serves what it stored.
    await server.launch();
    const again = server.client(credentials);
    try {
      assert.ok(sameBytes(await getBytes(again, "marked", "big"), data));
    } finally {
      again.destroy();
    }

    // A data disk replaced on purpose: the command the message gives marks the new one.
    await server.stop();
    await Deno.rename(dataDir, `${dataDir}.old`);
    await Deno.mkdir(dataDir);
    const command = /printf '%s\\n' (\S+) > (\S+)/.exec(refused);
    assert.ok(command, refused);
    assert.equal(command[2], `${dataDir}/remise-data-dir`);
    await Deno.writeTextFile(command[2], `${command[1]}\n`);
    await server.launch();
  });
});

Deno.test("a node does not start on another node's data_dir", async () => {
  const one = await TestServer.start();
  const two = await TestServer.start();
  try {
    await Promise.all([one.stop(), two.stop()]);
    await Deno.rename(`${two.dir}/data`, `${two.dir}/data.own`);
    await Deno.rename(`${one.dir}/data`, `${two.dir}/data`);
    await assertRefusesToStart(two, /holds the blocks of another remise store/);
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

Deno.test("a node started on a running node's data_dir is refused before it writes a marker there", async () => {
  const one = await TestServer.start();
  const two = await TestServer.start();
  try {
    await two.stop();
    // A copied configuration whose metadata_dir was changed, but not its data_dir.
    const config = await Deno.readTextFile(two.configPath);
    await Deno.writeTextFile(two.configPath, config.replace(`${two.dir}/data`, `${one.dir}/data`));
    const markerPath = `${one.dir}/data/remise-data-dir`;
    const marker = await Deno.readTextFile(markerPath);
    await assertRefusesToStart(two, /Another remise process is using .*\/data \(data_dir in /);
    // Even with the marker gone (the other message's advice), the running node's data_dir is not
    // marked as the second node's.
    await Deno.remove(markerPath);
    await assertRefusesToStart(two, /Another remise process is using .*\/data \(data_dir in /);
    await assert.rejects(Deno.stat(markerPath), Deno.errors.NotFound);
    await Deno.writeTextFile(markerPath, marker);
    await one.stop();
    await one.launch();
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

Deno.test("a store from before markers is marked at its first start, and keeps its objects", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "older" }));
    const data = new TextEncoder().encode("stored before markers ".repeat(60_000));
    await s3.send(new PutObjectCommand({ Bucket: "older", Key: "object", Body: data }));
    await server.stop();
    // What a version without markers leaves: neither the file nor the record.
    await Deno.remove(`${server.dir}/data/remise-data-dir`);
    const kv = await Deno.openKv(`${server.dir}/meta/metadata.kv`);
    try {
      await kv.delete(["system", "data_dir_marker"]);
    } finally {
      kv.close();
    }
    await server.launch();
    const marker = (await Deno.readTextFile(`${server.dir}/data/remise-data-dir`)).trim();
    assert.match(marker, /^[0-9a-f-]{36}$/);
    const again = server.client(credentials);
    try {
      assert.ok(sameBytes(await getBytes(again, "older", "object"), data));
    } finally {
      again.destroy();
    }
  });
});

Deno.test("a cluster node does not start on metadata restored from a backup older than the tombstone delay", async () => {
  const cluster = await TestCluster.start(1, { extraConfig: "replication_factor = 3" });
  try {
    const server = cluster.nodes[0].server;
    await server.stop();
    const file = `${server.dir}/meta/metadata-current-at`;
    const recorded = Number((await Deno.readTextFile(file)).trim());
    assert.ok(
      Math.abs(recorded - Date.now()) < 60_000,
      "the node recorded when its metadata was current",
    );
    // What a restore looks like: the node ran two days past the time of the store it now has.
    await Deno.writeTextFile(file, `${recorded + 2 * 24 * 3600_000}\n`);
    // Restarting will not help: the unit does not restart on EXIT_CONFIG.
    await assertRefusesToStartWith(
      EXIT_CONFIG,
      server,
      /it was restored from an older backup/,
      /Rebuild this node from the others instead: stop it, empty metadata_dir and data_dir/,
    );
    // The operator who restored every node's metadata says so by deleting the file.
    await Deno.remove(file);
    await server.launch();
  } finally {
    await cluster.close();
  }
});

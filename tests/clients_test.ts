/**
 * The S3 clients people run, as separate processes against a real
 * `remise server`: the Debian `rclone`, `s3cmd`, `restic`, boto3 and `aws` (aws-cli v2), each
 * with its own HOME and configuration file and nothing inherited from the
 * machine's environment.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import {
  checkExit,
  cleanClientEnv,
  type Credentials,
  deterministicBytes,
  deterministicStream,
  REGION,
  runProgram,
  TestServer,
} from "./harness.ts";

const MiB = 1024 * 1024;
const RCLONE = "/usr/bin/rclone";
const S3CMD = "/usr/bin/s3cmd";
const AWS = "/usr/bin/aws";
const PYTHON = "/usr/bin/python3";
const RESTIC = "/usr/bin/restic";

/**
 * boto3 against the server: objects through a client signing with Signature
 * V2 ("s3"), and GETs through presigned URLs of the default signer and of V2.
 */
const BOTO3_ROUND = `
import os, urllib.request, boto3, botocore
from botocore.config import Config
def client(**config):
    return boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="test-region",
        aws_access_key_id=os.environ["KEY_ID"], aws_secret_access_key=os.environ["SECRET"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))
print("boto3", boto3.__version__, "botocore", botocore.__version__)
v4, v2 = client(signature_version="s3v4"), client(signature_version="s3")
v4.create_bucket(Bucket="boto3-bucket")
v2.put_object(Bucket="boto3-bucket", Key="dir/a b.txt", Body=b"hello", ContentType="text/plain")
got = v2.get_object(Bucket="boto3-bucket", Key="dir/a b.txt")
assert got["Body"].read() == b"hello" and got["ContentType"] == "text/plain", got
listed = v2.list_objects_v2(Bucket="boto3-bucket", Prefix="dir/")
assert [o["Key"] for o in listed["Contents"]] == ["dir/a b.txt"], listed
params = {"Bucket": "boto3-bucket", "Key": "dir/a b.txt", "ResponseContentType": "x/y"}
default_url = client().generate_presigned_url("get_object", Params=params, ExpiresIn=300)
print("default presign:", default_url)
for url in [default_url, v2.generate_presigned_url("get_object", Params=params, ExpiresIn=300)]:
    with urllib.request.urlopen(url) as res:
        assert res.read() == b"hello" and res.headers["Content-Type"] == "x/y", url
try:
    urllib.request.urlopen(default_url.replace("a%20b", "a%20c"))
    raise AssertionError("a URL for another key was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
v2.delete_object(Bucket="boto3-bucket", Key="dir/a b.txt")
v2.delete_bucket(Bucket="boto3-bucket")
print("all ok")
`;

/** Writes a tree of several hundred files of mixed sizes; returns relative path -> size. */
async function makeTree(root: string, withLarge = true): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  const small = [0, 1, 2, 17, 100, 1023, 1024, 1025, 3000, 3072, 3073, 4096, 5000, 9999];
  let n = 0;
  for (let d = 0; d < 10; d++) {
    for (let s = 0; s < 3; s++) {
      for (let f = 0; f < 10; f++) {
        const name = f === 3
          ? `file ${f} with space.txt`
          : f === 7
          ? `fïlé-${f}-ünïcode.bin`
          : `f${f}.dat`;
        files.set(`dir${d}/sub${s}/${name}`, small[n++ % small.length] + (f === 9 ? n * 7 : 0));
      }
    }
  }
  for (let i = 0; i < 8; i++) files.set(`top-level-${i}.txt`, small[i]);
  for (let i = 0; i < 6; i++) files.set(`medium/m${i}.bin`, MiB + i * 377_777);
  if (withLarge) files.set("large/twelve-mib.bin", 12 * MiB + 5);
  let seed = 1000;
  for (const [path, size] of files) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(full, deterministicBytes(size, seed++));
  }
  return files;
}

/** Every regular file under `root`, relative path -> size. */
async function walk(root: string, dir = ""): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const entry of Deno.readDir(dir ? `${root}/${dir}` : root)) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      for (const [k, v] of await walk(root, rel)) out.set(k, v);
    } else if (entry.isFile) {
      out.set(rel, (await Deno.stat(`${root}/${rel}`)).size);
    }
  }
  return out;
}

/** Asserts `b` holds exactly the files of `a`, byte for byte. */
async function assertSameTree(a: string, b: string): Promise<void> {
  const left = await walk(a);
  const right = await walk(b);
  assert.deepEqual([...right.keys()].sort(), [...left.keys()].sort(), "the file lists differ");
  for (const [rel, size] of left) {
    assert.equal(right.get(rel), size, `size of ${rel}`);
    const x = await Deno.readFile(`${a}/${rel}`);
    const y = await Deno.readFile(`${b}/${rel}`);
    assert.ok(Buffer.from(x).equals(Buffer.from(y)), `content of ${rel} differs`);
  }
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

Deno.test("external S3 clients: rclone, s3cmd, boto3, restic, aws-cli", async (t) => {
  const server = await TestServer.start();
  const credentials = await server.createKey("clients");
  const s3 = server.client(credentials);
  const work = await Deno.makeTempDir({ prefix: "remise-clients-" });
  const homes: string[] = [];
  try {
    const tree = `${work}/tree`;
    const files = await makeTree(tree);
    assert.ok(files.size >= 300, `${files.size} files`);

    await t.step("rclone: sync a tree up (multipart for 12 MiB), check, sync down", async () => {
      const { env, home } = await cleanClientEnv();
      homes.push(home);
      const config = `${home}/rclone.conf`;
      await Deno.writeTextFile(config, rcloneConfig(server, credentials));
      const rclone = (...args: string[]) =>
        runProgram(RCLONE, [
          "--config",
          config,
          "--retries",
          "1",
          "--low-level-retries",
          "1",
          ...args,
        ], env);
      const common = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--transfers", "8"];
      checkExit(await rclone("mkdir", "remise:rclone-bucket"), "rclone mkdir");
      checkExit(
        await rclone("sync", tree, "remise:rclone-bucket/tree", ...common),
        "rclone sync up",
      );
      checkExit(await rclone("check", tree, "remise:rclone-bucket/tree"), "rclone check");
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: "rclone-bucket", Key: "tree/large/twelve-mib.bin" }),
      );
      assert.match(head.ETag ?? "", /-3"$/, `the 12 MiB file went up in 3 parts: ${head.ETag}`);
      assert.equal(head.ContentLength, 12 * MiB + 5);
      const listed = checkExit(
        await rclone("lsf", "-R", "--files-only", "remise:rclone-bucket/tree"),
        "rclone lsf",
      );
      assert.deepEqual(listed.trim().split("\n").sort(), [...files.keys()].sort());
      const down = `${work}/rclone-down`;
      checkExit(
        await rclone("sync", "remise:rclone-bucket/tree", down, ...common),
        "rclone sync down",
      );
      await assertSameTree(tree, down);
      // A second sync after a change uploads the change and deletes what went away.
      await Deno.writeTextFile(`${down}/dir0/sub0/f0.dat`, "changed");
      await Deno.remove(`${down}/top-level-0.txt`);
      checkExit(
        await rclone("sync", down, "remise:rclone-bucket/tree", ...common),
        "rclone sync again",
      );
      checkExit(await rclone("check", down, "remise:rclone-bucket/tree"), "rclone check again");
    });

    await t.step("rclone with Signature V2 (v2_auth): sync up with multipart, check", async () => {
      const { env, home } = await cleanClientEnv();
      homes.push(home);
      const config = `${home}/rclone.conf`;
      await Deno.writeTextFile(config, rcloneConfig(server, credentials) + "v2_auth = true\n");
      const rclone = (...args: string[]) =>
        runProgram(RCLONE, ["--config", config, "--retries", "1", ...args], env);
      const some = `${work}/rclone-v2`;
      await Deno.mkdir(`${some}/large`, { recursive: true });
      await Deno.copyFile(`${tree}/large/twelve-mib.bin`, `${some}/large/twelve-mib.bin`);
      await Deno.copyFile(`${tree}/top-level-0.txt`, `${some}/empty.txt`);
      await Deno.copyFile(`${tree}/top-level-3.txt`, `${some}/small.txt`);
      checkExit(await rclone("mkdir", "remise:rclone-v2"), "rclone mkdir");
      checkExit(
        await rclone(
          "sync",
          some,
          "remise:rclone-v2",
          "--s3-upload-cutoff",
          "5M",
          "--s3-chunk-size",
          "5M",
        ),
        "rclone sync up",
      );
      checkExit(await rclone("check", some, "remise:rclone-v2"), "rclone check");
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: "rclone-v2", Key: "large/twelve-mib.bin" }),
      );
      assert.match(head.ETag ?? "", /-3"$/, `the 12 MiB file went up in 3 parts: ${head.ETag}`);
      checkExit(await rclone("purge", "remise:rclone-v2"), "rclone purge");
    });

    /** s3cmd's usual round of commands, signing with Signature V4 or V2. */
    const s3cmdRound = async (signatureV2: boolean) => {
      const bucket = signatureV2 ? "s3cmd-v2-bucket" : "s3cmd-bucket";
      const { env, home } = await cleanClientEnv();
      homes.push(home);
      const config = `${home}/s3cfg`;
      await Deno.writeTextFile(config, s3cmdConfig(server, credentials, signatureV2));
      const s3cmd = (...args: string[]) => runProgram(S3CMD, ["-c", config, ...args], env);
      checkExit(await s3cmd("mb", `s3://${bucket}`), "s3cmd mb");
      const small = `${tree}/dir1/sub1/file 3 with space.txt`;
      checkExit(await s3cmd("put", small, `s3://${bucket}/dir/small file.txt`), "s3cmd put");
      checkExit(
        await s3cmd("put", `${tree}/top-level-1.txt`, `s3://${bucket}/dir/one-byte`),
        "s3cmd put",
      );
      const ls = checkExit(await s3cmd("ls", `s3://${bucket}/dir/`), "s3cmd ls");
      assert.match(ls, new RegExp(`s3://${bucket}/dir/small file\\.txt`));
      assert.match(ls, new RegExp(`s3://${bucket}/dir/one-byte`));
      const top = checkExit(await s3cmd("ls", `s3://${bucket}`), "s3cmd ls bucket");
      assert.match(top, new RegExp(`DIR\\s+s3://${bucket}/dir/`));
      const buckets = checkExit(await s3cmd("ls"), "s3cmd ls buckets");
      assert.match(buckets, new RegExp(`s3://${bucket}`));
      const got = `${work}/${bucket}-small`;
      checkExit(await s3cmd("get", `s3://${bucket}/dir/small file.txt`, got), "s3cmd get");
      assert.deepEqual(await Deno.readFile(got), await Deno.readFile(small));

      const large = `${tree}/large/twelve-mib.bin`;
      checkExit(
        await s3cmd("put", "--multipart-chunk-size-mb=5", large, `s3://${bucket}/large.bin`),
        "s3cmd multipart put",
      );
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: bucket, Key: "large.bin" }),
      );
      assert.match(head.ETag ?? "", /-3"$/, `s3cmd did a 3-part upload: ${head.ETag}`);
      const gotLarge = `${work}/${bucket}-large`;
      checkExit(await s3cmd("get", `s3://${bucket}/large.bin`, gotLarge), "s3cmd get large");
      assert.equal(await fileSha256(gotLarge), await fileSha256(large));
      const info = checkExit(await s3cmd("info", `s3://${bucket}/large.bin`), "s3cmd info");
      assert.match(info, /File size:\s+12582917/);

      checkExit(await s3cmd("del", `s3://${bucket}/dir/small file.txt`), "s3cmd del");
      checkExit(await s3cmd("del", `s3://${bucket}/dir/one-byte`), "s3cmd del");
      checkExit(await s3cmd("del", `s3://${bucket}/large.bin`), "s3cmd del");
      const empty = checkExit(await s3cmd("ls", `s3://${bucket}`), "s3cmd ls empty");
      assert.equal(empty.trim(), "");
      checkExit(await s3cmd("rb", `s3://${bucket}`), "s3cmd rb");
    };

    await t.step("s3cmd: mb, put, ls, get, del, multipart put", () => s3cmdRound(false));

    await t.step("s3cmd with Signature V2: the same commands", () => s3cmdRound(true));

    await t.step(
      "boto3: presigned URLs (Signature V2, the default of Debian's boto3, and V4), V2 requests",
      async () => {
        const { env, home } = await cleanClientEnv({
          ENDPOINT: server.endpoint,
          KEY_ID: credentials.accessKeyId,
          SECRET: credentials.secretAccessKey,
        });
        homes.push(home);
        await Deno.writeTextFile(`${home}/boto3_round.py`, BOTO3_ROUND);
        const out = checkExit(await runProgram(PYTHON, [`${home}/boto3_round.py`], env), "boto3");
        assert.match(out, /^boto3 \d+\.\d+/m);
        assert.match(
          out,
          /default presign: .*[?&]AWSAccessKeyId=|default presign: .*X-Amz-Signature=/,
        );
        assert.match(out, /^all ok$/m);
      },
    );

    await t.step("restic: init, backup, check --read-data, restore, forget --prune", async () => {
      const { env, home } = await cleanClientEnv({
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        RESTIC_PASSWORD: "a test repository password",
        RESTIC_REPOSITORY: `s3:${server.endpoint}/restic-repo`,
      });
      homes.push(home);
      const restic = (...args: string[]) =>
        runProgram(RESTIC, ["-o", `s3.region=${REGION}`, ...args], env);
      checkExit(await restic("init"), "restic init");
      checkExit(await restic("backup", tree), "restic backup");
      // A second backup after a change: the snapshot to keep differs from the first.
      const changed = `${work}/restic-tree`;
      checkExit(await runProgram("/bin/cp", ["-a", tree, changed], env), "cp");
      await Deno.writeTextFile(`${changed}/dir0/sub0/f0.dat`, "changed for restic");
      checkExit(await restic("backup", changed), "restic backup again");
      checkExit(
        await restic("forget", "--group-by", "host", "--keep-last", "1", "--prune"),
        "restic forget --prune",
      );
      checkExit(await restic("check", "--read-data"), "restic check --read-data");
      const out = `${work}/restic-out`;
      checkExit(await restic("restore", "latest", "--target", out), "restic restore");
      await assertSameTree(changed, `${out}${changed}`);
      const snapshots = JSON.parse(checkExit(await restic("snapshots", "--json"), "snapshots"));
      assert.equal(snapshots.length, 1, "forget kept one snapshot");
    });

    await t.step(
      "aws-cli: an empty file and the files after it on one connection arrive intact",
      async () => {
        // One connection (max_concurrent_requests = 1): the empty file's PUT, sent with
        // "Expect: 100-continue", is followed on the same connection by the next file's PUT.
        // No retry: the CLI used to misread the answer after an empty upload and wait for
        // its read timeout, which then fails the sync.
        const aws = await awsCli(
          server,
          credentials,
          homes,
          "  max_concurrent_requests = 1\nmax_attempts = 1\n",
        );
        checkExit(await aws("s3", "mb", "s3://awscli-expect"), "aws s3 mb");
        const dir = `${work}/expect`;
        await Deno.mkdir(dir);
        await Deno.writeFile(`${dir}/a-empty`, new Uint8Array());
        await Deno.writeFile(`${dir}/b-small`, deterministicBytes(1000, 1));
        await Deno.writeFile(`${dir}/c-small`, deterministicBytes(2000, 2));
        checkExit(await aws("s3", "sync", dir, "s3://awscli-expect/"), "aws s3 sync");
        const down = `${work}/expect-down`;
        checkExit(await aws("s3", "sync", "s3://awscli-expect/", down), "aws s3 sync down");
        await assertSameTree(dir, down);
      },
    );

    await t.step(
      "aws-cli: s3 cp of 100 MiB (multipart) up and back; s3 sync up and down",
      async () => {
        const aws = await awsCli(server, credentials, homes);
        checkExit(await aws("s3", "mb", "s3://awscli-bucket"), "aws s3 mb");
        const big = `${work}/hundred.bin`;
        const size = 100 * MiB + 3;
        const file = await Deno.open(big, { write: true, create: true, truncate: true });
        await deterministicStream(size, 77).pipeTo(file.writable); // closes the file
        assert.equal((await Deno.stat(big)).size, size);
        checkExit(await aws("s3", "cp", big, "s3://awscli-bucket/big/hundred.bin"), "aws s3 cp up");
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: "awscli-bucket", Key: "big/hundred.bin" }),
        );
        assert.equal(head.ContentLength, size);
        assert.match(head.ETag ?? "", /-\d+"$/, `aws s3 cp of 100 MiB is multipart: ${head.ETag}`);
        const back = `${work}/hundred-back.bin`;
        checkExit(
          await aws("s3", "cp", "s3://awscli-bucket/big/hundred.bin", back),
          "aws s3 cp down",
        );
        assert.equal((await Deno.stat(back)).size, size);
        assert.equal(await fileSha256(back), await fileSha256(big));
        await Deno.remove(back);

        const ls = checkExit(await aws("s3", "ls", "s3://awscli-bucket/big/"), "aws s3 ls");
        assert.match(ls, /104857603 hundred\.bin/);

        checkExit(await aws("s3", "sync", tree, "s3://awscli-bucket/sync/"), "aws s3 sync up");
        const down = `${work}/awscli-down`;
        checkExit(await aws("s3", "sync", "s3://awscli-bucket/sync/", down), "aws s3 sync down");
        await assertSameTree(tree, down);
        // Nothing left to do on a second sync.
        const again = checkExit(
          await aws("s3", "sync", tree, "s3://awscli-bucket/sync/"),
          "aws s3 sync again",
        );
        assert.equal(again.trim(), "", `a second sync uploaded again:\n${again.slice(0, 2000)}`);
        checkExit(
          await aws("s3", "rm", "--recursive", "s3://awscli-bucket/"),
          "aws s3 rm --recursive",
        );
        const rest = checkExit(
          await aws("s3api", "list-objects-v2", "--bucket", "awscli-bucket"),
          "aws list",
        );
        assert.doesNotMatch(rest, /"Key"/);
      },
    );
  } finally {
    s3.destroy();
    await server.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
    for (const home of homes) await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

/**
 * An `aws` runner with its own HOME holding config and credentials files; a
 * short read timeout keeps a stalled request from costing a minute.
 */
async function awsCli(
  server: TestServer,
  c: Credentials,
  homes: string[],
  extraS3Config = "",
): Promise<(...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>> {
  const { env, home } = await cleanClientEnv();
  homes.push(home);
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[default]\nregion = test-region\ns3 =\n  addressing_style = path\n${extraS3Config}`,
  );
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    `[default]\naws_access_key_id = ${c.accessKeyId}\naws_secret_access_key = ${c.secretAccessKey}\n`,
  );
  return (...args: string[]) =>
    runProgram(
      AWS,
      ["--endpoint-url", server.endpoint, "--no-cli-pager", "--cli-read-timeout", "5", ...args],
      env,
    );
}

function rcloneConfig(server: TestServer, c: Credentials): string {
  return [
    "[remise]",
    "type = s3",
    "provider = Other",
    `access_key_id = ${c.accessKeyId}`,
    `secret_access_key = ${c.secretAccessKey}`,
    `endpoint = ${server.endpoint}`,
    "region = test-region",
    "force_path_style = true",
    "",
  ].join("\n");
}

function s3cmdConfig(server: TestServer, c: Credentials, signatureV2: boolean): string {
  const host = `127.0.0.1:${server.apiPort}`;
  return [
    "[default]",
    `access_key = ${c.accessKeyId}`,
    `secret_key = ${c.secretAccessKey}`,
    `host_base = ${host}`,
    `host_bucket = ${host}`,
    "use_https = False",
    `signature_v2 = ${signatureV2 ? "True" : "False"}`,
    "bucket_location = test-region",
    "check_ssl_certificate = False",
    "",
  ].join("\n");
}

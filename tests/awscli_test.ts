/**
 * The Debian AWS CLI (`/usr/bin/aws`) against a real `remise server`, with a
 * clean environment: credentials and region from AWS_* variables only, no
 * inherited configuration.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HeadObjectCommand, ListBucketsCommand } from "@aws-sdk/client-s3";
import { cleanClientEnv, REGION, runProgram, TestServer } from "./harness.ts";

const AWS = "/usr/bin/aws";

function md5Hex(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

Deno.test({
  name: "the AWS CLI: mb, cp up and down, ls, head-object, rm, rb",
  ignore: !(await Deno.stat(AWS).then(() => true, () => false)),
  fn: async (t) => {
    const server = await TestServer.start();
    const credentials = await server.createKey("awscli");
    const s3 = server.client(credentials);
    const { env, home } = await cleanClientEnv({
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_DEFAULT_REGION: REGION,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_PAGER: "",
    });
    assert.equal(env.AWS_CA_BUNDLE, undefined, "the machine's AWS_CA_BUNDLE must not leak in");
    const aws = async (...args: string[]) => {
      const res = await runProgram(AWS, ["--endpoint-url", server.endpoint, ...args], env);
      return res;
    };
    const ok = async (...args: string[]) => {
      const res = await aws(...args);
      assert.equal(res.code, 0, `aws ${args.join(" ")} failed (${res.code}):\n${res.stderr}`);
      return res.stdout;
    };
    // ~1 MiB of varied bytes, below the CLI's 8 MiB multipart threshold.
    const content = new Uint8Array(1024 * 1024 + 123);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31 + (i >> 10)) & 0xff;
    const local = `${home}/upload.bin`;
    const downloaded = `${home}/download.bin`;
    await Deno.writeFile(local, content);

    try {
      await t.step("aws s3 mb creates a bucket", async () => {
        const out = await ok("s3", "mb", "s3://cli-bucket");
        assert.match(out, /make_bucket: cli-bucket/);
        const list = await s3.send(new ListBucketsCommand({}));
        assert.deepEqual(list.Buckets!.map((b) => b.Name), ["cli-bucket"]);
      });

      await t.step("aws s3 cp uploads a file and downloads it identical", async () => {
        const up = await ok("s3", "cp", local, "s3://cli-bucket/dir/file one.bin");
        assert.match(up, /upload: .* to s3:\/\/cli-bucket\/dir\/file one\.bin/);
        const down = await ok("s3", "cp", "s3://cli-bucket/dir/file one.bin", downloaded);
        assert.match(down, /download: s3:\/\/cli-bucket\/dir\/file one\.bin to /);
        const back = await Deno.readFile(downloaded);
        assert.equal(back.byteLength, content.byteLength);
        assert.equal(md5Hex(back), md5Hex(content));
        // A small text file from stdin, with a content type.
        const res = await runProgram(
          AWS,
          [
            "--endpoint-url",
            server.endpoint,
            "s3",
            "cp",
            "-",
            "s3://cli-bucket/hello.txt",
            "--content-type",
            "text/plain",
          ],
          env,
          new TextEncoder().encode("hello from the aws cli\n"),
        );
        assert.equal(res.code, 0, res.stderr);
        const cat = await ok("s3", "cp", "s3://cli-bucket/hello.txt", "-");
        assert.equal(cat, "hello from the aws cli\n");
      });

      await t.step("aws s3 ls lists buckets and objects", async () => {
        const buckets = await ok("s3", "ls");
        assert.match(buckets, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d cli-bucket$/m);
        const top = await ok("s3", "ls", "s3://cli-bucket/");
        assert.match(top, /^\s+PRE dir\/$/m);
        assert.match(top, /^\S+ \S+\s+23 hello\.txt$/m);
        const recursive = await ok("s3", "ls", "--recursive", "s3://cli-bucket/");
        const lines = recursive.trim().split("\n").map((l) => l.trim().split(/\s+/).slice(2));
        assert.deepEqual(lines, [
          [String(content.byteLength), "dir/file", "one.bin"],
          ["23", "hello.txt"],
        ]);
      });

      await t.step("aws s3api head-object answers size, ETag and type", async () => {
        const out = await ok(
          "s3api",
          "head-object",
          "--bucket",
          "cli-bucket",
          "--key",
          "dir/file one.bin",
          "--output",
          "json",
        );
        const head = JSON.parse(out);
        assert.equal(head.ContentLength, content.byteLength);
        assert.equal(head.ETag, `"${md5Hex(content)}"`);
        const text = JSON.parse(
          await ok("s3api", "head-object", "--bucket", "cli-bucket", "--key", "hello.txt"),
        );
        assert.equal(text.ContentType, "text/plain");
        const sdk = await s3.send(
          new HeadObjectCommand({ Bucket: "cli-bucket", Key: "hello.txt" }),
        );
        assert.equal(sdk.ETag, text.ETag);
        // A missing key: non-zero exit, 404 named.
        const missing = await aws(
          "s3api",
          "head-object",
          "--bucket",
          "cli-bucket",
          "--key",
          "nope",
        );
        assert.notEqual(missing.code, 0);
        assert.match(missing.stderr, /404|Not Found/);
      });

      await t.step("aws s3 rb refuses a non-empty bucket; rm then rb succeed", async () => {
        const refused = await aws("s3", "rb", "s3://cli-bucket");
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /BucketNotEmpty/);
        const listed = await ok("s3", "ls", "--recursive", "s3://cli-bucket/");
        assert.equal(listed.trim().split("\n").length, 2, "the refused rb removed nothing");

        assert.match(
          await ok("s3", "rm", "s3://cli-bucket/hello.txt"),
          /delete: s3:\/\/cli-bucket\/hello\.txt/,
        );
        const rest = await ok("s3", "ls", "--recursive", "s3://cli-bucket/");
        assert.doesNotMatch(rest, /hello\.txt/);
        assert.match(rest, /dir\/file one\.bin/);
        await ok("s3", "rm", "s3://cli-bucket/dir/file one.bin");
        assert.equal((await ok("s3", "ls", "--recursive", "s3://cli-bucket/")).trim(), "");

        assert.match(await ok("s3", "rb", "s3://cli-bucket"), /remove_bucket: cli-bucket/);
        assert.equal((await ok("s3", "ls")).trim(), "");
        const list = await s3.send(new ListBucketsCommand({}));
        assert.deepEqual(list.Buckets ?? [], []);
      });

      await t.step("wrong credentials make the CLI fail with the S3 error code", async () => {
        const res = await runProgram(
          AWS,
          ["--endpoint-url", server.endpoint, "s3", "ls"],
          { ...env, AWS_SECRET_ACCESS_KEY: "wrong-secret" },
        );
        assert.notEqual(res.code, 0);
        assert.match(res.stderr, /SignatureDoesNotMatch/);
      });
    } finally {
      s3.destroy();
      await server.close();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

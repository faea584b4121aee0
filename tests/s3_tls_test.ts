/**
 * HTTPS on the S3 API (api_tls_cert and api_tls_key), with a certificate
 * made by `remise cert`: the AWS SDK over HTTP/1.1, signed requests over
 * HTTP/2 (which has no Host header), and rclone, which sends SSE-C keys only
 * over HTTPS and negotiates HTTP/2. A certificate that cannot be used stops
 * the server with a message naming it.
 */
import assert from "node:assert/strict";
import https from "node:https";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { nodeCertificate, remise } from "./cluster_harness.ts";
import { cleanClientEnv, deterministicBytes, REGION, runProgram, TestServer } from "./harness.ts";
import { assertS3Error, sameBytes, signRequest } from "./_s3_helpers.ts";

const RCLONE = "/usr/bin/rclone";

Deno.test("S3 API over HTTPS: the SDK, HTTP/2 requests, and rclone with SSE-C", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "remise-tls-" });
  await remise(["cert", "ca", "--out", `${dir}/ca`]);
  await nodeCertificate(`${dir}/ca`, "s3", `${dir}/s3`);
  const ca = await Deno.readTextFile(`${dir}/ca/ca.crt`);
  const server = await TestServer.start({
    extraConfig: `api_tls_cert = "${dir}/s3/node.crt"\napi_tls_key = "${dir}/s3/node.key"`,
  });
  const credentials = await server.createKey("tls");
  const endpoint = `https://127.0.0.1:${server.apiPort}`;
  const s3 = new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials,
    maxAttempts: 1,
    requestHandler: { httpsAgent: new https.Agent({ ca }) },
  });
  const home = await cleanClientEnv();
  try {
    await t.step("the SDK over HTTPS; plain HTTP gets no S3 answer", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "secure" }));
      const data = deterministicBytes(300_000, 3);
      await s3.send(new PutObjectCommand({ Bucket: "secure", Key: "a", Body: data }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "secure", Key: "a" }));
      assert.ok(sameBytes(await got.Body!.transformToByteArray(), data));
      const plain = await fetch(`${server.endpoint}/secure/a`).then(
        async (res) => `HTTP ${res.status}: ${await res.text()}`,
        (e) => `refused: ${e}`,
      );
      assert.match(plain, /^refused/);
    });

    await t.step("a signed request over HTTP/2, which carries no Host header", async () => {
      const client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
      try {
        const { headers } = await signRequest(server, credentials, {
          method: "GET",
          path: "/secure/a",
        });
        delete headers.host;
        const res = await fetch(`${endpoint}/secure/a`, { headers, client });
        const body = new Uint8Array(await res.arrayBuffer());
        assert.equal(res.status, 200, new TextDecoder().decode(body));
        assert.ok(sameBytes(body, deterministicBytes(300_000, 3)));
      } finally {
        client.close();
      }
    });

    await t.step("rclone with SSE-C: sync up (multipart), check, sync down", async () => {
      const tree = `${dir}/tree`;
      await Deno.mkdir(tree);
      await Deno.writeFile(`${tree}/big.bin`, deterministicBytes(11 * 1024 * 1024 + 7, 5));
      await Deno.writeTextFile(`${tree}/small.txt`, "a small secret");
      const key = btoa(String.fromCharCode(...deterministicBytes(32, 9)));
      const config = `${home.home}/rclone.conf`;
      await Deno.writeTextFile(
        config,
        [
          "[remise]",
          "type = s3",
          "provider = Other",
          `access_key_id = ${credentials.accessKeyId}`,
          `secret_access_key = ${credentials.secretAccessKey}`,
          `endpoint = ${endpoint}`,
          `region = ${REGION}`,
          "force_path_style = true",
          "sse_customer_algorithm = AES256",
          `sse_customer_key_base64 = ${key}`,
          "",
        ].join("\n"),
      );
      const rclone = async (...args: string[]) => {
        const result = await runProgram(RCLONE, [
          "--config",
          config,
          "--ca-cert",
          `${dir}/ca/ca.crt`,
          "--retries",
          "1",
          "--s3-upload-cutoff",
          "5M",
          "--s3-chunk-size",
          "5M",
          ...args,
        ], home.env);
        assert.equal(result.code, 0, `rclone ${args.join(" ")}:\n${result.stderr}`);
      };
      await rclone("sync", tree, "remise:secure/tree");
      await rclone("check", tree, "remise:secure/tree");
      await rclone("sync", "remise:secure/tree", `${dir}/down`);
      for (const name of ["big.bin", "small.txt"]) {
        const [a, b] = await Promise.all(
          [`${tree}/${name}`, `${dir}/down/${name}`].map((p) => Deno.readFile(p)),
        );
        assert.ok(sameBytes(a, b), name);
      }
      // Stored encrypted: without the key, the object is not given out.
      await assertS3Error(
        s3.send(new GetObjectCommand({ Bucket: "secure", Key: "tree/small.txt" })),
        "InvalidRequest",
        400,
      );
    });
  } finally {
    s3.destroy();
    await server.close();
    await Deno.remove(home.home, { recursive: true }).catch(() => {});
  }

  await t.step(
    "a certificate without its key, or not a certificate, stops the server",
    async () => {
      const refused: [string, RegExp][] = [
        [`api_tls_cert = "${dir}/s3/node.crt"`, /"api_tls_cert" and "api_tls_key" go together/],
        [
          `api_tls_cert = "${dir}/ca/ca.crt"\napi_tls_key = "${dir}/s3/node.key"`,
          /api_tls_key ".*\/s3\/node\.key" is not the key of api_tls_cert ".*\/ca\/ca\.crt"/,
        ],
        [
          `api_tls_cert = "${dir}/s3/node.key"\napi_tls_key = "${dir}/s3/node.crt"`,
          /api_tls_cert ".*\/s3\/node\.key" is not a PEM certificate: it holds a private key/,
        ],
        [
          `api_tls_cert = "${dir}/missing.crt"\napi_tls_key = "${dir}/s3/node.key"`,
          /cannot read api_tls_cert/,
        ],
      ];
      for (const [extraConfig, message] of refused) {
        const started = TestServer.start({ extraConfig });
        await assert.rejects(started, message);
      }
    },
  );
  await Deno.remove(dir, { recursive: true });
});

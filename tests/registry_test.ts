/**
 * A container registry storing its images in remise: Debian's
 * `docker-registry` (distribution 2.8, aws-sdk-go) with its S3 storage
 * driver, and `skopeo` pushing and pulling an image through it. The registry
 * uploads layers in parts and moves them into place with multipart copies
 * (UploadPartCopy with ranges), and its garbage collector deletes them.
 */
import assert from "node:assert/strict";
import { sha256Hex } from "../lib/util/hash.ts";
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import {
  checkExit,
  cleanClientEnv,
  deterministicBytes,
  freePort,
  REGION,
  runProgram,
  withServer,
} from "./harness.ts";

const REGISTRY = "/usr/bin/docker-registry";
const SKOPEO = "/usr/bin/skopeo";
const MiB = 1024 * 1024;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** A tar archive holding one regular file (ustar headers, as a layer holds its files). */
function tarOf(name: string, content: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const text = new TextEncoder();
  const field = (offset: number, value: string) => header.set(text.encode(value), offset);
  field(0, name);
  field(100, "0000644\0");
  field(108, "0000000\0");
  field(116, "0000000\0");
  field(124, content.byteLength.toString(8).padStart(11, "0") + "\0");
  field(136, "00000000000\0");
  field(148, "        ");
  field(156, "0");
  field(257, "ustar\u000000");
  const sum = header.reduce((a, b) => a + b, 0);
  field(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const padded = Math.ceil(content.byteLength / 512) * 512;
  // The file, then two zero blocks that end the archive.
  const tar = new Uint8Array(512 + padded + 1024);
  tar.set(header);
  tar.set(content, 512);
  return tar;
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** An OCI image layout in `dir`, tagged `latest`, with layers holding files of these sizes. */
async function writeImage(dir: string, fileSizes: number[]): Promise<Map<string, Uint8Array>> {
  const blobs = new Map<string, Uint8Array>();
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const addBlob = async (data: Uint8Array, mediaType: string): Promise<Descriptor> => {
    const hex = sha256Hex(data);
    await Deno.writeFile(`${dir}/blobs/sha256/${hex}`, data);
    blobs.set(hex, data);
    return { mediaType, digest: `sha256:${hex}`, size: data.byteLength };
  };
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of fileSizes.entries()) {
    const tar = tarOf(`file-${i}.bin`, deterministicBytes(size, 4200 + i));
    diffIds.push(`sha256:${sha256Hex(tar)}`);
    layers.push(await addBlob(await gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"));
  }
  const config = await addBlob(
    new TextEncoder().encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: diffIds },
      config: {},
    })),
    "application/vnd.oci.image.config.v1+json",
  );
  const manifest = await addBlob(
    new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config,
      layers,
    })),
    "application/vnd.oci.image.manifest.v1+json",
  );
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": "latest" } }],
    }),
  );
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  return blobs;
}

function registryConfig(endpoint: string, id: string, secret: string, port: number): string {
  return `version: 0.1
log:
  level: warn
storage:
  s3:
    accesskey: ${id}
    secretkey: ${secret}
    region: ${REGION}
    regionendpoint: ${endpoint}
    bucket: registry
    secure: false
    v4auth: true
    chunksize: ${5 * MiB}
    multipartcopychunksize: ${5 * MiB}
    multipartcopymaxconcurrency: 4
    multipartcopythresholdsize: ${5 * MiB}
    rootdirectory: /r
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:${port}
  secret: a-test-secret
`;
}

async function waitForRegistry(url: string, child: Deno.ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    try {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the registry did not start at ${url}`);
}

async function blobKeys(s3: S3Client): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: "registry",
        Prefix: "r/docker/registry/v2/blobs/",
        ContinuationToken: token,
      }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

Deno.test("docker-registry stores images in remise: push, pull byte for byte, delete, garbage-collect", async () => {
  await withServer(async (server, s3, credentials) => {
    await s3.send(new CreateBucketCommand({ Bucket: "registry" }));
    const { env, home } = await cleanClientEnv();
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const configFile = `${home}/registry.yml`;
    await Deno.writeTextFile(
      configFile,
      registryConfig(server.endpoint, credentials.accessKeyId, credentials.secretAccessKey, port),
    );
    const registry = new Deno.Command(REGISTRY, {
      args: ["serve", configFile],
      env,
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const registryLog = new Response(registry.stderr).text();
    try {
      await waitForRegistry(url, registry);
      // 12 MiB: uploaded in 5 MiB parts, then moved with a multipart copy.
      const blobs = await writeImage(`${home}/image`, [1000, 12 * MiB, 6 * MiB]);
      const skopeo = (...args: string[]) => runProgram(SKOPEO, ["--insecure-policy", ...args], env);
      const image = `docker://127.0.0.1:${port}/test/img:latest`;
      checkExit(
        await skopeo("copy", "--dest-tls-verify=false", `oci:${home}/image:latest`, image),
        "skopeo copy (push)",
      );
      const metrics = await (await server.admin("GET", "/metrics")).text();
      assert.match(
        metrics,
        /remise_s3_requests_total\{operation="UploadPartCopy",status="200"\} [1-9]/,
        "the registry moved its large layers with multipart copies",
      );
      const stored = await blobKeys(s3);
      for (const hex of blobs.keys()) {
        assert.ok(stored.some((k) => k.includes(hex)), `blob ${hex} is in the bucket`);
      }

      checkExit(
        await skopeo("copy", "--src-tls-verify=false", image, `oci:${home}/pulled:latest`),
        "skopeo copy (pull)",
      );
      for (const [hex, data] of blobs) {
        const pulled = await Deno.readFile(`${home}/pulled/blobs/sha256/${hex}`);
        assert.equal(sha256Hex(pulled), sha256Hex(data), `blob ${hex} pulled intact`);
      }

      checkExit(await skopeo("delete", "--tls-verify=false", image), "skopeo delete");
      checkExit(
        await runProgram(REGISTRY, ["garbage-collect", "--delete-untagged", configFile], env),
        "registry garbage-collect",
      );
      const left = (await blobKeys(s3)).filter((k) => k.endsWith("/data"));
      assert.deepEqual(left, [], "the garbage collector deleted every blob");
    } finally {
      registry.kill("SIGTERM");
      await registry.status;
      await Deno.remove(home, { recursive: true });
    }
    // Before pushing a blob, skopeo asks whether the registry has it: those 404s are logged as errors.
    const errors = (await registryLog).split("\n").filter((line) =>
      /level=(error|panic|fatal)/.test(line) && !line.includes('err.code="blob unknown"')
    );
    assert.deepEqual(errors, [], "the registry logged errors");
  });
});

/**
 * The admin API's /metrics on a real server, as Prometheus scrapes it with
 * the metrics token: the S3 requests answered, by operation and status, the
 * node's disks, process and workers.
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { withServer } from "./harness.ts";
import { assertS3Status, getBytes } from "./_s3_helpers.ts";

const METRICS_TOKEN = "prometheus-scrapes-with-this-token";

/** The samples of a text exposition, by their whole name and labels. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

Deno.test("metrics: /metrics counts S3 requests and reports disks, process and workers", async () => {
  await withServer(async (server, s3) => {
    const scrape = async (token = METRICS_TOKEN) => {
      const res = await fetch(`${server.adminEndpoint}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      return samples(text);
    };
    await s3.send(new CreateBucketCommand({ Bucket: "counted" }));
    for (let i = 0; i < 3; i++) {
      await s3.send(new PutObjectCommand({ Bucket: "counted", Key: `k${i}`, Body: "data" }));
    }
    await getBytes(s3, "counted", "k0");
    await assertS3Status(s3.send(new GetObjectCommand({ Bucket: "counted", Key: "nope" })), 404);
    await assertS3Status(s3.send(new HeadObjectCommand({ Bucket: "counted", Key: "nope" })), 404);

    const got = await scrape();
    assert.equal(got.get('remise_s3_requests_total{operation="CreateBucket",status="200"}'), 1);
    assert.equal(got.get('remise_s3_requests_total{operation="PutObject",status="200"}'), 3);
    assert.equal(got.get('remise_s3_requests_total{operation="GetObject",status="200"}'), 1);
    assert.equal(got.get('remise_s3_requests_total{operation="GetObject",status="404"}'), 1);
    assert.equal(got.get('remise_s3_requests_total{operation="HeadObject",status="404"}'), 1);
    assert.ok(got.get('remise_s3_request_seconds_total{operation="PutObject"}')! > 0);
    for (const disk of ["data", "metadata"]) {
      const free = got.get(`remise_disk_free_bytes{disk="${disk}"}`)!;
      const total = got.get(`remise_disk_total_bytes{disk="${disk}"}`)!;
      assert.ok(free > 0 && total >= free, `${disk}: ${free} of ${total}`);
      // The default min_free_space.
      assert.equal(got.get(`remise_disk_min_free_bytes{disk="${disk}"}`), 128 * 1024 * 1024);
    }
    assert.ok(got.get("remise_resident_memory_bytes")! > 10 * 1024 * 1024);
    assert.ok(got.get("remise_cpu_seconds_total")! > 0);
    assert.equal(got.get("remise_block_errors"), 0);
    assert.ok([...got.keys()].some((k) => k.startsWith("remise_worker_state{")));
    // The admin token opens it too; another token does not.
    assert.equal(
      (await scrape(server.adminToken)).get(
        'remise_s3_requests_total{operation="PutObject",status="200"}',
      ),
      3,
    );
    const refused = await fetch(`${server.adminEndpoint}/metrics`, {
      headers: { authorization: "Bearer not-the-metrics-token" },
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 403);
  }, { extraConfig: `metrics_token = "${METRICS_TOKEN}"` });
});

/**
 * Links between nodes with 50 ms of delay each way (a TCP proxy in front of
 * every node's RPC port): a small PUT takes a few round trips, not one per
 * block, and a large GET starts streaming after a few round trips, not after
 * reading the object. Bounds are counted in round trips and generous: this
 * checks the shape of the protocol, not speed (that is `deno task bench`).
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { TestCluster } from "./cluster_harness.ts";
import { type DelayProxy, startDelayProxy } from "./delay_proxy.ts";

const ONE_WAY_MS = 50;
const RTT_MS = 2 * ONE_WAY_MS;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

Deno.test("latency: over 100 ms round trips, small PUTs and first bytes of large GETs take a few round trips", async () => {
  const proxies: DelayProxy[] = [];
  const cluster = await TestCluster.start(3, {
    extraConfig: "replication_factor = 3",
    blockSize: 65536,
    publicPort: (_i, rpcPort) => {
      const proxy = startDelayProxy(rpcPort, ONE_WAY_MS);
      proxies.push(proxy);
      return proxy.port;
    },
  });
  try {
    await cluster.layoutOneZoneEach();
    const key = JSON.parse((await cluster.cli(0, ["key", "create", "lat", "--json"])).stdout);
    const s3 = cluster.nodes[0].server.client(key);
    const s3b = cluster.nodes[1].server.client(key);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "far" }));
      const small: number[] = [];
      for (let i = 0; i < 7; i++) {
        const started = performance.now();
        await s3.send(
          new PutObjectCommand({ Bucket: "far", Key: `small-${i}`, Body: "x".repeat(1000) }),
        );
        small.push(performance.now() - started);
      }
      const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => i % 251); // 64 blocks
      await s3.send(new PutObjectCommand({ Bucket: "far", Key: "big", Body: big }));
      const firstByte: number[] = [];
      for (let i = 0; i < 5; i++) {
        const url = await getSignedUrl(s3b, new GetObjectCommand({ Bucket: "far", Key: "big" }));
        const started = performance.now();
        const res = await fetch(url);
        const reader = res.body!.getReader();
        const first = await reader.read();
        firstByte.push(performance.now() - started);
        assert.ok(first.value && first.value.byteLength > 0);
        await reader.cancel();
      }
      const smallRtts = median(small) / RTT_MS;
      const firstByteRtts = median(firstByte) / RTT_MS;
      console.log(
        `small PUT: ${smallRtts.toFixed(1)} round trips; first byte of a 64-block GET: ${
          firstByteRtts.toFixed(1)
        } round trips`,
      );
      assert.ok(smallRtts < 8, `a small PUT took ${smallRtts.toFixed(1)} round trips`);
      // One round trip to the replicas: the write itself tells what they held, with no read of
      // the entry first (two round trips). The fastest PUT: load can only slow one down.
      const fastestRtts = Math.min(...small) / RTT_MS;
      assert.ok(
        fastestRtts < 1.6,
        `the fastest small PUT took ${fastestRtts.toFixed(2)} round trips, not one`,
      );
      assert.ok(
        firstByteRtts < 8,
        `the first byte of a large GET took ${firstByteRtts.toFixed(1)} round trips (64 blocks)`,
      );
    } finally {
      s3.destroy();
      s3b.destroy();
    }
  } finally {
    await cluster.close();
    for (const p of proxies) p.close();
  }
});

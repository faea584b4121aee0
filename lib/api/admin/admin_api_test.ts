import assert from "node:assert/strict";
import { KvStore } from "../../db/kv_store.ts";
import { BlockStore } from "../../block/block_store.ts";
import { Store } from "../../model/store.ts";
import { Access } from "../../model/access.ts";
import type { ObjectEntry } from "../../model/object_table.ts";
import { ADMIN_BODY_MAX_BYTES, createAdminHandler } from "./admin_api.ts";
import { QuorumError } from "../../rpc/quorum.ts";

const TOKEN = "admin-token-for-tests-0123456789";

interface Fixture {
  access: Access;
  store: Store;
  handler: (req: Request) => Promise<Response>;
  call: (method: string, path: string, body?: unknown, token?: string | null) => Promise<Reply>;
}

interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

async function withAdmin(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-admin-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const blocks = await BlockStore.open(`${dir}/data`);
    const store = new Store(db, blocks, { blockSize: 1 << 20 });
    const access = new Access(store);
    const handler = createAdminHandler({
      access,
      token: TOKEN,
      nodeInfo: () => ({ nodeId: "abc", version: "test" }),
    });
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      token: string | null = TOKEN,
    ) => {
      const headers: Record<string, string> = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      const init: RequestInit = { method, headers };
      if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
      const res = await handler(new Request(`http://admin.test${path}`, init));
      const text = await res.text();
      return {
        status: res.status,
        headers: res.headers,
        body: text === "" ? undefined : JSON.parse(text),
      };
    };
    await fn({ access, store, call, handler });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("admin API: /health answers without a token", async () => {
  await withAdmin(async ({ call }) => {
    const r = await call("GET", "/health", undefined, null);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: "ok" });
    assert.equal((await call("POST", "/health", undefined, null)).status, 405);
  });
});

Deno.test("admin API: a missing token is 401, a wrong one 403, and nothing changes", async () => {
  await withAdmin(async ({ call, access, handler }) => {
    const missing = await call("POST", "/v1/keys", { name: "k" }, null);
    assert.equal(missing.status, 401);
    assert.match(missing.body.error, /Authorization: Bearer/);
    assert.match(missing.headers.get("www-authenticate") ?? "", /^Bearer/);
    const wrong = await call("POST", "/v1/buckets", { name: "b1" }, "not-the-token");
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error, "Invalid admin token");
    // A prefix of the token, the token with a suffix, an empty token, another scheme: all refused.
    assert.equal((await call("GET", "/v1/keys", undefined, TOKEN.slice(0, -1))).status, 403);
    assert.equal((await call("GET", "/v1/keys", undefined, TOKEN + "x")).status, 403);
    assert.equal((await call("GET", "/v1/keys", undefined, "")).status, 401, "no credentials");
    const basic = await handler(
      new Request("http://admin.test/v1/keys", { headers: { authorization: `Basic ${TOKEN}` } }),
    );
    assert.equal(basic.status, 401);
    assert.doesNotMatch((await basic.json()).error, /S3 clients/);
    // An S3 client sent to this port is told where S3 is.
    const s3 = await handler(
      new Request("http://admin.test/photos?list-type=2", {
        headers: { authorization: "AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/s3/..." },
      }),
    );
    assert.equal(s3.status, 401);
    assert.match((await s3.json()).error, /admin API: S3 clients go to api_bind_addr/);
    assert.equal((await call("GET", "/v1/status", undefined, null)).status, 401);
    assert.equal((await call("GET", "/v1/no-such-route", undefined, null)).status, 401);
    assert.deepEqual(await access.listKeys(), []);
    assert.deepEqual(await access.listAllBuckets(), []);
  });
});

Deno.test("admin API: an empty token is refused at creation", () => {
  assert.throws(
    () => createAdminHandler({ access: {} as Access, token: "", nodeInfo: () => ({}) }),
    /non-empty admin token/,
  );
});

Deno.test("admin API: status", async () => {
  await withAdmin(async ({ call }) => {
    const r = await call("GET", "/v1/status");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { nodeId: "abc", version: "test" });
  });
});

Deno.test("admin API: keys are created, imported, listed, described and deleted", async () => {
  await withAdmin(async ({ call }) => {
    const created = await call("POST", "/v1/keys", { name: "alice" });
    assert.equal(created.status, 201);
    assert.match(created.body.accessKeyId, /^GK[0-9a-f]{24}$/);
    assert.match(created.body.secretAccessKey, /^[0-9a-f]{64}$/);
    assert.equal(created.body.name, "alice");

    const imported = await call("POST", "/v1/keys", {
      name: "bob",
      accessKeyId: "GKIMPORTED0000000001",
      secretAccessKey: "imported-secret-0123456789",
    });
    assert.equal(imported.status, 201);
    assert.deepEqual(imported.body, {
      accessKeyId: "GKIMPORTED0000000001",
      secretAccessKey: "imported-secret-0123456789",
      name: "bob",
    });
    const again = await call("POST", "/v1/keys", {
      name: "bob2",
      accessKeyId: "GKIMPORTED0000000001",
      secretAccessKey: "another-secret-0123456789",
    });
    assert.equal(again.status, 409);
    assert.match(again.body.error, /already exists/);
    // A second key of one name would make the name pick neither.
    const namesake = await call("POST", "/v1/keys", { name: "alice" });
    assert.equal(namesake.status, 409);
    assert.equal(namesake.body.code, "KeyNameInUse");
    assert.match(namesake.body.error, /named "alice" exists already \(GK/);

    const list = await call("GET", "/v1/keys");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((k: { name: string }) => k.name).sort(), ["alice", "bob"]);
    for (const k of list.body) {
      assert.deepEqual(Object.keys(k).sort(), ["accessKeyId", "createdAt", "name"]);
      assert.equal(new Date(k.createdAt).toISOString(), k.createdAt);
    }

    // By id, by unambiguous prefix, by name; names are percent-decoded.
    const byId = await call("GET", `/v1/keys/${created.body.accessKeyId}`);
    assert.equal(byId.status, 200);
    assert.equal(byId.body.secretAccessKey, created.body.secretAccessKey);
    assert.deepEqual(byId.body.buckets, []);
    assert.equal((await call("GET", "/v1/keys/GKIMP")).body.name, "bob");
    assert.equal((await call("GET", "/v1/keys/alice")).body.accessKeyId, created.body.accessKeyId);
    await call("POST", "/v1/keys", { name: "with space/and slash" });
    const spaced = await call("GET", `/v1/keys/${encodeURIComponent("with space/and slash")}`);
    assert.equal(spaced.status, 200);
    assert.equal(spaced.body.name, "with space/and slash");

    const ambiguous = await call("GET", "/v1/keys/GK");
    assert.equal(ambiguous.status, 409);
    assert.equal(ambiguous.body.code, "AmbiguousAccessKey");
    const missing = await call("GET", "/v1/keys/nobody");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, "NoSuchAccessKey");

    // Deleting takes the whole id or name: a prefix, even an unambiguous one, matches nothing.
    const byPrefix = await call("DELETE", "/v1/keys/GKIMP");
    assert.equal(byPrefix.status, 404);
    assert.equal(byPrefix.body.code, "NoSuchAccessKey");
    assert.equal((await call("GET", "/v1/keys/GKIMP")).body.name, "bob", "still there");
    const deleted = await call("DELETE", "/v1/keys/bob");
    assert.equal(deleted.status, 204);
    assert.equal(deleted.body, undefined);
    assert.equal((await call("GET", "/v1/keys/bob")).status, 404);
    assert.equal((await call("DELETE", "/v1/keys/bob")).status, 404);
    assert.equal((await call("GET", "/v1/keys")).body.length, 2);
    // The right to create buckets: allowed at first, denied, allowed again.
    const alice = created.body.accessKeyId;
    assert.equal((await call("GET", `/v1/keys/${alice}`)).body.allowCreateBucket, true);
    const denied = await call("POST", `/v1/keys/${alice}/deny`, { createBucket: true });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.allowCreateBucket, false);
    assert.equal((await call("GET", "/v1/keys/alice")).body.allowCreateBucket, false);
    const allowed = await call("POST", "/v1/keys/alice/allow", { createBucket: true });
    assert.equal(allowed.body.allowCreateBucket, true);
    assert.equal((await call("POST", "/v1/keys/alice/deny", {})).status, 400);
    assert.equal((await call("POST", "/v1/keys/nobody/deny", { createBucket: true })).status, 404);

    // A deleted key's name is free again.
    assert.equal((await call("POST", "/v1/keys", { name: "bob" })).status, 201);
  });
});

Deno.test("admin API: bad key requests are 400 naming the field, and change nothing", async () => {
  await withAdmin(async ({ call, access }) => {
    const cases: [unknown, RegExp][] = [
      ["", /must be a JSON object/],
      ["{not json", /not valid JSON/],
      ["[1]", /must be a JSON object/],
      [{}, /Missing field "name"/],
      [{ name: 3 }, /Field "name" must be a non-empty string \(got 3\)/],
      [{ name: "" }, /Field "name" must be a non-empty string/],
      [{ name: "x".repeat(300) }, /at most 256 characters/],
      [{ name: "k", nmae: "x" }, /Unknown field "nmae"/],
      [{ name: "k", accessKeyId: "GKABCDEFGHIJKLMNOP" }, /go together/],
      [
        { name: "k", accessKeyId: "short", secretAccessKey: "s".repeat(20) },
        /"accessKeyId" must be/,
      ],
      [
        { name: "k", accessKeyId: "GKABCDEFGHIJKLMNOP", secretAccessKey: "short" },
        /"secretAccessKey"/,
      ],
    ];
    for (const [body, message] of cases) {
      const r = await call("POST", "/v1/keys", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error, message);
    }
    const big = await call(
      "POST",
      "/v1/keys",
      JSON.stringify({ name: "x".repeat(ADMIN_BODY_MAX_BYTES) }),
    );
    assert.equal(big.status, 413);
    assert.deepEqual(await access.listKeys(), []);
  });
});

Deno.test("admin API: buckets are created, listed, described and deleted", async () => {
  await withAdmin(async ({ call, access, store }) => {
    const created = await call("POST", "/v1/buckets", { name: "photos" });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, "photos");
    assert.match(created.body.id, /^[0-9a-f]{64}$/);
    assert.equal((await call("POST", "/v1/buckets", { name: "archive" })).status, 201);

    const dup = await call("POST", "/v1/buckets", { name: "photos" });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, "BucketAlreadyExists");
    const invalid = await call("POST", "/v1/buckets", { name: "Not_Valid" });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.code, "InvalidBucketName");
    const noName = await call("POST", "/v1/buckets", { nom: "x" });
    assert.equal(noName.status, 400);
    assert.match(noName.body.error, /Unknown field "nom"/);
    assert.match((await call("POST", "/v1/buckets", {})).body.error, /Missing field "name"/);

    const list = await call("GET", "/v1/buckets");
    assert.deepEqual(list.body.map((b: { name: string }) => b.name), ["archive", "photos"]);
    assert.deepEqual(Object.keys(list.body[0]).sort(), ["createdAt", "id", "name"]);

    const info = await call("GET", "/v1/buckets/photos");
    assert.equal(info.status, 200);
    assert.deepEqual(info.body, {
      name: "photos",
      id: created.body.id,
      createdAt: info.body.createdAt,
      objects: 0,
      bytes: 0,
      keys: [],
      website: null,
      corsRules: 0,
      lifecycleRules: 0,
      publicRead: false,
      publicAccessBlock: null,
      defaultEncryption: null,
      objectLock: null,
      versioning: null,
      noncurrentVersions: 0,
      noncurrentBytes: 0,
    });
    const missing = await call("GET", "/v1/buckets/nope");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, "NoSuchBucket");
    assert.match(missing.body.error, /Bucket "nope" does not exist/);

    // A bucket with an object in it cannot be deleted.
    await insertObject(store, (await access.getBucket("photos")).id);
    const notEmpty = await call("DELETE", "/v1/buckets/photos");
    assert.equal(notEmpty.status, 409);
    assert.equal(notEmpty.body.code, "BucketNotEmpty");
    const full = (await call("GET", "/v1/buckets/photos")).body;
    assert.equal(full.objects, 1);
    assert.equal(full.bytes, 3);

    assert.equal((await call("DELETE", "/v1/buckets/archive")).status, 204);
    assert.equal((await call("GET", "/v1/buckets/archive")).status, 404);
    assert.equal((await call("DELETE", "/v1/buckets/archive")).status, 404);
    assert.deepEqual((await call("GET", "/v1/buckets")).body.map((b: { name: string }) => b.name), [
      "photos",
    ]);
  });
});

/** Puts one complete inline object of 3 bytes into a bucket through the object table. */
async function insertObject(store: Store, bucketId: string): Promise<void> {
  const entry: ObjectEntry = {
    bucketId,
    key: "a.jpg",
    versions: [{
      uuid: crypto.randomUUID(),
      timestampMs: store.nowMs(),
      state: {
        state: "complete",
        data: {
          type: "inline",
          meta: { size: 3, etag: "x", headers: [] },
          bytes: new Uint8Array(3),
        },
      },
    }],
  };
  await store.objects.insert(entry);
}

Deno.test("admin API: allow adds rights, deny removes them", async () => {
  await withAdmin(async ({ call, access }) => {
    const key = (await call("POST", "/v1/keys", { name: "writer" })).body;
    await call("POST", "/v1/buckets", { name: "site" });

    const allowed = await call("POST", "/v1/buckets/site/allow", {
      accessKeyId: "writer",
      read: true,
    });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body.name, "site");
    assert.deepEqual(allowed.body.keys, [
      { accessKeyId: key.accessKeyId, name: "writer", read: true, write: false, owner: false },
    ]);
    const more = await call("POST", "/v1/buckets/site/allow", {
      accessKeyId: key.accessKeyId.slice(0, 8),
      write: true,
      owner: true,
    });
    assert.deepEqual(more.body.keys[0], {
      accessKeyId: key.accessKeyId,
      name: "writer",
      read: true,
      write: true,
      owner: true,
    });
    const info = await call("GET", `/v1/keys/${key.accessKeyId}`);
    assert.deepEqual(info.body.buckets, [
      { name: "site", id: allowed.body.id, read: true, write: true, owner: true },
    ]);

    const denied = await call("POST", "/v1/buckets/site/deny", {
      accessKeyId: "writer",
      write: true,
      owner: true,
    });
    assert.equal(denied.status, 200);
    assert.deepEqual(denied.body.keys[0], {
      accessKeyId: key.accessKeyId,
      name: "writer",
      read: true,
      write: false,
      owner: false,
    });
    const none = await call("POST", "/v1/buckets/site/deny", { accessKeyId: "writer", read: true });
    assert.deepEqual(none.body.keys, []);
    assert.deepEqual((await call("GET", "/v1/keys/writer")).body.buckets, []);

    // Errors change nothing.
    const cases: [string, unknown, number, RegExp][] = [
      ["site", { read: true }, 400, /Missing field "accessKeyId"/],
      ["site", { accessKeyId: "writer" }, 400, /at least one of/],
      ["site", { accessKeyId: "writer", read: "yes" }, 400, /Field "read" must be true or false/],
      ["site", { accessKeyId: "writer", raed: true }, 400, /Unknown field "raed"/],
      ["site", { accessKeyId: "nobody", read: true }, 404, /No access key matches "nobody"/],
      ["nope", { accessKeyId: "writer", read: true }, 404, /Bucket "nope" does not exist/],
    ];
    for (const [bucket, body, status, message] of cases) {
      const r = await call("POST", `/v1/buckets/${bucket}/allow`, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.error, message);
    }
    assert.deepEqual(access.permissionOf(await access.getBucket("site"), key.accessKeyId), {
      read: false,
      write: false,
      owner: false,
    });

    // Deleting a key removes its rights.
    await call("POST", "/v1/buckets/site/allow", { accessKeyId: "writer", read: true });
    assert.equal((await call("DELETE", "/v1/keys/writer")).status, 204);
    assert.deepEqual((await call("GET", "/v1/buckets/site")).body.keys, []);
  });
});

Deno.test("admin API: a bucket is served as a website, then no longer", async () => {
  await withAdmin(async ({ call, access }) => {
    await call("POST", "/v1/buckets", { name: "site" });
    const served = await call("PUT", "/v1/buckets/site/website", {});
    assert.equal(served.status, 200);
    assert.deepEqual(served.body.website, { indexDocument: "index.html" });
    const custom = await call("PUT", "/v1/buckets/site/website", {
      indexDocument: "home.htm",
      errorDocument: "404.html",
    });
    assert.deepEqual(custom.body.website, { indexDocument: "home.htm", errorDocument: "404.html" });

    // Errors change nothing.
    const cases: [string, unknown, number, RegExp][] = [
      ["site", { indexDocument: 3 }, 400, /Field "indexDocument" must be a non-empty string/],
      ["site", { indexDocument: "a/b" }, 400, /index document suffix must be a name without/],
      ["site", { errorDocument: "" }, 400, /Field "errorDocument" must be a non-empty string/],
      ["site", { index: "x" }, 400, /Unknown field "index"/],
      ["nope", {}, 404, /Bucket "nope" does not exist/],
    ];
    for (const [bucket, body, status, message] of cases) {
      const r = await call("PUT", `/v1/buckets/${bucket}/website`, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.error, message);
    }
    assert.deepEqual((await access.getBucket("site")).website?.v, {
      indexSuffix: "home.htm",
      errorKey: "404.html",
    });

    const removed = await call("DELETE", "/v1/buckets/site/website");
    assert.equal(removed.status, 200);
    assert.equal(removed.body.website, null);
    assert.equal((await call("GET", "/v1/buckets/site")).body.website, null);
  });
});

Deno.test("admin API: unknown routes are 404, wrong methods 405, bad paths 400", async () => {
  await withAdmin(async ({ call }) => {
    const unknown = await call("GET", "/v1/nothing");
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /No admin API route \/v1\/nothing/);
    assert.equal((await call("GET", "/v1/buckets/a/b/c")).status, 404);
    assert.equal((await call("GET", "/")).status, 404);
    const wrong = await call("PUT", "/v1/keys");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, POST");
    assert.equal((await call("GET", "/v1/buckets/site/allow")).status, 405);
    const malformed = await call("GET", "/v1/keys/%E0%A4%A");
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error, /percent-encoding/);
  });
});

Deno.test("admin API: an unexpected failure is a 500 with a JSON body", async () => {
  const failing = {
    listKeys: () => Promise.reject(new Error("disk on fire")),
  } as unknown as Access;
  const handler = createAdminHandler({ access: failing, token: TOKEN, nodeInfo: () => ({}) });
  const res = await handler(
    new Request("http://admin.test/v1/keys", { headers: { authorization: `bearer ${TOKEN}` } }),
  );
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), {
    error: "Internal error: disk on fire",
    code: "InternalError",
  });
});

Deno.test("admin API: /metrics takes the admin or the metrics token, which opens nothing else", async () => {
  const METRICS_TOKEN = "metrics-token-for-tests-012345";
  const handler = createAdminHandler({
    access: {} as Access,
    token: TOKEN,
    metricsToken: METRICS_TOKEN,
    nodeInfo: () => ({}),
    metrics: {
      version: "9.9.9 (test)",
      families: () => [{
        name: "remise_s3_requests_total",
        help: "S3 requests.",
        type: "counter",
        samples: [{ labels: { operation: "GetObject", status: "200" }, value: 7 }],
      }],
      diskSpace: () =>
        Promise.resolve({
          data: { free: 10, total: 100, reserve: 5, writeError: { message: "EROFS", atMs: 0 } },
        }),
    },
    maintenance: {
      workers: () => [{ name: "block resync", state: "idle", queueLength: 4, errors: 2 }],
      repair: () => Promise.resolve(""),
      blockErrors: () => Promise.resolve([]),
    },
  });
  const get = (token: string | null, path = "/metrics", method = "GET") =>
    handler(
      new Request(`http://admin.test${path}`, {
        method,
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
      }),
    );
  for (const token of [TOKEN, METRICS_TOKEN]) {
    const res = await get(token);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (
      const line of [
        'remise_build_info{version="9.9.9 (test)"} 1',
        'remise_s3_requests_total{operation="GetObject",status="200"} 7',
        'remise_disk_free_bytes{disk="data"} 10',
        'remise_disk_total_bytes{disk="data"} 100',
        'remise_disk_min_free_bytes{disk="data"} 5',
        'remise_disk_write_error{disk="data"} 1',
        'remise_worker_queue_length{worker="block resync"} 4',
        'remise_worker_errors_total{worker="block resync"} 2',
        'remise_worker_state{worker="block resync",state="idle"} 1',
        "remise_block_errors 0",
      ]
    ) {
      assert.ok(text.split("\n").includes(line), `${line} in:\n${text}`);
    }
    assert.match(text, /^remise_resident_memory_bytes \d+$/m);
    assert.match(text, /^remise_heap_bytes\{kind="external"\} \d+$/m);
  }
  assert.equal((await get(null)).status, 401);
  assert.equal((await get("not-a-token")).status, 403);
  assert.equal((await get(METRICS_TOKEN, "/v1/keys")).status, 403);
  assert.equal((await get(METRICS_TOKEN, "/v1/status")).status, 403);
  assert.equal((await get(TOKEN, "/metrics", "POST")).status, 405);
});

Deno.test("admin API: /ready answers without a token; a node without a cluster is ready", async () => {
  await withAdmin(async ({ handler }) => {
    const res = await handler(new Request("http://admin.test/ready"));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: "ok",
      nodesUp: 1,
      nodes: 1,
      partitionsWithoutQuorum: 0,
    });
    const post = await handler(new Request("http://admin.test/ready", { method: "POST" }));
    await post.body?.cancel();
    assert.equal(post.status, 405);
  });
});

Deno.test("admin API: a change a full disk refuses is 507 and says so, not that nodes are down", async () => {
  await withAdmin(async ({ access, call }) => {
    const full = new TypeError("database or disk is full");
    access.createKey = () => Promise.reject(full);
    const local = await call("POST", "/v1/keys", { name: "k" });
    assert.equal(local.status, 507);
    assert.match(
      local.body.error,
      /^A disk is full \(see `remise status`\): database or disk is full/,
    );
    access.createKey = () =>
      Promise.reject(
        new QuorumError("write key", 2, 1, [{
          node: "n2",
          error: "No space left on device (os error 28)",
        }]),
      );
    const replicas = await call("POST", "/v1/keys", { name: "k" });
    assert.equal(replicas.status, 507);
    access.createKey = () =>
      Promise.reject(
        new QuorumError("write key", 2, 1, [{ node: "n2", error: "connection refused" }]),
      );
    const down = await call("POST", "/v1/keys", { name: "k" });
    assert.equal(down.status, 503);
    assert.match(down.body.error, /^Not enough nodes are up/);
  });
});

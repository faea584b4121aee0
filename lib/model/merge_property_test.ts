/**
 * Property tests: every table's merge is commutative, associative and
 * idempotent, so replicas converge whatever order updates arrive in.
 */
import assert from "node:assert/strict";
import { lww, stableString } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";
import { bucketSchema } from "./bucket_table.ts";
import { bucketAliasSchema } from "./bucket_alias_table.ts";
import { keySchema } from "./key_table.ts";
import {
  type ObjectMeta,
  objectSchema,
  type ObjectVersion,
  type VersionState,
} from "./object_table.ts";
import { versionSchema } from "./version_table.ts";
import { mpuSchema } from "./mpu_table.ts";
import { type BlockRef, blockRefSchema } from "./block_ref_table.ts";
import type { BlockManager } from "../block/block_manager.ts";

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Gen<E> = (r: () => number) => E;
const pick = <T>(r: () => number, xs: T[]) => xs[Math.floor(r() * xs.length)];
const lw = <T>(r: () => number, values: T[]) => ({ t: Math.floor(r() * 4), v: pick(r, values) });

function checkLaws<E>(name: string, schema: Pick<TableSchema<E>, "merge">, gen: Gen<E>) {
  Deno.test(`${name} merge is commutative, associative and idempotent`, () => {
    const r = prng(name.length * 7919);
    const eq = (x: E, y: E, what: string) => assert.equal(stableString(x), stableString(y), what);
    for (let i = 0; i < 500; i++) {
      const [a, b, c] = [gen(r), gen(r), gen(r)];
      eq(schema.merge(a, b), schema.merge(b, a), "commutative");
      eq(schema.merge(schema.merge(a, b), c), schema.merge(a, schema.merge(b, c)), "associative");
      eq(schema.merge(a, a), a, "idempotent");
      eq(schema.merge(schema.merge(a, b), b), schema.merge(a, b), "idempotent after merge");
    }
  });
}

const perm = (r: () => number) => ({ read: r() < 0.5, write: r() < 0.5, owner: r() < 0.5 });

checkLaws("bucket", bucketSchema, (r) => ({
  id: "b1",
  createdMs: Math.floor(r() * 3),
  name: lw(r, ["a", "b"]),
  deleted: lw(r, [true, false]),
  keys: Object.fromEntries(
    ["k1", "k2", "k3"].filter(() => r() < 0.6).map((k) => [k, lw(r, [perm(r), perm(r)])]),
  ),
  // Entries written before websites existed have no website register.
  ...(r() < 0.3 ? {} : {
    website: lw(r, [null, { redirectAll: { hostName: "www.example.org" } }, {
      indexSuffix: "index.html",
    }, {
      indexSuffix: "index.html",
      errorKey: "404.html",
    }]),
  }),
  ...(r() < 0.3 ? {} : {
    tags: lw(r, [null, [["team", "web"]]] as ([string, string][] | null)[]),
  }),
  ...(r() < 0.3 ? {} : {
    policy: lw(r, [null, { text: "{}", readKeys: ["*"], list: false }]),
  }),
  ...(r() < 0.3 ? {} : {
    lifecycle: lw(r, [null, [{ enabled: true, prefix: "logs/", expirationDays: 30 }]]),
  }),
  ...(r() < 0.3 ? {} : {
    cors: lw(r, [null, [], [{
      allowedOrigins: ["*"],
      allowedMethods: ["GET"],
      allowedHeaders: [],
      exposeHeaders: [],
    }]]),
  }),
}));

checkLaws(
  "bucket_alias",
  bucketAliasSchema,
  (r) => ({ name: "photos", bucketId: lw(r, ["b1", "b2", null]) }),
);

checkLaws("key", keySchema, (r) => ({
  id: "GK1",
  secret: pick(r, ["s1", "s2"]),
  createdMs: Math.floor(r() * 3),
  name: lw(r, ["n1", "n2"]),
  allowCreateBucket: lw(r, [true, false]),
  deleted: lw(r, [true, false]),
}));

const meta = { size: 3, etag: "e", headers: [["content-type", "x"]] as [string, string][] };
const DAY = 24 * 3600 * 1000;
/** Each version's start: u4 to u6 a day after u1 to u3, past what an upload replaced is kept. */
const STARTS: Record<string, number> = {
  u1: 10,
  u2: 20,
  u3: 30,
  u4: DAY + 40,
  u5: DAY + 50,
  u6: DAY + 60,
};

/** The same data with tags, or an object lock, written at different times (their registers). */
function withRegisters(r: () => number, base: ObjectMeta): ObjectMeta[] {
  return [
    base,
    { ...base, tags: lw(r, [[], [["a", "1"]], [["a", "2"], ["b", "3"]]] as [string, string][][]) },
    {
      ...base,
      ...(r() < 0.5
        ? {
          retention: lw(r, [null, { mode: "GOVERNANCE" as const, untilMs: 99 }, {
            mode: "COMPLIANCE" as const,
            untilMs: 120,
          }]),
        }
        : {}),
      ...(r() < 0.5 ? { legalHold: lw(r, [true, false]) } : {}),
    },
  ];
}

/**
 * A record of one of six versions, in one of the states it goes through. As
 * in remise: whether a version is versioned, and whether it is a multipart
 * upload, is the same in each of its records; an upload in progress, or
 * aborted, has its start's time; a completion or a deletion the same or a
 * later one (two completions of one upload may differ).
 */
function version(r: () => number): ObjectVersion {
  const uuid = pick(r, ["u1", "u2", "u3", "u4", "u5", "u6"]);
  const start = STARTS[uuid];
  const ended = start + (r() < 0.2 ? 1 : 0);
  const versioned = uuid === "u2" || uuid === "u3" || uuid === "u5"
    ? { versioned: true as const }
    : {};
  const multipart = uuid === "u1" || uuid === "u3" || uuid === "u4";
  const data = multipart
    ? withRegisters(r, { ...meta, etag: "e-2" }).map((m) => ({
      type: "parts" as const,
      meta: m,
      parts: [{ partNumber: 1, dataId: "d1", size: 2, etag: "p1" }, {
        partNumber: 2,
        dataId: "d2",
        size: 1,
        etag: "p2",
      }],
    }))
    : [
      ...withRegisters(r, meta).map((m) => ({
        type: "inline" as const,
        meta: m,
        bytes: new Uint8Array([1, 2, 3]),
      })),
      { type: "deleteMarker" as const },
    ];
  const [timestampMs, state] = pick<[number, VersionState]>(r, [
    [start, { state: "uploading", multipart, headers: [] }],
    [start, { state: "aborted" }],
    [ended, { state: "deleted" }],
    ...data.map((d): [number, VersionState] => [ended, { state: "complete", data: d }]),
  ]);
  return { uuid, timestampMs, ...versioned, state };
}

checkLaws("object", objectSchema(), (r) => ({
  bucketId: "b1",
  key: "k",
  versions: objectSchema().merge(
    { bucketId: "b1", key: "k", versions: [] },
    {
      bucketId: "b1",
      key: "k",
      versions: Array.from({ length: 1 + Math.floor(r() * 4) }, () => version(r)),
    },
  ).versions,
}));

/** Deleted or not; a deletion at one of two times, or (written before 2026-11) at none. */
function deletion(r: () => number): { deleted: boolean; deletedMs?: number } {
  if (r() < 0.5) return { deleted: false };
  const at = pick(r, [undefined, 5, 9]);
  return at === undefined ? { deleted: true } : { deleted: true, deletedMs: at };
}

checkLaws("version", versionSchema(), (r) => ({
  dataId: "d1",
  offset: 0,
  hash: "h",
  size: 10,
  ...deletion(r),
}));

// The merge needs no block manager (only the reference counts' hook does).
checkLaws<BlockRef>("block_ref", blockRefSchema(undefined as unknown as BlockManager), (r) => ({
  hash: "h",
  dataId: "d",
  ...deletion(r),
}));

checkLaws("mpu", mpuSchema(), (r) => {
  const upload = {
    uploadId: "u",
    bucketId: "b",
    key: "k",
    initiatedMs: Math.floor(r() * 3),
    parts: Object.fromEntries(
      ["1", "2", "3"].filter(() => r() < 0.6).map((
        n,
      ) => [
        n,
        lw(r, [{ dataId: "d1", size: 5, etag: "e1" }, { dataId: "d2", size: 6, etag: "e2" }]),
      ]),
    ),
    deleted: lw(r, [true, false]),
  };
  // Data ids of replaced parts: never one a current part names.
  const current = new Set(Object.values(upload.parts).map((p) => p.v.dataId));
  const replaced = ["d0", "d1", "d2"].filter((id) => !current.has(id) && r() < 0.4);
  if (replaced.length > 0) Object.assign(upload, { replaced });
  // A cleared entry is an ended one without parts.
  return r() < 0.3
    ? {
      uploadId: "u",
      bucketId: "b",
      key: "k",
      initiatedMs: upload.initiatedMs,
      parts: {},
      deleted: lww(9, true),
      clearedMs: Math.floor(r() * 3),
    }
    : upload;
});

Deno.test("a multipart upload goes on through newer writes of its key, for a day after its start", () => {
  const schema = objectSchema();
  const entry = (versions: ObjectVersion[]) => ({ bucketId: "b1", key: "k", versions });
  const ids = (e: { versions: ObjectVersion[] }) => e.versions.map((v) => v.uuid);
  const uploading: ObjectVersion = {
    uuid: "upload",
    timestampMs: 10,
    state: { state: "uploading", multipart: true, headers: [] },
  };
  const object = (uuid: string, timestampMs: number): ObjectVersion => ({
    uuid,
    timestampMs,
    state: { state: "complete", data: { type: "inline", meta, bytes: new Uint8Array([1]) } },
  });
  const goingOn = schema.merge(entry([uploading]), entry([object("put", 20)]));
  assert.deepEqual(ids(goingOn), ["upload", "put"]);
  assert.deepEqual(ids(schema.merge(goingOn, entry([object("later", 10 + DAY + 1)]))), ["later"]);
  // Completed, then replaced: a replica that missed the completion does not bring it back.
  const completed: ObjectVersion = {
    uuid: "upload",
    timestampMs: 30,
    state: {
      state: "complete",
      data: {
        type: "parts",
        meta: { ...meta, etag: "e-1" },
        parts: [{ partNumber: 1, dataId: "d", size: 3, etag: "p" }],
      },
    },
  };
  const replaced = schema.merge(entry([completed]), entry([object("put again", 40)]));
  assert.deepEqual(replaced.versions.map((v) => v.state.state), ["aborted", "complete"]);
  const withStale = schema.merge(replaced, entry([uploading]));
  assert.deepEqual(withStale, replaced);
});

Deno.test("an abort meeting a completion of its upload ends it deleted at the completion's time, in any order", () => {
  const schema = objectSchema();
  const entry = (versions: ObjectVersion[]) => ({ bucketId: "b1", key: "k", versions });
  const older: ObjectVersion = {
    uuid: "old",
    timestampMs: 5,
    state: { state: "complete", data: { type: "inline", meta, bytes: new Uint8Array([1]) } },
  };
  const aborted: ObjectVersion = { uuid: "up", timestampMs: 10, state: { state: "aborted" } };
  const completed: ObjectVersion = {
    uuid: "up",
    timestampMs: 12,
    state: { state: "complete", data: { type: "inline", meta, bytes: new Uint8Array([2]) } },
  };
  const ended = { uuid: "up", timestampMs: 12, state: { state: "deleted" } };
  for (
    const merged of [
      schema.merge(entry([older, completed]), entry([aborted])),
      schema.merge(entry([aborted]), entry([older, completed])),
      schema.merge(schema.merge(entry([older]), entry([aborted])), entry([completed])),
    ]
  ) {
    // The older null version stays replaced, as the completion had replaced it.
    assert.deepEqual(merged.versions, [ended]);
  }
});

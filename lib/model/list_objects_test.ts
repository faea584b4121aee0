import assert from "node:assert/strict";
import { KvStore } from "../db/kv_store.ts";
import { BlockStore } from "../block/block_store.ts";
import { compareUtf8 } from "../util/utf8_order.ts";
import { listObjects, type ListQuery, type ListResult } from "./listing.ts";
import type { ObjectEntry, ObjectVersion } from "./object_table.ts";
import { Store } from "./store.ts";
import { seededRandom } from "../util/seeded_random.ts";

const BUCKET = "bucket-id";

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remise-list-test-" });
  const db = await KvStore.open(`${dir}/meta`);
  try {
    const store = new Store(db, await BlockStore.open(`${dir}/data`), { blockSize: 1 << 20 });
    await fn(store);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function complete(key: string, t: number): ObjectVersion {
  return {
    uuid: `${key}-${t}`,
    timestampMs: t,
    state: {
      state: "complete",
      data: {
        type: "inline",
        meta: {
          size: key.length,
          etag: `etag-${t}`,
          headers: [["content-type", "text/plain"], ["x-amz-meta-k", key]],
          checksum: t % 2 === 0
            ? { algorithm: "CRC32", value: "AAAAAA==", type: "FULL_OBJECT" }
            : undefined,
        },
        bytes: new TextEncoder().encode(key),
      },
    },
  };
}

/** When each visible key was written. */
const timestamps = new Map<string, number>();

/** How a listing shows a visible key. */
function listed(key: string) {
  const t = timestamps.get(key)!;
  return {
    key,
    lastModifiedMs: t,
    size: key.length,
    etag: `etag-${t}`,
    checksum: t % 2 === 0
      ? { algorithm: "CRC32", value: "AAAAAA==", type: "FULL_OBJECT" as const }
      : undefined,
  };
}

/** What a listing must answer, computed from the visible keys in the plainest way. */
function expected(visible: string[], q: ListQuery): ListResult {
  // A common prefix ends with the delimiter, its only occurrence after the listed prefix.
  const first = q.delimiter === undefined ? -1 : q.after?.indexOf(q.delimiter, q.prefix.length);
  const isCommonPrefix = q.resume === true && q.after !== undefined &&
    q.after.startsWith(q.prefix) && first !== undefined && first >= 0 &&
    first + q.delimiter!.length === q.after.length;
  const items: { name: string; isPrefix: boolean }[] = [];
  for (const key of visible) {
    if (!key.startsWith(q.prefix)) continue;
    if (q.after !== undefined && compareUtf8(key, q.after) <= 0) continue;
    if (isCommonPrefix && key.startsWith(q.after!)) continue;
    const i = q.delimiter === undefined ? -1 : key.indexOf(q.delimiter, q.prefix.length);
    if (i < 0) items.push({ name: key, isPrefix: false });
    else {
      // Keys sharing a common prefix are next to each other in key order.
      const name = key.slice(0, i + q.delimiter!.length);
      if (!items.at(-1)?.isPrefix || items.at(-1)?.name !== name) {
        items.push({ name, isPrefix: true });
      }
    }
  }
  const page = items.slice(0, q.maxKeys);
  return {
    objects: page.filter((i) => !i.isPrefix).map((i) => listed(i.name)),
    commonPrefixes: page.filter((i) => i.isPrefix).map((i) => i.name),
    truncated: items.length > q.maxKeys,
    ...(page.length > 0 ? { last: page.at(-1)!.name } : {}),
  };
}

Deno.test("listObjects answers what the plain definition of a listing answers", () =>
  withStore(async (store) => {
    const random = seededRandom(7);
    const int = (n: number) => Math.floor(random() * n);
    const parts = ["a", "b", "a/", "/", "é", "中", "😀", "\uffff", "x-", "-"];
    const keys = new Set<string>();
    while (keys.size < 600) {
      keys.add(Array.from({ length: 1 + int(5) }, () => parts[int(parts.length)]).join(""));
    }
    const entries: ObjectEntry[] = [];
    const visible: string[] = [];
    let t = 1_000;
    for (const key of keys) {
      t++;
      // About a third of the entries hold no current object: listings read past them.
      if (random() < 0.35) {
        entries.push({
          bucketId: BUCKET,
          key,
          versions: [{
            uuid: `u-${t}`,
            timestampMs: t,
            state: { state: "uploading", multipart: false, headers: [] },
          }],
        });
      } else {
        timestamps.set(key, t);
        entries.push({ bucketId: BUCKET, key, versions: [complete(key, t)] });
        visible.push(key);
      }
    }
    await store.objects.insertMany(entries);
    visible.sort(compareUtf8);

    const prefixes = ["", "a", "a/", "b", "é", "😀", "zz"];
    const delimiters = [undefined, "/", "a/", "-", "😀"];
    for (let i = 0; i < 300; i++) {
      const query: ListQuery = {
        prefix: prefixes[int(prefixes.length)],
        delimiter: delimiters[int(delimiters.length)],
        maxKeys: [1, 2, 3, 7, 50, 1000][int(6)],
        after: random() < 0.3 ? visible[int(visible.length)] : undefined,
        resume: false,
      };
      const label = JSON.stringify(query);
      let page = await listObjects(store, BUCKET, query);
      assert.deepEqual(page, expected(visible, query), label);
      // Page through to the end, as clients do with continuation tokens.
      const all: string[] = [];
      for (let n = 0; n < 1000; n++) {
        all.push(...page.objects.map((o) => o.key), ...page.commonPrefixes);
        if (!page.truncated) break;
        const next: ListQuery = { ...query, after: page.last, resume: true };
        assert.deepEqual(
          page = await listObjects(store, BUCKET, next),
          expected(visible, next),
          JSON.stringify(next),
        );
      }
      const whole = expected(visible, { ...query, maxKeys: Infinity });
      const wholeItems = [...whole.objects.map((o) => o.key), ...whole.commonPrefixes];
      assert.deepEqual(all.sort(compareUtf8), wholeItems.sort(compareUtf8), label);
    }
  }));

import assert from "node:assert/strict";
import { keyTooLarge, KV_KEY_MAX_BYTES } from "./key_size.ts";
import { KvStore } from "./kv_store.ts";
import type { DbKey } from "./db.ts";

Deno.test("keyTooLarge agrees with what Deno KV refuses", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const fits = async (key: DbKey) => {
      try {
        await kv.set(key as Deno.KvKey, 1);
        return true;
      } catch {
        return false;
      }
    };
    // Around the limit, in ASCII, in 2-, 3- and 4-byte characters, with escaped zero bytes.
    const keys: DbKey[] = [];
    for (const unit of ["a", "\u00e9", "\u20ac", "\u{1F600}", "\u0000"]) {
      const bytes = unit === "\u0000" ? 2 : new TextEncoder().encode(unit).byteLength;
      const around = Math.floor((KV_KEY_MAX_BYTES - 2 - 13) / bytes);
      for (const n of [around - 1, around, around + 1, around + 2]) {
        keys.push(["objects", 7, unit.repeat(n)]);
      }
    }
    keys.push([new Uint8Array(2030)], [new Uint8Array(2050)], [123n, "x".repeat(2030)]);
    for (const key of keys) {
      assert.equal(keyTooLarge(key), !(await fits(key)), `key of ${String(key).length} chars`);
    }
  } finally {
    kv.close();
  }
});

Deno.test("a key larger than the engine allows reads as absent", async () => {
  const dir = await Deno.makeTempDir();
  const db = await KvStore.open(`${dir}/meta.kv`);
  try {
    assert.equal(await db.get(["buckets", "b".repeat(3000)]), undefined);
    await db.commit([{ type: "set", key: ["buckets", "b"], value: { ok: true } }]);
    assert.deepEqual(await db.get(["buckets", "b"]), { ok: true });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

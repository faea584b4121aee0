import assert from "node:assert/strict";
import { lww, lwwAfter, mergeLww, stableEqual, stableString } from "./crdt.ts";
import { seededRandom } from "./seeded_random.ts";
import { PINNED_VALUE } from "./_pinned_value.ts";

/** A random value of the shapes table entries have, often sharing parts with others. */
function randomValue(random: () => number, depth = 0): unknown {
  const pick = Math.floor(random() * (depth > 2 ? 7 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return Math.floor(random() * 3);
    case 3:
      return ["a", "b", "5n", ""][Math.floor(random() * 4)];
    case 4:
      return random() < 0.5;
    case 5:
      return new Uint8Array(Math.floor(random() * 3)).fill(Math.floor(random() * 2));
    case 6:
      return [Infinity, NaN, 5n][Math.floor(random() * 3)];
    case 7:
      return Array.from({ length: Math.floor(random() * 3) }, () => randomValue(random, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (const k of ["x", "y", "$b"]) {
        if (random() < 0.6) out[k] = randomValue(random, depth + 1);
      }
      return out;
    }
  }
}

Deno.test("stableEqual agrees with comparing stableStrings", () => {
  const random = seededRandom(42);
  let equal = 0;
  for (let i = 0; i < 20_000; i++) {
    const a = randomValue(random);
    const b = random() < 0.3 ? structuredClone(a) : randomValue(random);
    const expected = stableString(a) === stableString(b);
    if (expected) equal++;
    assert.equal(stableEqual(a, b), expected, `${stableString(a)} vs ${stableString(b)}`);
    assert.equal(stableEqual(b, a), expected);
  }
  assert.ok(equal > 3_000, `enough equal pairs were tried (${equal})`);
});

Deno.test("stableString writes what earlier versions wrote (replicas compare it)", () => {
  assert.equal(
    stableString(PINNED_VALUE),
    '{"entry":{"b":{"$b":"AAH+/w=="},"big":"12n","key":"photos/été \\"1\\".jpg",' +
      '"n":[1,-0.5,1e+21,null,null,null,true],"z":{"\\u0001":"\\n","a":[],"é":"x"}},"v":2}',
  );
  // Plain JSON values: JSON with sorted keys.
  const random = seededRandom(7);
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === "object"
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as never)[k])]))
      : v;
  for (let i = 0; i < 500; i++) {
    const plain = (_: string, x: unknown) =>
      typeof x === "bigint" || x instanceof Uint8Array ? undefined : x;
    const value = JSON.parse(JSON.stringify(randomValue(random), plain) ?? "null");
    assert.equal(stableString(value), JSON.stringify(sorted(value)));
  }
});

Deno.test("stableEqual compares bytes, views included", () => {
  const data = Uint8Array.from({ length: 4096 }, (_, i) => i % 251);
  const other = data.slice();
  other[4095] ^= 1;
  const view = new Uint8Array(8192).subarray(100, 4196);
  view.set(data);
  assert.ok(stableEqual({ bytes: data }, { bytes: data.slice() }));
  assert.ok(stableEqual({ bytes: data }, { bytes: view }));
  assert.ok(!stableEqual({ bytes: data }, { bytes: other }));
  assert.ok(!stableEqual({ bytes: data }, { bytes: data.subarray(1) }));
});

Deno.test("lwwAfter is timestamped now, or just after the register it replaces when that is newer", () => {
  assert.deepEqual(lwwAfter(undefined, 1_000, "a"), { t: 1_000, v: "a" });
  assert.deepEqual(lwwAfter(lww(500, "old"), 1_000, "a"), { t: 1_000, v: "a" });
  const ahead = lww(9_000, "written through a clock ahead");
  const replacing = lwwAfter(ahead, 1_000, "a");
  assert.deepEqual(replacing, { t: 9_001, v: "a" });
  assert.equal(mergeLww(ahead, replacing), replacing);
});

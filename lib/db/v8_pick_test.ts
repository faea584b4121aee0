import assert from "node:assert/strict";
import { deserialize, serialize } from "node:v8";
import { Buffer } from "node:buffer";
import type { ValuePick } from "./db.ts";
import { decodeSerialized, pickSerialized, pickValue } from "./v8_pick.ts";
import { seededRandom } from "../util/seeded_random.ts";
import { objectEntry } from "./_test_values.ts";

const ENTRY_PICK: ValuePick = {
  key: true,
  versions: { timestampMs: true, state: { state: true, data: { meta: { size: true } } } },
};

Deno.test("pickSerialized reads the picked properties and skips the rest", () => {
  const value = objectEntry("dir/key");
  const picked = pickSerialized(serialize(value), 0, ENTRY_PICK);
  assert.deepEqual(picked, {
    key: "dir/key",
    versions: [
      { timestampMs: 1_700_000_000_123, state: { state: "aborted" } },
      {
        timestampMs: 1_700_000_000_456,
        state: { state: "complete", data: { meta: { size: 16 } } },
      },
    ],
  });
  assert.deepEqual(picked, pickValue(value, ENTRY_PICK));
});

Deno.test("pickSerialized reads what deserialize reads, for every kind of plain data", () => {
  const texts = ["", "a", "é latin-1 ÿ", "中文 two-byte", "astral 😀 ok", "x".repeat(10_000)];
  const numbers = [0, 1, -1, 63, 64, -65, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, 0.5, -0];
  const extra = [NaN, Infinity, -1e300, true, false, null, undefined, [], {}, [[1, [2]], {}]];
  for (const v of [...texts, ...numbers, ...extra]) {
    // Copies: a value met twice would be written as a reference to the first.
    const c = () => structuredClone(v);
    const value = { v: c(), list: [c(), { v: c() }], nested: { deep: { v: c() } }, skip: [c()] };
    const pick: ValuePick = { v: true, list: { v: true }, nested: { deep: true } };
    const bytes = serialize(value);
    assert.deepEqual(pickSerialized(bytes, 0, pick), pickValue(deserialize(bytes), pick), `${v}`);
    assert.deepEqual(pickSerialized(bytes, 0, { v: true }), { v });
  }
});

Deno.test("pickSerialized matches property names of every kind", () => {
  const value = { "é": 1, "中": 2, "😀": 3, 7: 4, "-1": 5, "1.5": 6, plain: 7 };
  const pick: ValuePick = { "é": true, "中": true, "😀": true, 7: true, "-1": true, "1.5": true };
  assert.deepEqual(pickSerialized(serialize(value), 0, pick), pickValue(value, pick));
  assert.deepEqual(pickSerialized(serialize(value), 0, { plain: true }), { plain: 7 });
});

Deno.test("pickSerialized declines what it does not read, and pickValue gives the same then", () => {
  const shared = { a: 1 };
  const declined = [
    { bytes: new Int16Array([1, 2]) },
    { date: new Date(0) },
    { map: new Map([[1, 2]]) },
    { shared, again: shared },
  ];
  const pick: ValuePick = { bytes: true, date: true, map: true, again: true };
  for (const value of declined) {
    const bytes = serialize(value);
    assert.equal(pickSerialized(bytes, 0, pick), undefined);
    const { shared: _, ...expected } = deserialize(bytes);
    assert.deepEqual(pickValue(deserialize(bytes), pick), expected);
  }
  // Skipped, a typed array needs no decoding.
  assert.deepEqual(pickSerialized(serialize({ bytes: new Uint8Array(3), n: 1 }), 0, { n: true }), {
    n: 1,
  });
  // Truncated or foreign bytes are declined too.
  const bytes = serialize(objectEntry("k"));
  assert.equal(pickSerialized(bytes.subarray(0, bytes.length - 3), 0, ENTRY_PICK), undefined);
  assert.equal(pickSerialized(new Uint8Array([1, 2, 3]), 0, ENTRY_PICK), undefined);
});

Deno.test("pickSerialized reads arrays that may have holes (V8 writes them sparse)", () => {
  const filled = new Array(3);
  for (let i = 0; i < 3; i++) filled[i] = { n: i, skipped: "x" };
  // deno-lint-ignore no-sparse-arrays
  const value = { filled, holes: [1, , { n: 3 }], empty: new Array(2), skipped: new Array(9) };
  const pick: ValuePick = { filled: { n: true }, holes: { n: true }, empty: true };
  const bytes = serialize(value);
  const picked = pickSerialized(bytes, 0, pick);
  assert.deepEqual(picked, pickValue(deserialize(bytes), pick));
  assert.deepEqual(picked, {
    filled: [{ n: 0 }, { n: 1 }, { n: 2 }],
    // deno-lint-ignore no-sparse-arrays
    holes: [1, , { n: 3 }],
    empty: new Array(2),
  });
});

Deno.test("pickSerialized reads from an offset", () => {
  const bytes = serialize({ a: 1, b: 2 });
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(pickSerialized(shifted, 1, { b: true }), { b: 2 });
});

Deno.test("pickSerialized agrees with deserialize and pickValue on random values and picks", () => {
  const random = seededRandom(42);
  const int = (n: number) => Math.floor(random() * n);
  const chars = ["a", "z", "/", "é", "ÿ", "中", "😀", "\u0000", "\n"];
  const names = ["a", "b", "key", "é", "中", "1", "versions"];
  const text = () => Array.from({ length: int(6) }, () => chars[int(chars.length)]).join("");
  const value = (depth: number): unknown => {
    switch (depth > 3 ? int(4) : int(7)) {
      case 0:
        return text();
      case 1:
        return [0, -7, 2 ** 40, 1.25, NaN][int(5)];
      case 2:
        return [true, false, null, undefined][int(4)];
      case 3:
        return new Uint8Array(int(4));
      case 4: {
        const o: Record<string, unknown> = {};
        for (let i = int(4); i > 0; i--) o[names[int(names.length)]] = value(depth + 1);
        return o;
      }
      case 5:
        return Array.from({ length: int(4) }, () => value(depth + 1));
      default: {
        const holey = new Array(int(4));
        for (let i = 0; i < holey.length; i++) if (random() < 0.7) holey[i] = value(depth + 1);
        return holey;
      }
    }
  };
  const pick = (depth: number): ValuePick => {
    const p: Record<string, true | ValuePick> = {};
    for (let i = int(4); i > 0; i--) {
      p[names[int(names.length)]] = depth > 2 || random() < 0.4 ? true : pick(depth + 1);
    }
    return p;
  };
  for (let i = 0; i < 2000; i++) {
    const v = { root: value(0), [names[int(names.length)]]: value(1) };
    const p = pick(0);
    const bytes = serialize(v);
    const picked = pickSerialized(bytes, 0, p);
    const expected = pickValue(deserialize(bytes), p);
    assert.deepEqual(picked, expected);
    assert.deepEqual(decodeSerialized(bytes, 0), { value: deserialize(bytes) });
  }
});

Deno.test("decodeSerialized builds byte arrays and Buffers of their own, and declines other typed arrays", () => {
  const backing = new Uint8Array(10).map((_, i) => i);
  const value = {
    view: backing.subarray(2, 5),
    buffer: Buffer.from([7, 8]),
    empty: new Uint8Array(),
  };
  const decoded = decodeSerialized(serialize(value), 0)!.value as typeof value;
  assert.deepEqual(decoded, deserialize(serialize(value)));
  assert.equal(decoded.view.constructor, Uint8Array);
  assert.ok(Buffer.isBuffer(decoded.buffer));
  assert.deepEqual([...decoded.view], [2, 3, 4]);
  assert.equal(decodeSerialized(serialize({ n: new Float64Array(2) }), 0), undefined);
  assert.equal(decodeSerialized(serialize(new Map()), 0), undefined);
});

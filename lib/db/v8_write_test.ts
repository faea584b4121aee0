import assert from "node:assert/strict";
import { deserialize, serialize } from "node:v8";
import { Buffer } from "node:buffer";
import { encodeSerialized } from "./v8_write.ts";
import { decodeSerialized } from "./v8_pick.ts";
import { seededRandom } from "../util/seeded_random.ts";
import { objectEntry } from "./_test_values.ts";

/** Reads `bytes` back with node:v8 and with v8_pick.ts; both must give `expected`. */
function assertReadsBack(bytes: Uint8Array, expected: unknown) {
  assert.deepEqual(deserialize(bytes), expected);
  assert.deepEqual(decodeSerialized(bytes, 0), { value: expected });
}

Deno.test("encodeSerialized writes an object entry byte for byte as node:v8 does", () => {
  const entry = { ...objectEntry("dir/key"), deleted: false, note: null, gone: undefined };
  assert.deepEqual(encodeSerialized(entry), new Uint8Array(serialize(entry)));
});

Deno.test("encodeSerialized keeps numbers, strings beyond Latin-1 and byte array types", () => {
  const value = {
    numbers: [0, -0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, -1.5, NaN, Infinity],
    strings: ["", "ascii", "é ÿ", "中文", "😀", "a\u0000b"],
    view: new Uint8Array([1, 2, 3, 4, 5]).subarray(1, 4),
    buffer: Buffer.from([9, 8]),
    empty: new Uint8Array(),
  };
  const bytes = encodeSerialized(value)!;
  assertReadsBack(bytes, value);
  const back = deserialize(bytes) as typeof value;
  assert.ok(Object.is(back.numbers[1], -0), "-0 stays -0");
  assert.equal(back.view.constructor, Uint8Array);
  assert.ok(Buffer.isBuffer(back.buffer));
});

Deno.test("encodeSerialized aligns two-byte strings after a reserved header", () => {
  for (let reserved = 0; reserved < 4; reserved++) {
    for (const s of ["中", "x中", "中文字符".repeat(40)]) {
      const value = { a: "é", s, list: [s, 1, s] };
      const bytes = encodeSerialized(value, reserved)!;
      assert.deepEqual([...bytes.subarray(0, reserved)], new Array(reserved).fill(0));
      assertReadsBack(bytes.subarray(reserved), value);
      // Padding, where V8 puts it: the payload is node:v8's byte for byte, whatever the header.
      assert.deepEqual(bytes.subarray(reserved), new Uint8Array(serialize(value)));
    }
  }
});

Deno.test("encodeSerialized declines what node:v8 must write", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const matched = "ab".match(/b/)!;
  class Point {
    x = 1;
  }
  for (
    const value of [
      new Map(),
      new Date(0),
      new Float64Array(2),
      1n,
      [1, , 3],
      cyclic,
      matched,
      new Point(),
      { nested: [{ deep: new Set() }] },
      Symbol("s"),
      () => {},
    ]
  ) {
    assert.equal(encodeSerialized(value), undefined, String(value?.constructor?.name ?? value));
  }
});

Deno.test("encodeSerialized agrees with node:v8 on random plain values", () => {
  const random = seededRandom(7);
  const int = (n: number) => Math.floor(random() * n);
  const chars = ["a", "z", "/", "é", "ÿ", "中", "😀", "\u0000", "\n", '"'];
  const names = ["a", "b", "key", "é", "中", "1", "10", "versions", "__proto__"];
  const text = () => Array.from({ length: int(8) }, () => chars[int(chars.length)]).join("");
  const value = (depth: number): unknown => {
    switch (depth > 3 ? int(4) : int(6)) {
      case 0:
        return text();
      case 1:
        return [0, -7, 2 ** 40, 1.25, NaN, -0, 2 ** 31, -(2 ** 31) - 1][int(8)];
      case 2:
        return [true, false, null, undefined][int(4)];
      case 3:
        return random() < 0.5 ? new Uint8Array(int(300)).map(() => int(256)) : Buffer.alloc(int(4));
      case 4: {
        const o: Record<string, unknown> = {};
        for (let i = int(5); i > 0; i--) {
          Object.defineProperty(o, names[int(names.length)], {
            value: value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return o;
      }
      default:
        return Array.from({ length: int(4) }, () => value(depth + 1));
    }
  };
  for (let i = 0; i < 2000; i++) {
    const v = value(0);
    const bytes = encodeSerialized(v);
    assert.ok(bytes !== undefined, `plain value ${i} is written`);
    assertReadsBack(bytes, deserialize(serialize(v)));
  }
});

Deno.test("encodeSerialized writes values larger than its scratch buffer", () => {
  const value = { big: new Uint8Array(3 * 1024 * 1024).fill(5), text: "中".repeat(100_000) };
  assertReadsBack(encodeSerialized(value, 1)!.subarray(1), value);
  const small = { n: 1 };
  assertReadsBack(encodeSerialized(small)!, small);
});

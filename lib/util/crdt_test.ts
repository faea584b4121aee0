import assert from "node:assert/strict";
import { stableEqual, stableString } from "./crdt.ts";
import { seededRandom } from "./seeded_random.ts";

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

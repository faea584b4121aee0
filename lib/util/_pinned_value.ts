/** For tests that pin the anti-entropy format (stableString, itemHash): a value of every kind
 * stableString writes, and keys JSON must escape. */
export const PINNED_VALUE = {
  v: 2,
  entry: {
    key: 'photos/été "1".jpg',
    n: [1, -0.5, 1e21, NaN, null, undefined, true],
    b: new Uint8Array([0, 1, 254, 255]),
    big: 12n,
    skip: undefined,
    z: { "é": "x", "\u0001": "\n", a: [] },
  },
};

import assert from "node:assert/strict";
import { formatByteSize, formatMeasuredByteSize, parseByteSize } from "./byte_size.ts";

Deno.test("parseByteSize reads binary and decimal units", () => {
  assert.equal(parseByteSize("1048576"), 1048576);
  assert.equal(parseByteSize("100B"), 100);
  assert.equal(parseByteSize("512K"), 512 * 1024);
  assert.equal(parseByteSize("512k"), 512 * 1024);
  assert.equal(parseByteSize("1M"), 1024 * 1024);
  assert.equal(parseByteSize("1MiB"), 1024 * 1024);
  assert.equal(parseByteSize("1 mib"), 1024 * 1024);
  assert.equal(parseByteSize("4MB"), 4_000_000);
  assert.equal(parseByteSize("2G"), 2 * 1024 ** 3);
  assert.equal(parseByteSize("1GB"), 1e9);
  assert.equal(parseByteSize("1.5M"), 1.5 * 1024 * 1024);
  assert.equal(parseByteSize(" 64KiB "), 65536);
});

Deno.test("parseByteSize refuses what is not a whole byte size", () => {
  for (const bad of ["", "abc", "M", "-1M", "1X", "1MiBB", "0.5", "1.2.3K", "1e6", "1 M B"]) {
    assert.equal(parseByteSize(bad), undefined, bad);
  }
});

Deno.test("formatByteSize uses the largest binary unit that divides", () => {
  assert.equal(formatByteSize(65536), "64 KiB");
  assert.equal(formatByteSize(64 * 1024 * 1024), "64 MiB");
  assert.equal(formatByteSize(3 * 1024 ** 3), "3 GiB");
  assert.equal(formatByteSize(1000), "1000 B");
  assert.equal(formatByteSize(1536 * 1024), "1536 KiB");
});

Deno.test("formatMeasuredByteSize rounds to three digits in the largest unit", () => {
  assert.equal(formatMeasuredByteSize(81_120_411_648), "75.5 GiB");
  assert.equal(formatMeasuredByteSize(270_553_174_016), "252 GiB");
  assert.equal(formatMeasuredByteSize(64 * 1024 * 1024), "64 MiB");
  assert.equal(formatMeasuredByteSize(1536), "1.5 KiB");
  assert.equal(formatMeasuredByteSize(1000), "1000 B");
  assert.equal(formatMeasuredByteSize(0), "0 B");
});

import assert from "node:assert/strict";
import { log, SampledLog } from "./log.ts";

Deno.test("a message is one line: control characters from a request cannot forge log lines", () => {
  const printed: string[] = [];
  const original = console.error;
  console.error = (line: string) => printed.push(line);
  try {
    log(
      "remise::test",
      "error",
      'Invalid header value: "text/plain\r\n2026-01-01 INFO forged\u0000"',
    );
  } finally {
    console.error = original;
  }
  assert.equal(printed.length, 1);
  assert.ok(!["\r", "\n", "\u0000"].some((c) => printed[0].includes(c)));
  assert.match(printed[0], /text\/plain\\x0d\\x0a2026-01-01 INFO forged\\x00"$/);
});

Deno.test("a sampled message is logged once per interval, with the count left out", () => {
  const printed: string[] = [];
  const original = console.error;
  console.error = (line: string) => printed.push(line);
  let now = 0;
  const sampled = new SampledLog("remise::test", "warn", 10_000, () => now);
  try {
    for (; now < 25_000; now += 1_000) sampled.log(`request ${now}: too few replicas`);
  } finally {
    console.error = original;
  }
  assert.equal(printed.length, 3);
  assert.match(printed[0], /request 0: too few replicas$/);
  assert.match(printed[1], /request 10000: too few replicas \(9 more since the last\)$/);
  assert.match(printed[2], /request 20000: too few replicas \(9 more since the last\)$/);
});

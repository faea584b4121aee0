import assert from "node:assert/strict";
import { log } from "./log.ts";

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

import assert from "node:assert/strict";
import { WarningBudget } from "./warning_budget.ts";
import { setLogFilter } from "./log.ts";

Deno.test("warning budget: a few warnings per window, the others counted in the next one logged", () => {
  setLogFilter("warn");
  const lines: string[] = [];
  const original = console.error;
  console.error = (line: string) => lines.push(line);
  let now = 0;
  try {
    const budget = new WarningBudget("remise::test", "failures", 2, 60_000, () => now);
    for (let i = 1; i <= 5; i++) budget.warn(`failure ${i}`);
    now = 60_000;
    budget.warn("failure 6");
  } finally {
    console.error = original;
  }
  assert.equal(lines.length, 3, lines.join("\n"));
  assert.match(lines[0], /failure 1$/);
  assert.match(lines[1], /failure 2$/);
  assert.match(
    lines[2],
    /failure 6 \(3 more failures before this one were logged at debug level only\)$/,
  );
});

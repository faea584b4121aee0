import assert from "node:assert/strict";
import {
  checkConditionalHistory,
  type ConditionalRead,
  type ConditionalWrite,
} from "./conditional_chains.ts";

let clock = 0;
function write(
  kind: ConditionalWrite["kind"],
  base: string | null,
  writes: string | undefined,
  outcome: ConditionalWrite["outcome"] = "ok",
): ConditionalWrite {
  clock += 10;
  return { key: "k", kind, base, writes, outcome, start: clock, end: clock + 5, label: "t" };
}
const read = (seen: string | null, start = clock + 100): ConditionalRead => ({
  key: "k",
  seen,
  start,
  end: start + 2,
  label: "t",
});

Deno.test("a history of writes that took turns passes, and its end is the last write", () => {
  const history = [
    write("create", null, "a"),
    write("put", "a", "b"),
    write("put", "a", "x", "rejected"), // lost the race: 412
    write("delete", "b", undefined),
    write("create", null, "c"),
    write("put", "c", "d", "ambiguous"), // may have landed
  ];
  assert.deepEqual(checkConditionalHistory(history, [read("d"), read("c")]), []);
  assert.match(checkConditionalHistory(history, [read(null)]).join(), /returned 404 after/);
  assert.match(checkConditionalHistory(history, [read("b")]).join(), /replaced before it/);
  assert.match(checkConditionalHistory(history, [read("x")]).join(), /which no write .* wrote/);
});

Deno.test("two acknowledged writes from one base are a lost update", () => {
  const history = [write("create", null, "a"), write("put", "a", "b"), write("put", "a", "c")];
  assert.match(
    checkConditionalHistory(history, []).join(),
    /k: 2 acknowledged writes replaced ETag a/,
  );
});

Deno.test("two acknowledged creates with nothing deleted between are two winners", () => {
  const history = [
    write("create", null, "a"),
    write("put", "a", "b"),
    write("create", null, "c"),
  ];
  assert.match(checkConditionalHistory(history, []).join(), /2 acknowledged creates/);
  // A deletion of the first chain, even one that may not have landed, explains the second.
  history.push(write("delete", "b", undefined, "ambiguous"));
  assert.deepEqual(checkConditionalHistory(history, []), []);
});

Deno.test("a read of what an acknowledged write had replaced before it began is stale", () => {
  const history = [write("create", null, "a"), write("put", "a", "b")];
  const replacedAt = history[1].end;
  assert.match(
    checkConditionalHistory(history, [read("a", replacedAt + 1)]).join(),
    /returned ETag a, replaced before it by the ok put/,
  );
  // While the write was in flight, either may be read.
  assert.deepEqual(checkConditionalHistory(history, [read("a", replacedAt - 1)]), []);
});

Deno.test("a key may end absent only if a deletion may have followed every write that landed", () => {
  const passes = (history: ConditionalWrite[], seen: string | null) =>
    checkConditionalHistory(history, [read(seen)]).length === 0;
  const deleted = [write("create", null, "a"), write("delete", "a", undefined, "ambiguous")];
  assert.ok(passes(deleted, null) && passes(deleted, "a"));
  deleted.push(write("create", null, "b", "ambiguous"));
  assert.ok(passes(deleted, null) && passes(deleted, "a") && passes(deleted, "b"));
  // A put that may not have landed does not delete.
  const replaced = [write("create", null, "a"), write("put", "a", "b", "ambiguous")];
  assert.ok(!passes(replaced, null) && passes(replaced, "a") && passes(replaced, "b"));
});

Deno.test("a write that a landed write required had landed too: reading what it replaced is stale", () => {
  const history = [
    write("create", null, "a"),
    write("put", "a", "b", "ambiguous"), // landed: c required it
    write("put", "b", "c"),
  ];
  assert.match(
    checkConditionalHistory(history, [read("a", history[2].end + 1)]).join(),
    /returned ETag a, replaced before it by the ambiguous put/,
  );
  assert.deepEqual(checkConditionalHistory(history, [read("a", history[2].end - 1)]), []);
});

Deno.test("a 404 after a write landed, with no deletion begun by the read's end, is stale", () => {
  const history = [write("create", null, "a"), write("put", "a", "b")];
  assert.match(
    checkConditionalHistory(history, [read(null, history[1].end + 1)]).join(),
    /returned 404 after the ok create/,
  );
  // A deletion of what replaced it, sent while the read ran (even one that may not have landed).
  const deletion = write("delete", "b", undefined, "ambiguous");
  assert.deepEqual(
    checkConditionalHistory([...history, deletion], [read(null, deletion.start - 1)]),
    [],
  );
  assert.match(
    checkConditionalHistory([...history, deletion], [read(null, deletion.start - 10)]).join(),
    /returned 404/,
  );
});

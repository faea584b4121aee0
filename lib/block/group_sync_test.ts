import assert from "node:assert/strict";
import { GroupSync } from "./group_sync.ts";

Deno.test("GroupSync syncs the first at once, those arriving meanwhile together, a key once", async () => {
  const groups: string[][] = [];
  const running: { target: string; resolve: () => void }[] = [];
  const finishRunning = () => {
    groups.push(running.map((r) => r.target));
    for (const r of running.splice(0)) r.resolve();
  };
  const group = new GroupSync<string>(
    (target) => new Promise<void>((resolve) => running.push({ target, resolve })),
    (target) => target.split("/")[0],
  );
  const first = group.sync("a/1");
  const waiting = [group.sync("b/1"), group.sync("c/1"), group.sync("c/2")];
  finishRunning();
  await first;
  while (running.length < 2) await new Promise((r) => setTimeout(r, 1));
  finishRunning();
  await Promise.all(waiting);
  assert.deepEqual(groups, [["a/1"], ["b/1", "c/1"]]);
});

Deno.test("GroupSync rejects the callers of a failed sync only", async () => {
  const group = new GroupSync<string>((target) =>
    target === "bad" ? Promise.reject(new Error("EIO")) : Promise.resolve()
  );
  const results = await Promise.allSettled([
    group.sync("good"),
    group.sync("bad"),
    group.sync("x"),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
});

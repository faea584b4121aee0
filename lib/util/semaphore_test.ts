import assert from "node:assert/strict";
import { Semaphore } from "./semaphore.ts";

Deno.test("Semaphore lets `permits` holders in at once, the next in arrival order", async () => {
  const semaphore = new Semaphore(2);
  const order: string[] = [];
  const a = await semaphore.acquire();
  const b = await semaphore.acquire();
  const c = semaphore.acquire().then((release) => (order.push("c"), release));
  const d = semaphore.acquire().then((release) => (order.push("d"), release));
  await Promise.resolve();
  assert.deepEqual(order, []);
  a();
  a(); // a second release gives nothing back
  const releaseC = await c;
  assert.deepEqual(order, ["c"]);
  b();
  (await d)();
  releaseC();
  assert.deepEqual(order, ["c", "d"]);
  const e = await semaphore.acquire();
  const f = await semaphore.acquire();
  e();
  f();
});

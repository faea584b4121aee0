import assert from "node:assert/strict";
import { BackgroundWorker, PeriodicWorker, sleep, WorkerRegistry } from "./worker.ts";
import { setLogFilter } from "./log.ts";

setLogFilter("error");

/** Waits until `cond` holds, polling; fails after `timeoutMs`. */
async function until(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await sleep(5);
  }
}

class ScriptedWorker extends BackgroundWorker {
  steps = 0;
  constructor(
    readonly name: string,
    private readonly step: (n: number, signal: AbortSignal) => Promise<number>,
  ) {
    super({ errorBackoffMinMs: 10, errorBackoffMaxMs: 40 });
  }
  protected work(signal: AbortSignal): Promise<number> {
    return this.step(++this.steps, signal);
  }
  protected override details() {
    return { queueLength: Math.max(0, 3 - this.steps) };
  }
}

Deno.test("worker runs steps back to back while busy, sleeps when idle, wakes and stops promptly", async () => {
  const worker = new ScriptedWorker("w", (n) => Promise.resolve(n < 3 ? 0 : 60_000));
  assert.equal(worker.status().state, "stopped");
  worker.start();
  await until(() => worker.steps === 3);
  await until(() => worker.status().state === "idle");
  const status = worker.status();
  assert.equal(status.queueLength, 0);
  assert.equal(status.errors, 0);
  assert.ok(status.lastRunMs !== undefined);

  worker.wake(); // cuts the 60 s sleep short
  await until(() => worker.steps === 4);

  const started = Date.now();
  assert.equal(await worker.stop(), true);
  assert.ok(Date.now() - started < 1_000, "stop does not wait for the sleep to end");
  assert.equal(worker.status().state, "stopped");
  assert.equal(worker.running, false);
});

Deno.test("worker backs off after a failure, records it, then recovers and clears it", async () => {
  const worker = new ScriptedWorker(
    "w",
    (n) => n <= 2 ? Promise.reject(new Error(`boom ${n}`)) : Promise.resolve(60_000),
  );
  worker.start();
  await until(() => worker.steps === 1);
  await until(() => worker.status().errors === 1);
  assert.equal(worker.status().lastError, "boom 1");
  await until(() => worker.steps === 3);
  await until(() => worker.status().state === "idle");
  assert.equal(worker.status().errors, 2, "the failures stay counted");
  assert.equal(worker.status().lastError, undefined, "a stale error is not shown as current");
  assert.equal(await worker.stop(), true);
});

Deno.test("worker stop is bounded when a step hangs", async () => {
  const worker = new ScriptedWorker("stuck", () => new Promise<number>(() => {}));
  worker.start();
  await until(() => worker.status().state === "busy");
  const started = Date.now();
  assert.equal(await worker.stop(50), false);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 40 && elapsed < 1_000, `stop took ${elapsed} ms`);
});

Deno.test("worker step sees its signal aborted on stop", async () => {
  let sawAbort = false;
  const worker = new ScriptedWorker("w", async (_n, signal) => {
    await sleep(60_000, signal);
    sawAbort = signal.aborted;
    return 0;
  });
  worker.start();
  await until(() => worker.status().state === "busy");
  assert.equal(await worker.stop(1_000), true);
  assert.equal(sawAbort, true);
});

Deno.test("a paused worker runs no step until resumed", async () => {
  const worker = new ScriptedWorker("w", () => Promise.resolve(1));
  worker.pause();
  worker.start();
  await sleep(30);
  assert.equal(worker.steps, 0);
  assert.equal(worker.status().state, "paused");
  worker.resume();
  await until(() => worker.steps > 2);
  assert.equal(await worker.stop(), true);
});

Deno.test("registry lists statuses by name, refuses duplicates and stops all", async () => {
  const registry = new WorkerRegistry();
  let runs = 0;
  registry.register(
    new PeriodicWorker("b periodic", 60_000, () => Promise.resolve(`run ${++runs}`)),
  );
  const a = registry.register(new ScriptedWorker("a scripted", () => Promise.resolve(60_000)));
  assert.throws(
    () => registry.register(new ScriptedWorker("a scripted", () => Promise.resolve(1))),
    /exists/,
  );
  a.start();
  (registry.get("b periodic") as PeriodicWorker).start();
  await until(() => runs === 1 && a.steps === 1);
  await until(() => registry.list().every((s) => s.state === "idle"));
  const list = registry.list();
  assert.deepEqual(list.map((s) => s.name), ["a scripted", "b periodic"]);
  assert.equal(list[1].progress, "run 1");
  assert.equal(await registry.stopAll(1_000), true);
  assert.ok(registry.list().every((s) => s.state === "stopped"));
});

Deno.test("a periodic worker's first run may wait", async () => {
  let runs = 0;
  const worker = new PeriodicWorker("waits", 60_000, () => Promise.resolve(`run ${++runs}`), {
    firstRunDelayMs: 150,
  });
  worker.start();
  await sleep(50);
  assert.equal(runs, 0, "not yet");
  await until(() => runs === 1);
  assert.equal(await worker.stop(), true);
});

Deno.test("sleep ends early on abort and leaves no timer", async () => {
  const controller = new AbortController();
  const started = Date.now();
  const done = sleep(60_000, controller.signal);
  controller.abort();
  await done;
  assert.ok(Date.now() - started < 1_000);
});

import assert from "node:assert/strict";
import { PushBacklog, PushSkippedError } from "./push_backlog.ts";

/** A send that finishes when the test says so. */
function pendingSend() {
  let finish!: () => void;
  let fail!: (e: Error) => void;
  let started = false;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return {
    send: () => {
      started = true;
      return done;
    },
    get started() {
      return started;
    },
    finish,
    fail,
  };
}

const never = new Promise<void>(() => {});
const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("push backlog: pushes under the bound go at once, and count until they finish", async () => {
  const backlog = new PushBacklog(100);
  const a = pendingSend();
  const b = pendingSend();
  const pushes = [backlog.push("n1", 60, never, a.send), backlog.push("n1", 40, never, b.send)];
  await turn();
  assert.ok(a.started && b.started);
  assert.equal(backlog.backlogOf("n1"), 100);
  a.finish();
  b.finish();
  await Promise.all(pushes);
  assert.equal(backlog.backlogOf("n1"), 0);
});

Deno.test("push backlog: over the bound, a push waits for the peer's backlog to shrink", async () => {
  const backlog = new PushBacklog(100);
  const first = pendingSend();
  const second = pendingSend();
  const other = pendingSend();
  const pushes = [
    backlog.push("n1", 80, never, first.send),
    backlog.push("n1", 40, never, second.send),
    backlog.push("n2", 80, never, other.send),
  ];
  await turn();
  assert.ok(first.started);
  assert.ok(!second.started, "waits while n1 has 80 bytes on their way");
  assert.ok(other.started, "another peer's backlog is its own");
  first.fail(new Error("connection lost")); // a failed push frees its bytes too
  await assert.rejects(pushes[0], /connection lost/);
  await turn();
  assert.ok(second.started);
  assert.equal(backlog.backlogOf("n1"), 40);
  second.finish();
  other.finish();
  await Promise.all(pushes.slice(1));
});

Deno.test("push backlog: a push still waiting when the quorum is settled is skipped, never sent", async () => {
  const backlog = new PushBacklog(100);
  const first = pendingSend();
  const late = pendingSend();
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => settle = resolve);
  const pushing = backlog.push("node-one-0123456789", 80, never, first.send);
  const skipped = backlog.push("node-one-0123456789", 40, settled, late.send);
  await turn();
  settle();
  await assert.rejects(skipped, (e) => {
    assert.ok(e instanceof PushSkippedError);
    assert.match(e.message, /80 bytes .* node node-one-0123456, which will fetch this one itself/);
    return true;
  });
  assert.ok(!late.started);
  const metrics = Object.fromEntries(backlog.families().map((f) => [f.name, f.samples]));
  assert.deepEqual(metrics["remise_block_push_backlog_bytes"], [
    { labels: { node: "node-one-0123456" }, value: 80 },
  ]);
  assert.deepEqual(metrics["remise_block_pushes_skipped_total"], [
    { labels: { node: "node-one-0123456" }, value: 1 },
  ]);
  // A peer never pushed to has its series too, at 0.
  const withPeers = backlog.families(["node-one-0123456789", "node-two-0123456789"]);
  assert.deepEqual(withPeers.map((f) => f.samples), [
    [
      { labels: { node: "node-one-0123456" }, value: 80 },
      { labels: { node: "node-two-0123456" }, value: 0 },
    ],
    [
      { labels: { node: "node-one-0123456" }, value: 1 },
      { labels: { node: "node-two-0123456" }, value: 0 },
    ],
  ]);
  first.finish();
  await pushing;
});

Deno.test("push backlog: a block larger than the bound goes when nothing else is on its way", async () => {
  const backlog = new PushBacklog(100);
  const big = pendingSend();
  const pushing = backlog.push("n1", 500, never, big.send);
  await turn();
  assert.ok(big.started);
  big.finish();
  await pushing;
  assert.equal(backlog.backlogOf("n1"), 0);
});

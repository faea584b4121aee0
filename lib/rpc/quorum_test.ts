import assert from "node:assert/strict";
import { quorumCall, QuorumError, quorumRead, quorumWrite } from "./quorum.ts";

const NODES = ["near", "middle", "far"];

/** A call that records which nodes it was made to; `answers` says how each answers. */
function recorder(answers: Record<string, Promise<string>>) {
  const asked: string[] = [];
  const fn = (node: string) => {
    asked.push(node);
    return answers[node] ?? Promise.resolve(node);
  };
  return { asked, fn };
}

const never = new Promise<string>(() => {});
const nodesOf = (results: { node: string }[]) => results.map((r) => r.node).sort();

Deno.test("quorumRead asks only the nearest quorum when they answer", async () => {
  const { asked, fn } = recorder({});
  const results = await quorumRead("read", NODES, 2, 1000, fn);
  assert.deepEqual(nodesOf(results), ["middle", "near"]);
  assert.deepEqual(asked, ["near", "middle"]);
});

Deno.test("quorumRead asks the next node when one fails", async () => {
  const { asked, fn } = recorder({ middle: Promise.reject(new Error("link down")) });
  const results = await quorumRead("read", NODES, 2, 1000, fn);
  assert.deepEqual(nodesOf(results), ["far", "near"]);
  assert.deepEqual(asked, ["near", "middle", "far"]);
});

Deno.test("quorumRead asks the others once the hedge delay passed without a quorum", async () => {
  const { asked, fn } = recorder({ middle: never });
  const started = performance.now();
  const results = await quorumRead("read", NODES, 2, 30, fn);
  assert.deepEqual(nodesOf(results), ["far", "near"]);
  assert.deepEqual(asked, ["near", "middle", "far"]);
  assert.ok(performance.now() - started >= 25, "the far node is asked only after the delay");
});

Deno.test("quorumRead rejects with every cause once the quorum cannot be reached", async () => {
  const { fn } = recorder({
    near: Promise.reject(new Error("disk on fire")),
    far: Promise.reject(new Error("refused")),
  });
  const error = await quorumRead("read object entry", NODES, 2, 1000, fn).then(
    () => assert.fail("resolved without a quorum"),
    (e) => e,
  );
  assert.ok(error instanceof QuorumError);
  assert.equal(error.successes, 1);
  assert.deepEqual(error.causes.map((c: { node: string }) => c.node).sort(), ["far", "near"]);
  assert.match(error.message, /Cannot read object entry: 1 of the 2 replicas needed answered/);
  assert.match(error.message, /disk on fire/);
});

Deno.test("quorumRead and quorumCall refuse an empty node set and a quorum larger than it", async () => {
  const { fn } = recorder({});
  await assert.rejects(quorumRead("read", [], 1, 1000, fn), /no layout yet/);
  await assert.rejects(quorumRead("read", ["near"], 2, 1000, fn), QuorumError);
  await assert.rejects(quorumCall("write", [], 1, fn), /no layout yet/);
});

Deno.test("quorumCall asks every node at once", async () => {
  const { asked, fn } = recorder({ far: never });
  const results = await quorumCall("write", NODES, 2, fn);
  assert.deepEqual(nodesOf(results), ["middle", "near"]);
  assert.deepEqual(asked, NODES);
});

Deno.test("quorumWrite with localLast writes this node's replica once another stored the write", async () => {
  let releaseNear!: () => void;
  const near = new Promise<string>((resolve) => releaseNear = () => resolve("near"));
  const { asked, fn } = recorder({ near, far: never });
  const writing = quorumWrite("write", [["self", "near", "far"]], () => 2, fn, {
    localLast: "self",
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(asked.sort(), ["far", "near"], "this node waits for the others");
  releaseNear();
  assert.deepEqual(nodesOf(await writing), ["near", "self"]);
  assert.deepEqual(asked.sort(), ["far", "near", "self"]);
});

Deno.test("quorumWrite with localLast leaves this node's replica unwritten when the others fail", async () => {
  const down = () => Promise.reject(new Error("link down"));
  const { asked, fn } = recorder({ near: down(), far: down() });
  await assert.rejects(
    quorumWrite("write", [["self", "near", "far"]], () => 2, fn, { localLast: "self" }),
    (e) => e instanceof QuorumError && e.successes === 0 && e.causes.length === 2,
  );
  assert.deepEqual(asked.sort(), ["far", "near"], "never written here");
});

Deno.test("quorumWrite with localLast reaches the quorum with one other replica down", async () => {
  const { asked, fn } = recorder({ far: Promise.reject(new Error("link down")) });
  const results = await quorumWrite("write", [["self", "near", "far"]], () => 2, fn, {
    localLast: "self",
  });
  assert.deepEqual(nodesOf(results), ["near", "self"]);
  assert.deepEqual(asked.sort(), ["far", "near", "self"]);
  // A store that runs alone writes at once.
  const alone = await quorumWrite("write", [["self"]], () => 1, fn, { localLast: "self" });
  assert.deepEqual(nodesOf(alone), ["self"]);
});

Deno.test("quorumWrite with localLast leaves no refusal unhandled when this node is never called", async () => {
  // This node's set is too small for its quorum, so it is never asked; its
  // other replica fails through another set, which refuses this node's write.
  const { asked, fn } = recorder({ near: Promise.reject(new Error("link down")) });
  await assert.rejects(
    quorumWrite("write", [["self", "near"], ["near"]], (n) => n === 2 ? 3 : 1, fn, {
      localLast: "self",
    }),
    QuorumError,
  );
  await new Promise((resolve) => setTimeout(resolve, 10)); // an unhandled rejection fails the test
  assert.deepEqual(asked, ["near"]);
});

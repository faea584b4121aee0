import assert from "node:assert/strict";
import {
  type Assignment,
  type AssignmentReport,
  computeAssignment,
  idealShares,
  type NodeRole,
  PARTITION_COUNT,
  partitionOf,
} from "./layout_assignment.ts";
import { seededRandom } from "../util/seeded_random.ts";

const P = PARTITION_COUNT;
const UNIT_BYTES = 1_000_000_000_000;

function randomInt(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

function randomNode(rand: () => number, zoneCount: number): NodeRole {
  const id = Array.from(
    { length: 4 },
    () => randomInt(rand, 0, 0xffff).toString(16).padStart(4, "0"),
  )
    .join("");
  return {
    id,
    zone: `zone-${randomInt(rand, 1, zoneCount)}`,
    capacity: randomInt(rand, 1, 10) * UNIT_BYTES,
  };
}

function randomCluster(rand: () => number): { nodes: NodeRole[]; zoneCount: number; rf: number } {
  const zoneCount = randomInt(rand, 1, 5);
  const nodes = Array.from({ length: randomInt(rand, 1, 12) }, () => randomNode(rand, zoneCount));
  return { nodes, zoneCount, rf: randomInt(rand, 1, 3) };
}

function shuffled<T>(rand: () => number, xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rand, 0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Water-filling by bisection on λ, written independently of the module's exact version. */
function bisectFill(weights: number[], lower: number[], upper: number[], total: number): number[] {
  const at = (l: number) => weights.map((w, i) => Math.min(upper[i], Math.max(lower[i], l * w)));
  let lo = 0;
  let hi = Math.max(...upper.map((u, i) => u / weights[i]));
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    if (at(mid).reduce((a, b) => a + b, 0) < total) lo = mid;
    else hi = mid;
  }
  return at(hi);
}

/** The zone-constrained ideal share of each node, computed from the definition. */
function expectedIdeals(nodes: NodeRole[], rf: number): Map<string, number> {
  const zones = [...new Set(nodes.map((n) => n.zone))];
  const spread = Math.min(rf, zones.length);
  const members = zones.map((z) => nodes.filter((n) => n.zone === z));
  const zoneShares = bisectFill(
    members.map((ns) => ns.reduce((a, n) => a + n.capacity, 0)),
    zones.map(() => (zones.length <= rf ? P : 0)),
    members.map((ns) => P * Math.min(rf - spread + 1, ns.length)),
    rf * P,
  );
  const ideals = new Map<string, number>();
  members.forEach((ns, z) => {
    const shares = bisectFill(
      ns.map((n) => n.capacity),
      ns.map(() => 0),
      ns.map(() => P),
      zoneShares[z],
    );
    ns.forEach((n, k) => ideals.set(n.id, shares[k]));
  });
  return ideals;
}

/** Checks requirements 1 (replicas), 2 (zone spread) and 3 (proportionality: ±2 of the ideal). */
function checkAssignment(
  nodes: NodeRole[],
  rf: number,
  result: { assignment: Assignment; report: AssignmentReport },
): void {
  const { assignment, report } = result;
  const zoneOf = new Map(nodes.map((n) => [n.id, n.zone]));
  const zoneCount = new Set(zoneOf.values()).size;
  assert.equal(assignment.replicationFactor, rf);
  assert.equal(assignment.partitions.length, P);
  const counts = new Map(nodes.map((n) => [n.id, 0]));
  for (const ids of assignment.partitions) {
    assert.equal(ids.length, rf);
    assert.equal(new Set(ids).size, rf, `replicas not distinct: ${ids}`);
    for (const id of ids) {
      assert.ok(counts.has(id), `unknown node ${id}`);
      counts.set(id, counts.get(id)! + 1);
    }
    assert.equal(new Set(ids.map((id) => zoneOf.get(id))).size, Math.min(rf, zoneCount));
  }
  assert.equal(report.zonesUsed, Math.min(rf, zoneCount));
  assert.deepEqual(report.perNode, Object.fromEntries(counts));
  const ideals = expectedIdeals(nodes, rf);
  const exported = idealShares(nodes, rf);
  for (const [id, count] of counts) {
    assert.ok(Math.abs(exported[id] - ideals.get(id)!) < 1e-6, `ideal of ${id}`);
    const ideal = ideals.get(id)!;
    assert.ok(
      Math.abs(count - ideal) <= 2,
      `node ${id} holds ${count}, ideal ${ideal}`,
    );
  }
}

/** Least possible movement given the new counts: replicas a node gains over what it kept. */
function movementLowerBound(previous: Assignment, report: AssignmentReport): number {
  const before = new Map<string, number>();
  for (const ids of previous.partitions) {
    for (const id of ids) before.set(id, (before.get(id) ?? 0) + 1);
  }
  return Object.entries(report.perNode)
    .reduce((a, [id, n]) => a + Math.max(0, n - (before.get(id) ?? 0)), 0);
}

function equalNodes(count: number, zones: number): NodeRole[] {
  return Array.from({ length: count }, (_, i) => ({
    id: (0xa0 + i).toString(16),
    zone: `dc${i % zones}`,
    capacity: UNIT_BYTES,
  }));
}

Deno.test("partitionOf takes the first byte of a hash", () => {
  assert.equal(partitionOf(new Uint8Array([0, 255, 3])), 0);
  assert.equal(partitionOf(new Uint8Array([0xab, 1])), 0xab);
  assert.equal(partitionOf(new Uint8Array(32).fill(255)), P - 1);
  assert.throws(() => partitionOf(new Uint8Array()), /empty hash/);
});

Deno.test("too few storage nodes or invalid input is refused with a clear message", () => {
  assert.throws(
    () => computeAssignment(equalNodes(2, 2), 3),
    {
      message:
        "Cannot assign partitions: replication factor 3 needs at least 3 storage nodes, the layout has 2",
    },
  );
  assert.throws(() => computeAssignment(equalNodes(3, 1), 0), /replication factor 0/);
  const nodes = equalNodes(3, 1);
  assert.throws(() => computeAssignment([...nodes, nodes[0]], 1), /listed twice/);
  assert.throws(() => computeAssignment([{ ...nodes[0], capacity: 0 }], 1), /capacity 0/);
  assert.throws(
    () => computeAssignment(nodes, 1, { replicationFactor: 1, partitions: [["a0"]] }),
    /1 partitions/,
  );
});

Deno.test("capacity shares are proportional when no zone constraint binds", () => {
  const nodes = [1, 2, 3, 4].map((c, i) => ({ id: `${i}f`, zone: "home", capacity: c }));
  const { report } = computeAssignment(nodes, 2);
  assert.deepEqual(report.perNode, { "0f": 51, "1f": 102, "2f": 154, "3f": 205 }); // 512 * c / 10
  assert.deepEqual(report.warnings, [
    "Only 1 zone(s) for replication factor 2: partitions cannot be spread over 2 zones",
  ]);
});

Deno.test("a forced zone shares its load between its nodes in proportion to capacity", () => {
  const nodes = [
    { id: "a1", zone: "small", capacity: 1 },
    { id: "a2", zone: "small", capacity: 3 },
    { id: "b1", zone: "big", capacity: 10 },
    { id: "b2", zone: "big", capacity: 10 },
    { id: "b3", zone: "big", capacity: 10 },
  ];
  const result = computeAssignment(nodes, 3);
  checkAssignment(nodes, 3, result);
  const { perNode, warnings } = result.report;
  assert.deepEqual([perNode.a1, perNode.a2], [64, 192]);
  assert.ok(Math.abs(perNode.b1 - 512 / 3) <= 1);
  assert.ok(warnings.some((w) => w.startsWith("Only 2 zone(s) for replication factor 3")));
  assert.ok(warnings.some((w) => w.startsWith('Zone "small" holds 256')));
});

Deno.test("a zone and a node never hold more than one replica of a partition", () => {
  const zoned = [
    { id: "a1", zone: "a", capacity: 100 },
    { id: "a2", zone: "a", capacity: 100 },
    { id: "b1", zone: "b", capacity: 1 },
    { id: "c1", zone: "c", capacity: 1 },
  ];
  const result = computeAssignment(zoned, 2);
  checkAssignment(zoned, 2, result);
  assert.equal(result.report.perNode.a1 + result.report.perNode.a2, P);
  const lone = [10, 1, 1].map((c, i) => ({ id: `c${i}`, zone: "z", capacity: c }));
  const single = computeAssignment(lone, 2);
  assert.deepEqual(single.report.perNode, { c0: P, c1: 128, c2: 128 });
  assert.ok(single.report.warnings.some((w) => w.startsWith("Node c0 can use only part")));
});

Deno.test("random clusters: replicas, zone spread, proportionality, determinism", () => {
  const rand = seededRandom(0x5eed);
  let checked = 0;
  for (let i = 0; i < 300; i++) {
    const { nodes, rf } = randomCluster(rand);
    if (nodes.length < rf) {
      assert.throws(() => computeAssignment(nodes, rf), /needs at least/);
      continue;
    }
    const result = computeAssignment(nodes, rf);
    checkAssignment(nodes, rf, result);
    assert.equal(result.report.movedPartitionReplicas, 0);
    assert.deepEqual(computeAssignment(shuffled(rand, nodes), rf), result);
    const again = computeAssignment(nodes, rf, result.assignment);
    assert.equal(again.report.movedPartitionReplicas, 0);
    assert.deepEqual(again.assignment, result.assignment);
    checked++;
  }
  assert.ok(checked > 200);
});

Deno.test("adding a node to equal nodes moves about its fair share", () => {
  for (
    const [count, zones, rf, capacity] of [[6, 1, 3, 2], [6, 3, 3, 1], [8, 4, 3, 3], [5, 5, 2, 1]]
  ) {
    const nodes = equalNodes(count, zones);
    const before = computeAssignment(nodes, rf);
    const added = { id: "ff", zone: "dc0", capacity: capacity * UNIT_BYTES };
    const after = computeAssignment([...nodes, added], rf, before.assignment);
    checkAssignment([...nodes, added], rf, after);
    const ideal = idealShares([...nodes, added], rf).ff;
    const moved = after.report.movedPartitionReplicas;
    assert.ok(moved >= Math.floor(ideal), `${moved} < ${ideal}`);
    assert.ok(moved <= ideal * 1.1 + 3, `adding to ${count} nodes moved ${moved}, ideal ${ideal}`);
  }
});

Deno.test("removing a node moves its replicas and little more", () => {
  for (const [count, zones, rf] of [[6, 1, 3], [6, 3, 3], [9, 3, 3], [5, 5, 2], [4, 2, 1]]) {
    const nodes = equalNodes(count, zones);
    const before = computeAssignment(nodes, rf);
    const removed = before.report.perNode[nodes[1].id];
    const after = computeAssignment(nodes.filter((_, i) => i !== 1), rf, before.assignment);
    const moved = after.report.movedPartitionReplicas;
    assert.ok(moved >= removed && moved <= removed * 1.1 + 3, `moved ${moved}, removed ${removed}`);
  }
});

/**
 * `least` counts the replicas nodes must gain; the zone spread and the exact
 * targets can force swaps on top (a node reaching 256 must join partitions
 * that lost nothing). Measured over 2,000 random changes: +0.8% (additions)
 * to +3.4% (removals) in total, at worst +41 replicas or 1.64x in one case;
 * with replication factor 1, exactly `least`.
 */
Deno.test("random single-node changes move close to the least possible", () => {
  const rand = seededRandom(42);
  let movedTotal = 0;
  let leastTotal = 0;
  for (let i = 0; i < 250; i++) {
    const { nodes, zoneCount, rf } = randomCluster(rand);
    if (nodes.length < rf) continue;
    const before = computeAssignment(nodes, rf);
    const change = randomInt(rand, 0, 2);
    let changed: NodeRole[];
    if (change === 0) changed = [...nodes, randomNode(rand, zoneCount)];
    else if (change === 1 && nodes.length > rf) {
      const removed = randomInt(rand, 0, nodes.length - 1);
      changed = nodes.filter((_, k) => k !== removed);
    } else {
      const k = randomInt(rand, 0, nodes.length - 1);
      changed = nodes.map((n, j) =>
        j === k ? { ...n, capacity: randomInt(rand, 1, 10) * UNIT_BYTES } : n
      );
    }
    const after = computeAssignment(changed, rf, before.assignment);
    checkAssignment(changed, rf, after);
    const least = movementLowerBound(before.assignment, after.report);
    const moved = after.report.movedPartitionReplicas;
    const context = `change ${change} of cluster ${i}: moved ${moved}, least ${least}`;
    assert.ok(moved >= least, context);
    if (rf === 1) assert.equal(moved, least, context);
    assert.ok(moved <= least * 1.7 + 8, context);
    movedTotal += moved;
    leastTotal += least;
    const again = computeAssignment(changed, rf, after.assignment);
    assert.equal(again.report.movedPartitionReplicas, 0);
  }
  assert.ok(movedTotal <= leastTotal * 1.05, `moved ${movedTotal} in all, least ${leastTotal}`);
});

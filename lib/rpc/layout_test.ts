import assert from "node:assert/strict";
import {
  applyStaged,
  type ClusterLayout,
  currentVersion,
  emptyLayout,
  hasStagedChanges,
  isStorageRole,
  layoutDigest,
  type LayoutVersion,
  mergeLayouts,
  type NodeRoleSpec,
  previewStaged,
  revertStaged,
  stagedChanges,
  stagedReplicationFactor,
  stagedRoles,
  stageReplicationFactor,
  stageRole,
  trimVersions,
} from "./layout.ts";
import { PARTITION_COUNT } from "./layout_assignment.ts";
import { seededRandom } from "../util/seeded_random.ts";

const TB = 1_000_000_000_000;
const NODE_IDS = ["a1", "b2", "c3", "d4", "e5", "f6"];
const ZONES = ["dc1", "dc2", "dc3"];

const int = (rand: () => number, min: number, max: number) =>
  min + Math.floor(rand() * (max - min + 1));
const pick = <T>(rand: () => number, xs: T[]): T => xs[int(rand, 0, xs.length - 1)];

function randomRole(rand: () => number): NodeRoleSpec {
  const zone = pick(rand, ZONES);
  const tags = rand() < 0.3 ? ["ssd"] : [];
  return rand() < 0.15
    ? { zone, gateway: true, tags }
    : { zone, capacity: int(rand, 1, 4) * TB, tags };
}

const storage = (zone: string, capacity = TB): NodeRoleSpec => ({ zone, capacity, tags: [] });

/** A layout with one applied version: a1..c3 in three zones. */
function threeZones(rf = 3): ClusterLayout {
  let l = emptyLayout(rf);
  NODE_IDS.slice(0, 3).forEach((id, i) => (l = stageRole(l, id, storage(ZONES[i]), 1000 + i)));
  return applyStaged(l, 1, 2000);
}

function checkAssignment(v: LayoutVersion): void {
  assert.equal(v.partitions.length, PARTITION_COUNT);
  for (const nodes of v.partitions) {
    assert.equal(nodes.length, v.replicationFactor);
    assert.equal(new Set(nodes).size, nodes.length);
    for (const id of nodes) assert.ok(v.roles[id] && isStorageRole(v.roles[id]), `${id} stores`);
  }
}

/**
 * A random history of three replicas staging, applying, reverting, trimming
 * and gossiping, with skewed clocks. Returns every state seen.
 */
function randomHistory(rand: () => number): { states: ClusterLayout[]; replicas: ClusterLayout[] } {
  const rf = int(rand, 1, 3);
  const replicas = [0, 1, 2].map(() => emptyLayout(rf));
  const skew = replicas.map(() => int(rand, -500, 500));
  const states: ClusterLayout[] = [...replicas];
  let time = 10_000;
  for (let step = int(rand, 10, 40); step > 0; step--) {
    time += int(rand, 1, 1000);
    const i = int(rand, 0, 2);
    const l = replicas[i];
    const now = time + skew[i];
    const op = rand();
    let next = l;
    if (op < 0.4) {
      const id = pick(rand, NODE_IDS);
      const has = Object.hasOwn(stagedRoles(l), id);
      next = stageRole(l, id, has && rand() < 0.3 ? null : randomRole(rand), now);
    } else if (op < 0.45) {
      next = stageReplicationFactor(l, int(rand, 1, 3), now);
    } else if (op < 0.62) {
      try {
        next = applyStaged(l, (currentVersion(l)?.version ?? 0) + 1, now);
        checkAssignment(currentVersion(next)!);
      } catch (e) {
        assert.match(String(e), /No staged changes|Cannot assign partitions/);
      }
    } else if (op < 0.66) {
      next = revertStaged(l, now);
    } else if (op < 0.7) {
      next = trimVersions(l, currentVersion(l)?.version ?? 0);
    } else {
      next = mergeLayouts(l, replicas[int(rand, 0, 2)]);
    }
    replicas[i] = next;
    states.push(next);
  }
  return { states, replicas };
}

Deno.test("mergeLayouts is commutative, associative and idempotent over random histories", () => {
  const rand = seededRandom(1);
  for (let h = 0; h < 200; h++) {
    const { states, replicas } = randomHistory(rand);
    for (let k = 0; k < 10; k++) {
      const [a, b, c] = [pick(rand, states), pick(rand, states), pick(rand, states)];
      assert.deepStrictEqual(mergeLayouts(a, b), mergeLayouts(b, a));
      assert.equal(layoutDigest(mergeLayouts(a, b)), layoutDigest(mergeLayouts(b, a)));
      assert.deepStrictEqual(
        mergeLayouts(mergeLayouts(a, b), c),
        mergeLayouts(a, mergeLayouts(b, c)),
      );
      assert.deepStrictEqual(mergeLayouts(a, a), a);
      assert.deepStrictEqual(mergeLayouts(mergeLayouts(a, b), b), mergeLayouts(a, b));
    }
    // Gossip converges: every replica ends with the same layout.
    const all = replicas.reduce(mergeLayouts);
    const digests = replicas.map((r) => layoutDigest(mergeLayouts(r, all)));
    assert.equal(new Set(digests).size, 1);
  }
});

Deno.test("concurrent staging on two nodes loses no change; on one node the newest wins", () => {
  const rand = seededRandom(2);
  for (let h = 0; h < 200; h++) {
    const base = randomHistory(rand).replicas.reduce(mergeLayouts);
    const t0 = 1_000_000 + int(rand, 0, 1000);
    const [x, y] = [pick(rand, NODE_IDS), pick(rand, NODE_IDS)];
    const [roleX, roleY] = [randomRole(rand), randomRole(rand)];
    const [tA, tB] = rand() < 0.5 ? [t0, t0 + int(rand, 1, 50)] : [t0 + int(rand, 1, 50), t0];
    const a = stageRole(base, x, roleX, tA);
    const b = stageRole(base, y, roleY, tB);
    const merged = stagedRoles(mergeLayouts(a, b));
    assert.deepStrictEqual(stagedRoles(mergeLayouts(b, a)), merged);
    if (x !== y) {
      assert.deepStrictEqual(merged[x], roleX);
      assert.deepStrictEqual(merged[y], roleY);
    } else {
      assert.deepStrictEqual(merged[x], tA > tB ? roleX : roleY);
    }
    // The replication factor is one register: the newest wins too.
    const rfA = stageReplicationFactor(a, 1, tA + 100);
    const rfB = stageReplicationFactor(b, 2, tB + 100);
    assert.equal(stagedReplicationFactor(mergeLayouts(rfA, rfB)), tA > tB ? 1 : 2);
  }
});

Deno.test("applying then merging with an older copy keeps the version and drops obsolete staging", () => {
  const rand = seededRandom(3);
  let checked = 0;
  for (let h = 0; h < 200; h++) {
    const old = randomHistory(rand).replicas.reduce(mergeLayouts);
    const next = (currentVersion(old)?.version ?? 0) + 1;
    let applied: ClusterLayout;
    try {
      applied = applyStaged(old, next, 2_000_000);
    } catch {
      continue;
    }
    checked++;
    // The older copy kept staging changes against the old version meanwhile.
    const older = stageRole(old, pick(rand, NODE_IDS), randomRole(rand), 3_000_000);
    for (const m of [mergeLayouts(applied, older), mergeLayouts(older, applied)]) {
      assert.deepStrictEqual(currentVersion(m), currentVersion(applied));
      assert.deepStrictEqual(m.staging, { baseVersion: next, roles: {} });
      assert.equal(hasStagedChanges(m), false);
      assert.equal(layoutDigest(m), layoutDigest(applied));
    }
    checkAssignment(currentVersion(applied)!);
  }
  assert.ok(checked > 50, `only ${checked} histories could apply`);
});

Deno.test("apply refuses any version number but the next", () => {
  const rand = seededRandom(4);
  for (let h = 0; h < 150; h++) {
    const l = randomHistory(rand).replicas[0];
    const next = (currentVersion(l)?.version ?? 0) + 1;
    let wrong = int(rand, -2, next + 3);
    if (wrong === next) wrong = next + 1;
    assert.throws(
      () => applyStaged(l, wrong, 5_000_000),
      {
        message: hasStagedChanges(l)
          ? `Cannot apply layout version ${wrong}: the next version is ${next}`
          : "No staged changes to apply",
      },
    );
  }
});

Deno.test("gateway nodes have a role but hold no partition", () => {
  let l = threeZones();
  l = stageRole(l, "d4", { zone: "dc1", gateway: true, tags: ["edge"] }, 3000);
  const preview = previewStaged(l);
  assert.deepStrictEqual(preview.changes, [
    { nodeId: "d4", after: { zone: "dc1", gateway: true, tags: ["edge"] } },
  ]);
  assert.equal("d4" in preview.report.perNode, false);
  assert.equal(preview.report.movedPartitionReplicas, 0);
  l = applyStaged(l, 2, 4000);
  const v = currentVersion(l)!;
  assert.equal(v.version, 2);
  assert.deepStrictEqual(v.roles.d4, { zone: "dc1", gateway: true, tags: ["edge"] });
  assert.ok(v.partitions.every((nodes) => !nodes.includes("d4")));
  checkAssignment(v);
  // Gateways do not count towards the replication factor.
  let g = emptyLayout(2);
  g = stageRole(g, "a1", storage("dc1"), 1);
  g = stageRole(g, "b2", { zone: "dc2", gateway: true, tags: [] }, 2);
  assert.throws(() => previewStaged(g), /needs at least 2 storage nodes, the layout has 1/);
});

Deno.test("replication factor changes are staged and applied", () => {
  let l = threeZones(3);
  l = stageRole(l, "d4", storage("dc1", 2 * TB), 3000);
  l = applyStaged(l, 2, 3500);
  assert.equal(hasStagedChanges(stageReplicationFactor(l, 3, 4000)), false);
  l = stageReplicationFactor(l, 2, 4000);
  assert.equal(hasStagedChanges(l), true);
  assert.deepStrictEqual(previewStaged(l).changes, []);
  l = applyStaged(l, 3, 5000);
  assert.equal(currentVersion(l)!.replicationFactor, 2);
  checkAssignment(currentVersion(l)!);
  assert.equal(stagedReplicationFactor(l), 2);
  assert.throws(() => previewStaged(stageReplicationFactor(l, 5, 6000)), /needs at least 5/);
  assert.throws(() => stageReplicationFactor(l, 0, 6000), /positive integer/);
  assert.throws(() => emptyLayout(1.5), /positive integer/);
});

Deno.test("removing nodes", () => {
  let l = threeZones(2);
  l = stageRole(l, "d4", storage("dc2"), 3000);
  l = applyStaged(l, 2, 3500);
  const before = currentVersion(l)!;
  l = stageRole(l, "b2", null, 4000);
  assert.deepStrictEqual(previewStaged(l).changes, [{ nodeId: "b2", before: before.roles.b2 }]);
  l = applyStaged(l, 3, 5000);
  const v = currentVersion(l)!;
  assert.equal("b2" in v.roles, false);
  assert.ok(v.partitions.every((nodes) => !nodes.includes("b2")));
  checkAssignment(v);
  // Only b2's replicas move; a partition on b2 keeps its other node.
  before.partitions.forEach((nodes, p) => {
    for (const id of nodes) if (id !== "b2") assert.ok(v.partitions[p].includes(id));
  });
  assert.throws(
    () => stageRole(l, "b2", null, 6000),
    {
      message: "Cannot remove node b2 from the layout: it has no role, neither current nor staged",
    },
  );
  // Removing a node whose role is only staged unstages it.
  const staged = stageRole(l, "e5", storage("dc3"), 6000);
  const unstaged = stageRole(staged, "e5", null, 6001);
  assert.equal(hasStagedChanges(unstaged), false);
  assert.throws(() => applyStaged(unstaged, 4, 7000), { message: "No staged changes to apply" });
  // Said before a wrong version: there is no version to apply at all.
  assert.throws(() => applyStaged(unstaged, 9, 7000), { message: "No staged changes to apply" });
});

Deno.test("roles are validated", () => {
  const l = emptyLayout(1);
  const bad: [unknown, RegExp][] = [
    [{ zone: "", capacity: TB, tags: [] }, /node a1: the zone is empty/],
    [{ zone: "dc1", capacity: 0, tags: [] }, /capacity 0 is not a positive integer/],
    [{ zone: "dc1", capacity: 1.5, tags: [] }, /capacity 1.5 is not a positive integer/],
    [{ zone: "dc1", gateway: true, capacity: TB, tags: [] }, /a gateway has no capacity/],
    [{ zone: "dc1", capacity: TB, tags: [""] }, /tags/],
  ];
  for (const [role, message] of bad) {
    assert.throws(() => stageRole(l, "a1", role as NodeRoleSpec, 1), message);
  }
  assert.throws(() => stageRole(l, "", storage("dc1"), 1), /node id is empty/);
  assert.throws(() => applyStaged(l, 1, 1), { message: "No staged changes to apply" });
  // Restaging the current role is no change.
  const t = threeZones();
  const same = stageRole(t, "a1", storage("dc1"), 9000);
  assert.deepStrictEqual(stagedChanges(same), []);
});

Deno.test("a revert spreads through merges instead of being undone by them", () => {
  const base = threeZones();
  const a = stageRole(stageReplicationFactor(base, 2, 3000), "d4", storage("dc1"), 3001);
  const b = mergeLayouts(base, a); // b has seen a's staged changes
  const reverted = revertStaged(a);
  assert.equal(hasStagedChanges(reverted), false);
  assert.deepStrictEqual(stagedRoles(reverted), currentVersion(base)!.roles);
  const m = mergeLayouts(b, reverted);
  assert.equal(hasStagedChanges(m), false);
  // A change staged after the revert wins over it.
  const again = stageRole(m, "d4", storage("dc2"), 100); // clock behind: still newer
  assert.deepStrictEqual(stagedRoles(mergeLayouts(again, b)).d4, storage("dc2"));
});

Deno.test("trimVersions keeps the current version and spreads through merges", () => {
  let l = threeZones(1);
  for (let v = 2; v <= 4; v++) {
    l = stageRole(l, `n${v}`, storage(ZONES[v % 3]), 1000 * v);
    l = applyStaged(l, v, 1000 * v + 1);
  }
  assert.deepStrictEqual(l.versions.map((v) => v.version), [1, 2, 3, 4]);
  const trimmed = trimVersions(l, 3);
  assert.deepStrictEqual(trimmed.versions.map((v) => v.version), [3, 4]);
  assert.deepStrictEqual(trimVersions(l, 99).versions.map((v) => v.version), [4]);
  const old = { ...l, versions: l.versions.slice(0, 2), staging: { baseVersion: 2, roles: {} } };
  assert.deepStrictEqual(mergeLayouts(old, trimmed).versions.map((v) => v.version), [3, 4]);
  assert.deepStrictEqual(mergeLayouts(emptyLayout(1), trimmed), trimmed);
});

Deno.test("layout digests and format marker", () => {
  const l = threeZones();
  assert.match(layoutDigest(l), /^[0-9a-f]{16}$/);
  const copy = JSON.parse(JSON.stringify(l));
  assert.equal(layoutDigest(copy), layoutDigest(l));
  assert.notEqual(layoutDigest(stageRole(l, "d4", storage("dc1"), 9000)), layoutDigest(l));
  assert.equal(l.format, 1);
  const future = { ...l, format: 2 } as unknown as ClusterLayout;
  assert.throws(() => mergeLayouts(l, future), /format 2 is not supported/);
});

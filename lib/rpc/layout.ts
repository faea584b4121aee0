/**
 * The cluster layout: which nodes hold data (zone, capacity) or only serve
 * requests (gateways), and the partition assignment computed from them, as a
 * CRDT that every node gossips and persists.
 *
 * - Applied layouts are numbered versions (1, 2, ...). Versions merge as a
 *   union by number; the versions older than the newest oldest-kept version of
 *   either side are dropped, so {@linkcode trimVersions} spreads too.
 * - Changes are staged against the current version: per node, a
 *   last-writer-wins register holding the new role (or `null` to remove it),
 *   plus an optional register for the replication factor. The staging with the
 *   higher base version wins outright (changes staged against an older version
 *   are obsolete once a newer one is applied); equal base versions merge
 *   register by register, so two nodes staging at once lose nothing.
 * - Staging timestamps are hybrid: `max(nowMs, newest staged timestamp + 1)`,
 *   so a change always beats the staged changes it was made over, even with a
 *   clock running behind.
 *
 * Pure: no I/O, no clock; callers pass `nowMs`.
 *
 * @module
 */

import { sha256Hex } from "../util/hash.ts";
import { type Lww, lww, mergeLww, mergeLwwMap, stableString } from "../util/crdt.ts";
import { type AssignmentReport, computeAssignment, type NodeRole } from "./layout_assignment.ts";

export type { Lww };

/** Version marker of the persisted and gossiped layout. */
export const LAYOUT_FORMAT = 1;

/** A node that stores data: `capacity` in bytes, a positive integer. */
export interface StorageRoleSpec {
  zone: string;
  capacity: number;
  tags: string[];
}

/** A node that serves requests but stores nothing and holds no partition. */
export interface GatewayRoleSpec {
  zone: string;
  gateway: true;
  tags: string[];
}

export type NodeRoleSpec = StorageRoleSpec | GatewayRoleSpec;

export interface LayoutVersion {
  /** 1, 2, ...; 0 means no layout yet. */
  version: number;
  replicationFactor: number;
  /** Node id -> role; nodes absent have no role. */
  roles: Record<string, NodeRoleSpec>;
  /** From {@linkcode computeAssignment} over the storage roles. */
  partitions: string[][];
}

export interface LayoutStaging {
  /** The version the changes were staged against (0 before the first). */
  baseVersion: number;
  /** Per node: the new role, or `null` to remove the node's role. */
  roles: Record<string, Lww<NodeRoleSpec | null>>;
  replicationFactor?: Lww<number>;
}

export interface ClusterLayout {
  format: typeof LAYOUT_FORMAT;
  /** Applied versions still relevant, oldest first; the last is current. */
  versions: LayoutVersion[];
  staging: LayoutStaging;
}

export interface RoleChange {
  nodeId: string;
  before?: NodeRoleSpec;
  after?: NodeRoleSpec;
}

export interface LayoutPreview {
  version: LayoutVersion;
  report: AssignmentReport;
  changes: RoleChange[];
}

export function isStorageRole(role: NodeRoleSpec): role is StorageRoleSpec {
  return !("gateway" in role);
}

/**
 * A layout with no version. The replication factor (from the configuration) is
 * staged with timestamp 0, so any staged factor overrides it.
 */
export function emptyLayout(replicationFactor: number): ClusterLayout {
  checkReplicationFactor(replicationFactor);
  return {
    format: LAYOUT_FORMAT,
    versions: [],
    staging: { baseVersion: 0, roles: {}, replicationFactor: lww(0, replicationFactor) },
  };
}

export function currentVersion(l: ClusterLayout): LayoutVersion | undefined {
  return l.versions.at(-1);
}

/** Merges two copies of the layout: commutative, associative, idempotent. */
export function mergeLayouts(a: ClusterLayout, b: ClusterLayout): ClusterLayout {
  checkFormat(a);
  checkFormat(b);
  const byNumber = new Map<number, LayoutVersion>();
  for (const v of [...a.versions, ...b.versions]) {
    const seen = byNumber.get(v.version);
    // Two contents for one number is abnormal; keep the greater so merge stays a CRDT.
    const keep = seen && (seen === v || stableString(seen) >= stableString(v)) ? seen : v;
    byNumber.set(v.version, keep);
  }
  const oldest = Math.max(oldestNumber(a), oldestNumber(b));
  const versions = [...byNumber.values()]
    .filter((v) => v.version >= oldest)
    .sort((x, y) => x.version - y.version);
  return { format: LAYOUT_FORMAT, versions, staging: mergeStaging(a.staging, b.staging) };
}

/** Stages a role for a node (`null` removes its role). Throws on an invalid role. */
export function stageRole(
  l: ClusterLayout,
  nodeId: string,
  role: NodeRoleSpec | null,
  nowMs: number,
): ClusterLayout {
  if (typeof nodeId !== "string" || nodeId === "") {
    throw new Error("Cannot stage a role: the node id is empty");
  }
  if (role === null && !Object.hasOwn(stagedRoles(l), nodeId)) {
    throw new Error(
      `Cannot remove node ${nodeId} from the layout: it has no role, neither current nor staged`,
    );
  }
  const value = role === null ? null : validRole(nodeId, role);
  const roles = { ...l.staging.roles, [nodeId]: lww(stamp(l.staging, nowMs), value) };
  return { ...l, staging: { ...l.staging, roles } };
}

export function stageReplicationFactor(
  l: ClusterLayout,
  replicationFactor: number,
  nowMs: number,
): ClusterLayout {
  checkReplicationFactor(replicationFactor);
  const register = lww(stamp(l.staging, nowMs), replicationFactor);
  return { ...l, staging: { ...l.staging, replicationFactor: register } };
}

/** The roles of the current version with the staged changes applied. */
export function stagedRoles(l: ClusterLayout): Record<string, NodeRoleSpec> {
  const roles: Record<string, NodeRoleSpec> = { ...currentVersion(l)?.roles };
  for (const [id, { v }] of Object.entries(l.staging.roles)) {
    if (v === null) delete roles[id];
    else roles[id] = v;
  }
  return roles;
}

/** The replication factor the next version would have. */
export function stagedReplicationFactor(l: ClusterLayout): number {
  const rf = l.staging.replicationFactor?.v ?? currentVersion(l)?.replicationFactor;
  if (rf === undefined) throw new Error("Cannot tell the replication factor: the layout has none");
  return rf;
}

/** The nodes whose role the staged changes alter, by node id. */
export function stagedChanges(l: ClusterLayout): RoleChange[] {
  const current = currentVersion(l)?.roles ?? {};
  const staged = stagedRoles(l);
  const ids = [...new Set([...Object.keys(current), ...Object.keys(staged)])].sort();
  return ids.flatMap((nodeId) => {
    const before = Object.hasOwn(current, nodeId) ? current[nodeId] : undefined;
    const after = Object.hasOwn(staged, nodeId) ? staged[nodeId] : undefined;
    if (stableString(before ?? null) === stableString(after ?? null)) return [];
    return [{ nodeId, ...(before ? { before } : {}), ...(after ? { after } : {}) }];
  });
}

/** Whether applying would change anything: a role, or the factor of an existing layout. */
export function hasStagedChanges(l: ClusterLayout): boolean {
  const current = currentVersion(l);
  if (stagedChanges(l).length > 0) return true;
  return current !== undefined && stagedReplicationFactor(l) !== current.replicationFactor;
}

/**
 * The version {@linkcode applyStaged} would create, its assignment report and
 * the role changes. Throws like {@linkcode computeAssignment} when no valid
 * assignment exists (for example fewer storage nodes than the factor).
 */
export function previewStaged(l: ClusterLayout): LayoutPreview {
  const current = currentVersion(l);
  const roles = stagedRoles(l);
  const replicationFactor = stagedReplicationFactor(l);
  const storage: NodeRole[] = Object.entries(roles).flatMap(([id, role]) =>
    isStorageRole(role) ? [{ id, zone: role.zone, capacity: role.capacity }] : []
  );
  const previous = current &&
    { replicationFactor: current.replicationFactor, partitions: current.partitions };
  const { assignment, report } = computeAssignment(storage, replicationFactor, previous);
  const sortedRoles = Object.fromEntries(Object.entries(roles).sort(([x], [y]) => compare(x, y)));
  return {
    version: {
      version: (current?.version ?? 0) + 1,
      replicationFactor,
      roles: sortedRoles,
      partitions: assignment.partitions,
    },
    report,
    changes: stagedChanges(l),
  };
}

/**
 * Applies the staged changes as version `expectedVersion`, which must be the
 * next one; the assignment starts from the current one to move as little as
 * possible. Staging is reset against the new version. `_nowMs` is accepted for
 * symmetry with the staging functions; the version itself carries no time, so
 * two nodes applying the same staging create the same version.
 */
export function applyStaged(
  l: ClusterLayout,
  expectedVersion: number,
  _nowMs: number,
): ClusterLayout {
  // Nothing staged first: naming the next version would send the user to apply nothing.
  if (!hasStagedChanges(l)) throw new Error("No staged changes to apply");
  const next = (currentVersion(l)?.version ?? 0) + 1;
  if (expectedVersion !== next) {
    throw new Error(`Cannot apply layout version ${expectedVersion}: the next version is ${next}`);
  }
  const { version } = previewStaged(l);
  return {
    format: LAYOUT_FORMAT,
    versions: [...l.versions, version],
    staging: { baseVersion: next, roles: {} },
  };
}

/**
 * Cancels the staged changes. Instead of deleting the registers (which a merge
 * with a copy that still has them would bring back), each staged register is
 * overwritten with the current value at a timestamp newer than any staged one
 * (and not older than `nowMs` when given), so the revert spreads like a change.
 * Before the first version the staged replication factor is kept: it is the
 * only one there is.
 */
export function revertStaged(l: ClusterLayout, nowMs = 0): ClusterLayout {
  const current = currentVersion(l);
  const t = stamp(l.staging, nowMs);
  const roles: LayoutStaging["roles"] = {};
  for (const id of Object.keys(l.staging.roles)) {
    roles[id] = lww(t, current && Object.hasOwn(current.roles, id) ? current.roles[id] : null);
  }
  const rf = l.staging.replicationFactor;
  const staging: LayoutStaging = { baseVersion: l.staging.baseVersion, roles };
  if (rf) staging.replicationFactor = current ? lww(t, current.replicationFactor) : rf;
  return { ...l, staging };
}

/** Drops the versions older than `keepFrom`, never the current one. */
export function trimVersions(l: ClusterLayout, keepFrom: number): ClusterLayout {
  const last = l.versions.length - 1;
  return { ...l, versions: l.versions.filter((v, i) => v.version >= keepFrom || i === last) };
}

/** A short digest (16 hex digits of SHA-256) to compare layouts cheaply in gossip. */
export function layoutDigest(l: ClusterLayout): string {
  return sha256Hex(stableString(l)).slice(0, 16);
}

function mergeStaging(a: LayoutStaging, b: LayoutStaging): LayoutStaging {
  if (a.baseVersion !== b.baseVersion) return a.baseVersion > b.baseVersion ? a : b;
  const out: LayoutStaging = { baseVersion: a.baseVersion, roles: mergeLwwMap(a.roles, b.roles) };
  const x = a.replicationFactor, y = b.replicationFactor;
  const rf = x && y ? mergeLww(x, y) : x ?? y;
  if (rf) out.replicationFactor = rf;
  return out;
}

/** A timestamp newer than every staged register, and not older than `nowMs`. */
function stamp(staging: LayoutStaging, nowMs: number): number {
  if (!Number.isFinite(nowMs)) throw new Error(`Cannot stage a layout change at time ${nowMs}`);
  const stamps = Object.values(staging.roles).map((r) => r.t);
  if (staging.replicationFactor) stamps.push(staging.replicationFactor.t);
  return Math.max(nowMs, ...stamps.map((t) => t + 1));
}

function oldestNumber(l: ClusterLayout): number {
  return l.versions.length > 0 ? Math.min(...l.versions.map((v) => v.version)) : 0;
}

function checkFormat(l: ClusterLayout): void {
  if (l.format !== LAYOUT_FORMAT) {
    throw new Error(
      `Cannot read the cluster layout: format ${l.format} is not supported (expected ${LAYOUT_FORMAT})`,
    );
  }
}

function checkReplicationFactor(rf: number): void {
  if (!Number.isSafeInteger(rf) || rf < 1) {
    throw new Error(`Cannot set replication factor ${rf}: it must be a positive integer`);
  }
}

function validRole(nodeId: string, role: NodeRoleSpec): NodeRoleSpec {
  const fail = (why: string) => new Error(`Cannot assign a role to node ${nodeId}: ${why}`);
  if (typeof role !== "object" || role === null) throw fail("the role is not an object");
  if (typeof role.zone !== "string" || role.zone.trim() === "") throw fail("the zone is empty");
  const tags = role.tags ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || t === "")) {
    throw fail("tags must be non-empty strings");
  }
  const uniqueTags = [...new Set(tags)];
  if ("gateway" in role) {
    if (role.gateway !== true) throw fail("gateway must be true");
    if ("capacity" in role) throw fail("a gateway has no capacity");
    return { zone: role.zone, gateway: true, tags: uniqueTags };
  }
  if (!Number.isSafeInteger(role.capacity) || role.capacity <= 0) {
    throw fail(`capacity ${role.capacity} is not a positive integer number of bytes`);
  }
  return { zone: role.zone, capacity: role.capacity, tags: uniqueTags };
}

function compare(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

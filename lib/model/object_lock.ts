/**
 * Object lock's rules on versions (WORM): a version under a legal hold, or
 * retained until a later date, may not be deleted by its id, by a request or
 * by a lifecycle rule. A GOVERNANCE retention yields to a request that
 * bypasses it; a COMPLIANCE one yields to nothing. Deleting a key without a
 * version id still adds a delete marker: the versions stay.
 */
import { type Lww, lww } from "../util/crdt.ts";
import type { ObjectLockConfig } from "./bucket_table.ts";
import type { ObjectMeta, Retention } from "./object_table.ts";

/** A version that object lock protects was to be deleted. */
export class ObjectLockedError extends Error {
  constructor(readonly key: string, why: string) {
    super(`The version of "${key}" is protected by object lock: ${why}`);
    this.name = "ObjectLockedError";
  }
}

/** The lock a new object is written with. */
export interface LockRequest {
  retention?: Retention;
  legalHold?: boolean;
}

/**
 * Why the version with this metadata may not be deleted at `nowMs`, if it
 * may not: its legal hold, or its retention (a GOVERNANCE one yields to
 * `bypassGovernance`).
 */
export function protectionOf(
  meta: Pick<ObjectMeta, "retention" | "legalHold">,
  nowMs: number,
  bypassGovernance = false,
): string | undefined {
  if (meta.legalHold?.v) return "it is under a legal hold";
  const retention = meta.retention?.v;
  if (
    retention && retention.untilMs > nowMs &&
    (retention.mode === "COMPLIANCE" || !bypassGovernance)
  ) {
    return `it is retained in ${retention.mode} mode until ${
      new Date(retention.untilMs).toISOString()
    }`;
  }
  return undefined;
}

/** The retention a bucket's default gives an object written at `nowMs`, if it has one. */
export function defaultRetention(
  config: ObjectLockConfig | null | undefined,
  nowMs: number,
): Retention | undefined {
  const rule = config?.defaultRetention;
  if (!rule) return undefined;
  const until = new Date(nowMs);
  if (rule.years !== undefined) until.setUTCFullYear(until.getUTCFullYear() + rule.years);
  else until.setUTCDate(until.getUTCDate() + (rule.days ?? 0));
  return { mode: rule.mode, untilMs: until.getTime() };
}

/** The metadata registers of a new object's lock, set at `nowMs`. */
export function lockRegisters(
  lock: LockRequest | undefined,
  nowMs: number,
): { retention?: Lww<Retention | null>; legalHold?: Lww<boolean> } {
  return {
    ...(lock?.retention ? { retention: lww(nowMs, lock.retention) } : {}),
    ...(lock?.legalHold ? { legalHold: lww(nowMs, true) } : {}),
  };
}

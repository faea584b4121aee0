/**
 * Whether this node's clock can decide that something is old enough to
 * delete. A node whose clock is far ahead (a wrong hardware clock, a bad
 * time server) would expire every object a lifecycle rule covers; its peers'
 * clocks, measured at each ping, tell it so.
 */
import { CLOCK_TRUST_MS } from "../util/limits.ts";
import type { Replication } from "./replication.ts";

/**
 * Why this node must not delete anything for its age now, or undefined when
 * it may: when most of the peers whose clocks it measured are further than
 * `limitMs` from it, or it has measured none yet (just started, or cut off).
 * A node alone, or the only node of its cluster, has no clock to compare
 * with, and trusts its own; with one peer that disagrees, neither can tell
 * whose clock is wrong, and both wait.
 */
export function untrustedClock(
  replication: Pick<Replication, "peerClockOffsetsMs">,
  limitMs = CLOCK_TRUST_MS,
): string | undefined {
  const offsets = replication.peerClockOffsetsMs();
  if (offsets === undefined) return undefined;
  if (offsets.length === 0) {
    return "no peer's clock is known to compare this node's with yet (none answered a ping)";
  }
  const far = offsets.filter((o) => Math.abs(o) > limitMs);
  if (far.length * 2 <= offsets.length) return undefined;
  // Peers behind this node mean its clock is ahead.
  const sorted = far.toSorted((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return `this node's clock is ${roughly(Math.abs(median))} ${
    median < 0 ? "ahead of" : "behind"
  } ` +
    `${far.length === 1 ? "its peer's" : "its peers'"}, more than ${roughly(limitMs)}: ` +
    `nothing is deleted for its age until the clocks agree (set NTP on every node)`;
}

/** A duration in the largest unit that leaves it at least 2 of them: "730 days", "3 h", "90 min". */
function roughly(ms: number): string {
  const units: [number, string][] = [[86_400_000, " days"], [3_600_000, " h"], [60_000, " min"]];
  for (const [size, name] of units) if (ms >= 2 * size) return `${Math.round(ms / size)}${name}`;
  return `${Math.round(ms / 1000)} s`;
}

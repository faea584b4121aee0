import assert from "node:assert/strict";
import { untrustedClock } from "./clock_trust.ts";

const HOUR_MS = 3600 * 1000;
const peers = (...offsetsMs: number[]) => ({ peerClockOffsetsMs: () => offsetsMs });
const alone = { peerClockOffsetsMs: () => undefined };

Deno.test("a clock far from most of its peers' deletes nothing for its age", () => {
  assert.equal(untrustedClock(alone), undefined, "a node alone has nothing to compare with");
  assert.match(
    untrustedClock(peers())!,
    /no peer's clock is known/,
    "a cluster's node waits for one",
  );
  assert.equal(untrustedClock(peers(40_000, -600_000)), undefined, "minutes apart: trusted");
  assert.equal(
    untrustedClock(peers(-2 * 365 * 24 * HOUR_MS, -2 * 365 * 24 * HOUR_MS)),
    "this node's clock is 730 days ahead of its peers', more than 60 min: nothing is " +
      "deleted for its age until the clocks agree (set NTP on every node)",
  );
  assert.match(untrustedClock(peers(3 * HOUR_MS, 2 * HOUR_MS))!, /is 3 h behind its peers'/);
  assert.match(untrustedClock(peers(-90 * 60_000))!, /is 90 min ahead of its peer's/);
  // Of three nodes, the one whose clock is wrong is outvoted; the other two go on.
  assert.equal(untrustedClock(peers(0, -5 * HOUR_MS)), undefined);
  // Two nodes that disagree cannot tell whose clock is wrong: both wait.
  assert.match(untrustedClock(peers(5 * HOUR_MS))!, /behind its peer's/);
  assert.match(untrustedClock(peers(-5 * HOUR_MS))!, /ahead of its peer's/);
  assert.equal(untrustedClock(peers(HOUR_MS)), undefined, "an hour exactly is within the limit");
});

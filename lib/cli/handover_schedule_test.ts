import assert from "node:assert/strict";
import {
  HANDOVER_FIRST_DELAY_MS,
  HANDOVER_INTERVAL_MS,
  HANDOVER_RETRY_MS,
  HANDOVER_SOON_MS,
  HandoverSchedule,
} from "./handover_schedule.ts";

/** A schedule on a clock the test moves; `dueIn` is the wait until it is due. */
function scheduleAt() {
  const clock = { ms: 1_000_000 };
  const schedule = new HandoverSchedule(() => clock.ms);
  const dueIn = () => {
    const start = clock.ms;
    let wait = 0;
    while (!schedule.isDue()) {
      clock.ms += 1_000;
      wait += 1_000;
    }
    clock.ms = start;
    return wait;
  };
  return { schedule, clock, dueIn };
}

Deno.test("handover schedule: soon after a start, at once after a layout change, then rarely", () => {
  const { schedule, dueIn } = scheduleAt();
  assert.equal(dueIn(), HANDOVER_FIRST_DELAY_MS);
  schedule.layoutChanged();
  assert.equal(dueIn(), 0);
  schedule.passStarted()(0);
  assert.equal(dueIn(), HANDOVER_INTERVAL_MS, "nothing left here");
});

Deno.test("handover schedule: a pass that left entries, or failed, is tried again shortly", () => {
  const { schedule, dueIn } = scheduleAt();
  schedule.passStarted()(3);
  assert.equal(dueIn(), HANDOVER_RETRY_MS);
  schedule.passStarted()(undefined);
  assert.equal(dueIn(), HANDOVER_RETRY_MS);
});

Deno.test("handover schedule: entries not held here start a pass soon, even if they came during one", () => {
  const { schedule, clock, dueIn } = scheduleAt();
  schedule.passStarted()(0);
  schedule.entriesNotHeldArrived();
  assert.equal(dueIn(), HANDOVER_SOON_MS);
  const ended = schedule.passStarted();
  clock.ms += 2_000;
  schedule.entriesNotHeldArrived(); // a late write while the pass runs
  ended(0);
  assert.equal(dueIn(), HANDOVER_SOON_MS, "not the 10-minute interval");
});

/**
 * When a node runs its next table handover (lib/table/handover.ts): soon
 * after a start, at once after a layout change, soon after entries it does
 * not hold reached it, again shortly after a pass that left entries here, and
 * otherwise every few minutes.
 */

/** The first handover after a start waits this long, for the layout the peers have. */
export const HANDOVER_FIRST_DELAY_MS = 30_000;
/** After a handover that left entries here (a replica was away or slow), the next try. */
export const HANDOVER_RETRY_MS = 15_000;
/**
 * After entries of partitions this node does not hold reached it (from a peer
 * that had not yet seen the layout change), the next handover.
 */
export const HANDOVER_SOON_MS = 5_000;
/**
 * Handovers also run this often, whatever the layout does: entries may reach
 * a node that no longer holds them (from a node that was away during a change).
 */
export const HANDOVER_INTERVAL_MS = 10 * 60_000;

export class HandoverSchedule {
  #dueMs: number;
  /** Arrivals of entries not held here, counted during a pass too. */
  #arrivals = 0;

  constructor(private readonly nowMs: () => number = Date.now) {
    this.#dueMs = nowMs() + HANDOVER_FIRST_DELAY_MS;
  }

  isDue(): boolean {
    return this.nowMs() >= this.#dueMs;
  }

  /** The layout changed: hand over at once. */
  layoutChanged(): void {
    this.#dueMs = 0;
  }

  /** Entries of a partition this node does not hold were stored here. */
  entriesNotHeldArrived(): void {
    this.#arrivals++;
    this.#dueMs = Math.min(this.#dueMs, this.nowMs() + HANDOVER_SOON_MS);
  }

  /**
   * A pass begins; the function returned records how it ended: with the
   * partitions it left here, or undefined when it failed.
   */
  passStarted(): (partitionsKept: number | undefined) => void {
    this.#dueMs = this.nowMs() + HANDOVER_RETRY_MS;
    const arrivalsBefore = this.#arrivals;
    return (partitionsKept) => {
      if (partitionsKept === 0 && this.#arrivals === arrivalsBefore) {
        this.#dueMs = this.nowMs() + HANDOVER_INTERVAL_MS;
      }
    };
  }
}

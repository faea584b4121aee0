/**
 * Caps how many warnings of one kind are logged per window: a fault that
 * fails thousands of items at once (a read-only disk, a peer gone) writes a
 * few lines a minute, not one per item. The others go to the debug level and
 * are counted in the next warning logged.
 */
import { log } from "./log.ts";

export class WarningBudget {
  #windowStartMs = -Infinity;
  #logged = 0;
  #notLogged = 0;

  constructor(
    readonly module: string,
    /** What the warnings are about, plural ("block resync failures"). */
    readonly what: string,
    readonly perWindow: number,
    readonly windowMs: number,
    readonly nowMs: () => number = Date.now,
  ) {}

  warn(message: string): void {
    const now = this.nowMs();
    if (now - this.#windowStartMs >= this.windowMs) {
      this.#windowStartMs = now;
      this.#logged = 0;
    }
    if (this.#logged >= this.perWindow) {
      this.#notLogged++;
      log(this.module, "debug", message);
      return;
    }
    this.#logged++;
    const skipped = this.#notLogged;
    this.#notLogged = 0;
    const note = skipped > 0
      ? ` (${skipped} more ${this.what} before this one were logged at debug level only)`
      : "";
    log(this.module, "warn", message + note);
  }
}

/**
 * Exponential backoff of dialling, per address: after a failure, calls fail
 * at once until the delay (doubling from RPC_DIAL_BACKOFF_MIN_MS up to
 * RPC_DIAL_BACKOFF_MAX_MS) has passed; a success resets it.
 */
import { RPC_DIAL_BACKOFF_MAX_MS, RPC_DIAL_BACKOFF_MIN_MS } from "../util/limits.ts";
import { errorMessage } from "../util/errors.ts";
import { RpcError } from "./transport.ts";

interface Entry {
  failures: number;
  retryAt: number;
  error: string;
}

export class DialBackoff {
  #entries = new Map<string, Entry>();

  /** Throws RpcError("unreachable") while `addr` is backing off. */
  check(addr: string): void {
    const entry = this.#entries.get(addr);
    const wait = entry ? entry.retryAt - Date.now() : 0;
    if (entry && wait > 0) {
      // Dial errors name the address already.
      const error = entry.error.startsWith(addr) ? entry.error : `${addr}: ${entry.error}`;
      throw new RpcError("unreachable", `${error} (next attempt in ${wait} ms)`);
    }
  }

  /** The last error of an address whose latest dial failed, else undefined. */
  lastError(addr: string): string | undefined {
    return this.#entries.get(addr)?.error;
  }

  /** Records a failure; returns how many in a row. */
  failed(addr: string, error: unknown): number {
    const failures = (this.#entries.get(addr)?.failures ?? 0) + 1;
    const delay = Math.min(RPC_DIAL_BACKOFF_MIN_MS * 2 ** (failures - 1), RPC_DIAL_BACKOFF_MAX_MS);
    this.#entries.set(addr, { failures, retryAt: Date.now() + delay, error: errorMessage(error) });
    return failures;
  }

  succeeded(addr: string): void {
    this.#entries.delete(addr);
  }
}

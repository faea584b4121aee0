/**
 * Bounds the block bytes a node has sent (or is sending) to each peer and not
 * yet seen stored. A write returns once a quorum of replicas has its block;
 * the push to a slower replica goes on in the background, holding the block
 * in memory. Without a bound, a replica behind a slow link, or one that hangs
 * with its connection open, would make its coordinator hold every block
 * written meanwhile.
 *
 * Over the bound, a push waits for the peer's backlog to shrink, unless the
 * block's quorum is reached without it first: then the push is skipped, and
 * the replica fetches the block later (its reference arrives with the table
 * entries, and the resync fetches what is referenced but missing).
 */
import type { MetricFamily } from "../util/metrics.ts";
import { shortNodeId } from "../net/node_id.ts";

/** A push skipped for the peer's backlog: the block was never sent, nor read. */
export class PushSkippedError extends Error {
  constructor(node: string, backlogBytes: number) {
    super(
      `push skipped: ${backlogBytes} bytes of blocks are still on their way to node ` +
        `${shortNodeId(node)}, which will fetch this one itself`,
    );
    this.name = "PushSkippedError";
  }
}

export class PushBacklog {
  readonly #bytes = new Map<string, number>();
  readonly #skipped = new Map<string, number>();
  /** Pushes waiting for some backlog to clear: woken at every completion, they check again. */
  readonly #waiting = new Set<() => void>();

  constructor(readonly limitBytes: number) {}

  /**
   * The metrics of the pushes: backlog and skipped pushes of each peer pushed
   * to, and of each of `peers` (at 0 before any push, so that alerts have a series).
   */
  families(peers: readonly string[] = []): MetricFamily[] {
    const nodes = [...new Set([...peers, ...this.#bytes.keys(), ...this.#skipped.keys()])].sort();
    return [
      {
        name: "remise_block_push_backlog_bytes",
        help:
          "Block bytes sent to each peer that it has not yet stored (uploads wait for a quorum only).",
        type: "gauge",
        samples: nodes.map((node) => ({
          labels: { node: shortNodeId(node) },
          value: this.backlogOf(node),
        })),
      },
      {
        name: "remise_block_pushes_skipped_total",
        help: "Blocks not sent to a peer whose backlog was full; it fetches them itself.",
        type: "counter",
        samples: nodes.map((node) => ({
          labels: { node: shortNodeId(node) },
          value: this.#skipped.get(node) ?? 0,
        })),
      },
    ];
  }

  /** Bytes sent to `node` and not yet answered. */
  backlogOf(node: string): number {
    return this.#bytes.get(node) ?? 0;
  }

  /**
   * Runs `send` (the push of `bytes` to `node`) once the node's backlog
   * allows it (a single push larger than the bound goes alone); rejects
   * without sending if `quorumSettled` resolves first.
   */
  async push(
    node: string,
    bytes: number,
    quorumSettled: Promise<void>,
    send: () => Promise<void>,
  ): Promise<void> {
    while (this.backlogOf(node) > 0 && this.backlogOf(node) + bytes > this.limitBytes) {
      let wake!: () => void;
      const freed = new Promise<"freed">((resolve) => wake = () => resolve("freed"));
      this.#waiting.add(wake);
      const outcome = await Promise.race([freed, quorumSettled.then(() => "skip" as const)]);
      this.#waiting.delete(wake);
      if (outcome === "skip") {
        this.#skipped.set(node, (this.#skipped.get(node) ?? 0) + 1);
        throw new PushSkippedError(node, this.backlogOf(node));
      }
    }
    this.#bytes.set(node, this.backlogOf(node) + bytes);
    try {
      await send();
    } finally {
      const left = this.backlogOf(node) - bytes;
      if (left > 0) this.#bytes.set(node, left);
      else this.#bytes.delete(node);
      for (const wake of this.#waiting) wake();
    }
  }
}

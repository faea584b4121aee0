/**
 * Calls to several replicas for one answer (a hedged read): once one answer
 * is kept, every other call is cancelled, and an answer that arrives later
 * has its body cancelled, so that no replica goes on sending what nobody
 * reads (a stream left unread holds its flow-control window until it times
 * out).
 */
import type { RpcMessage } from "../net/transport.ts";

export class AnswerRace {
  readonly #calls = new Map<string, { controller: AbortController; answer?: RpcMessage }>();
  #kept: string | undefined;

  /** Makes the call to `node` with a signal that `keepOnly` may abort. */
  async ask(node: string, call: (signal: AbortSignal) => Promise<RpcMessage>): Promise<RpcMessage> {
    const entry: { controller: AbortController; answer?: RpcMessage } = {
      controller: new AbortController(),
    };
    this.#calls.set(node, entry);
    const answer = await call(entry.controller.signal);
    entry.answer = answer;
    if (this.#kept !== undefined && this.#kept !== node) cancel(entry);
    return answer;
  }

  /** Keeps the answer of `node`: cancels every other call, answered or not. */
  keepOnly(node: string): void {
    this.#kept = node;
    for (const [other, entry] of this.#calls) if (other !== node) cancel(entry);
  }
}

function cancel(entry: { controller: AbortController; answer?: RpcMessage }): void {
  entry.controller.abort();
  entry.answer?.stream?.cancel().catch(() => {});
}

/** Calling several replicas and waiting for a quorum of them. */
import { errorMessage } from "../util/errors.ts";
import { shortNodeId } from "../net/node_id.ts";

/** Not enough replicas answered; carries each node's cause. */
export class QuorumError extends Error {
  constructor(
    readonly what: string,
    readonly quorum: number,
    readonly successes: number,
    readonly causes: { node: string; error: string }[],
  ) {
    const detail = causes.map((c) => `${shortNodeId(c.node)}: ${c.error}`).join("; ");
    super(
      `Cannot ${what}: ${successes} of the ${quorum} replicas needed answered` +
        (detail ? ` (${detail})` : ""),
    );
    this.name = "QuorumError";
  }
}

/**
 * Calls `fn` on every node at once and resolves with the first `quorum`
 * results; rejects with a QuorumError as soon as the quorum cannot be
 * reached. Calls still running go on in the background (they are writes
 * that may still land, or reads whose answers are no longer needed).
 */
export function quorumCall<T>(
  what: string,
  nodes: string[],
  quorum: number,
  fn: (node: string) => Promise<T>,
): Promise<{ node: string; value: T }[]> {
  return callUntilQuorum(what, nodes, quorum, fn, { firstWave: nodes.length });
}

/**
 * Reads from the first `quorum` nodes of `nodes` (nearest first), asks the
 * next one each time a call fails, and every node left once `hedgeMs` passed
 * without a quorum (a replica that is slow, or cut off while its link still
 * looks open). Asking every replica at once would cost each a request whose
 * answer is not waited for.
 */
export function quorumRead<T>(
  what: string,
  nodes: string[],
  quorum: number,
  hedgeMs: number,
  fn: (node: string) => Promise<T>,
): Promise<{ node: string; value: T }[]> {
  return callUntilQuorum(what, nodes, quorum, fn, { firstWave: quorum, hedgeMs });
}

function callUntilQuorum<T>(
  what: string,
  nodes: string[],
  quorum: number,
  fn: (node: string) => Promise<T>,
  wave: { firstWave: number; hedgeMs?: number },
): Promise<{ node: string; value: T }[]> {
  let hedge: ReturnType<typeof setTimeout> | undefined;
  return new Promise<{ node: string; value: T }[]>((resolve, reject) => {
    const results: { node: string; value: T }[] = [];
    const causes: { node: string; error: string }[] = [];
    let done = false;
    let asked = 0;
    if (nodes.length === 0) {
      reject(new QuorumError(`${what}: the cluster has no layout yet`, Math.max(quorum, 1), 0, []));
      return;
    }
    if (nodes.length < quorum) {
      reject(new QuorumError(what, quorum, 0, []));
      return;
    }
    const askNext = () => {
      if (done || asked >= nodes.length) return;
      const node = nodes[asked++];
      fn(node).then((value) => {
        if (done) return;
        results.push({ node, value });
        if (results.length >= quorum) {
          done = true;
          resolve(results);
        }
      }, (e) => {
        if (done) return;
        causes.push({ node, error: errorMessage(e) });
        if (causes.length > nodes.length - quorum) {
          done = true;
          reject(new QuorumError(what, quorum, results.length, causes));
        } else {
          askNext();
        }
      });
    };
    const firstWave = Math.min(nodes.length, Math.max(wave.firstWave, quorum));
    for (let i = 0; i < firstWave; i++) askNext();
    if (asked < nodes.length && wave.hedgeMs !== undefined) {
      hedge = setTimeout(() => {
        for (let i = asked; i < nodes.length; i++) askNext();
      }, wave.hedgeMs);
    }
  }).finally(() => clearTimeout(hedge));
}

/**
 * A write to several node sets (the old and the new layout version during a
 * transition): every set must reach its quorum; each node is called once.
 * Resolves with the answers received by then, one per node.
 */
export async function quorumWrite<T>(
  what: string,
  sets: string[][],
  quorum: (setSize: number) => number,
  fn: (node: string) => Promise<T>,
): Promise<{ node: string; value: T }[]> {
  if (sets.length === 0 || sets.some((s) => s.length === 0)) {
    throw new QuorumError(`${what}: the cluster has no layout yet`, 1, 0, []);
  }
  const calls = new Map<string, Promise<T>>();
  const call = (node: string) => {
    let p = calls.get(node);
    if (!p) {
      p = fn(node);
      p.catch(() => {});
      calls.set(node, p);
    }
    return p;
  };
  const answers = new Map<string, T>();
  for (
    const results of await Promise.all(
      sets.map((set) => quorumCall(what, set, quorum(set.length), call)),
    )
  ) {
    for (const { node, value } of results) answers.set(node, value);
  }
  return [...answers].map(([node, value]) => ({ node, value }));
}

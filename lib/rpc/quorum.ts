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
 *
 * With `localLast` (this node's id), this node's own replica is written only
 * once enough of the others stored the write for the quorum to be within
 * reach; when they cannot, it is not written at all. A node cut off from its
 * peers, not knowing it yet, would otherwise keep a write it answers as
 * failed, and that write, newer than what the other sites acknowledged
 * meanwhile, would replace it once the link is back.
 */
export async function quorumWrite<T>(
  what: string,
  sets: string[][],
  quorum: (setSize: number) => number,
  fn: (node: string) => Promise<T>,
  options: { localLast?: string } = {},
): Promise<{ node: string; value: T }[]> {
  if (sets.length === 0 || sets.some((s) => s.length === 0)) {
    throw new QuorumError(`${what}: the cluster has no layout yet`, 1, 0, []);
  }
  const local = options.localLast;
  const gate = local === undefined ? undefined : remoteGate(sets, quorum, local);
  const calls = new Map<string, Promise<T>>();
  const call = (node: string) => {
    let p = calls.get(node);
    if (!p) {
      if (node === local && gate) {
        p = gate.opened.then(() => fn(node));
      } else {
        p = fn(node);
        if (gate?.counts(node)) gate.watch(p);
      }
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

/**
 * When the local replica of a write may be written: once as many of the
 * other replicas of its sets stored it as a quorum needs besides it; fails
 * when too many of them failed for that. Undefined when it needs none.
 */
function remoteGate(
  sets: string[][],
  quorum: (setSize: number) => number,
  local: string,
) {
  const mine = sets.filter((set) => set.includes(local));
  const remotes = new Set(mine.flat().filter((node) => node !== local));
  const needed = Math.max(0, ...mine.map((set) => quorum(set.length) - 1));
  if (needed === 0) return undefined; // a store that runs alone, for one
  let stored = 0;
  let failed = 0;
  let open!: () => void;
  let refuse!: (e: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    refuse = reject;
  });
  opened.catch(() => {}); // a refusal is the local call's failure, if it was made
  return {
    opened,
    counts: (node: string) => remotes.has(node),
    watch(write: Promise<unknown>) {
      write.then(() => {
        if (++stored >= needed) open();
      }, () => {
        if (remotes.size - ++failed < needed) {
          refuse(new Error("not written here: too few of the other replicas stored it"));
        }
      });
    },
  };
}

/**
 * The history of conditional writes to shared keys, and what it must obey.
 *
 * Several client loops write the same keys, each write conditional on what
 * the loop last read: a create (`If-None-Match: *`), or a put or deletion
 * that requires the ETag read (`If-Match`). Every body is unique, so an ETag
 * names one write, and each key's history is a tree of writes linked by the
 * ETag each one required (its base). Taking turns (README, Conditional
 * writes) means:
 *
 * - no two acknowledged writes replaced one base (a lost update);
 * - of the acknowledged creates, only one can have a chain that nothing
 *   deleted: another create could succeed only once the key was deleted;
 * - a read never returns what a write that surely landed had replaced before
 *   the read began, nor what no write that may have landed wrote, nor 404
 *   when such a write had landed and no deletion of its object (or of what
 *   replaced it) had begun by the read's end. A write surely landed by its
 *   acknowledgement, or by that of a write that required its object.
 * Read once every write has ended, a key is thus a write that no write that
 * surely landed replaced, and 404 only if a deletion may have followed every
 * one that surely landed.
 *
 * A write that failed ambiguously (a 5xx, a dropped connection) may or may
 * not have landed; one refused with a 4xx (412, 404) changed nothing.
 */

export type ConditionalOutcome = "ok" | "ambiguous" | "rejected";

/** One conditional write of a key, as a client loop sent it. */
export interface ConditionalWrite {
  key: string;
  kind: "create" | "put" | "delete";
  /** The ETag it required (If-Match), or null for a create (If-None-Match: *). */
  base: string | null;
  /** The ETag of the object it writes (not for a deletion). */
  writes?: string;
  outcome: ConditionalOutcome;
  /** When it was sent, and when its answer came (ms, one clock). */
  start: number;
  end: number;
  /** Who sent it, through which node: for messages. */
  label: string;
}

/** One read of a key: the ETag it returned, or null for 404. */
export interface ConditionalRead {
  key: string;
  seen: string | null;
  /** When it was sent, and when its answer had come (ms, the writes' clock). */
  start: number;
  end: number;
  label: string;
}

const mayHaveLanded = (w: ConditionalWrite) => w.outcome !== "rejected";
const describe = (w: ConditionalWrite) =>
  `${w.outcome} ${w.kind} (${w.label}, ${w.start}-${w.end} ms)`;

/** Every rule of the module's comment that `writes` and `reads` break, as messages. */
export function checkConditionalHistory(
  writes: ConditionalWrite[],
  reads: ConditionalRead[],
): string[] {
  const problems: string[] = [];
  const byKey = new Map<string, ConditionalWrite[]>();
  for (const w of writes) byKey.set(w.key, [...byKey.get(w.key) ?? [], w]);
  const landed = new Map<string, Map<ConditionalWrite, number>>();
  for (const [key, history] of byKey) {
    problems.push(...checkKey(key, history));
    landed.set(key, landedBy(history));
  }
  for (const r of reads) {
    const problem = checkRead(r, byKey.get(r.key) ?? [], landed.get(r.key) ?? new Map());
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * When each write had surely landed (ms, at the latest): an acknowledged one
 * by its answer; one whose object a write that surely landed required (its
 * base) by then too, since that write found it current.
 */
function landedBy(history: ConditionalWrite[]): Map<ConditionalWrite, number> {
  const landed = new Map<ConditionalWrite, number>();
  for (const w of history) if (w.outcome === "ok") landed.set(w, w.end);
  const byEtag = new Map(
    history.filter((w) => w.writes !== undefined && mayHaveLanded(w)).map((w) => [w.writes!, w]),
  );
  for (let changed = true; changed;) {
    changed = false;
    for (const [w, at] of landed) {
      const base = w.base === null ? undefined : byEtag.get(w.base);
      if (base && (landed.get(base) ?? Infinity) > at) {
        landed.set(base, at);
        changed = true;
      }
    }
  }
  return landed;
}

function checkKey(key: string, history: ConditionalWrite[]): string[] {
  const problems: string[] = [];
  const acked = history.filter((w) => w.outcome === "ok");
  const byBase = new Map<string, ConditionalWrite[]>();
  for (const w of acked) {
    if (w.base !== null) byBase.set(w.base, [...byBase.get(w.base) ?? [], w]);
  }
  for (const [base, winners] of byBase) {
    if (winners.length > 1) {
      problems.push(
        `${key}: ${winners.length} acknowledged writes replaced ETag ${base}: ${
          winners.map(describe).join("; ")
        }`,
      );
    }
  }
  const undeleted = acked.filter((w) => w.kind === "create" && !deletedBefore(w, history));
  if (undeleted.length > 1) {
    problems.push(
      `${key}: ${undeleted.length} acknowledged creates, none of whose objects was deleted: ${
        undeleted.map(describe).join("; ")
      }`,
    );
  }
  return problems;
}

/**
 * Whether a write that may have landed, sent before `time`, deleted what
 * `made` wrote, or what replaced it.
 */
function deletedBefore(
  made: ConditionalWrite,
  history: ConditionalWrite[],
  time = Infinity,
): boolean {
  const pending = [made.writes!];
  const seen = new Set<string>();
  while (pending.length) {
    const etag = pending.pop()!;
    if (seen.has(etag)) continue;
    seen.add(etag);
    for (const w of history) {
      if (w.base !== etag || !mayHaveLanded(w)) continue;
      if (w.kind === "delete" && w.start < time) return true;
      pending.push(w.writes!);
    }
  }
  return false;
}

function checkRead(
  read: ConditionalRead,
  history: ConditionalWrite[],
  landed: Map<ConditionalWrite, number>,
): string | undefined {
  const where = `read of ${read.key} (${read.label}, at ${read.start} ms)`;
  const landedBefore = (w: ConditionalWrite) => (landed.get(w) ?? Infinity) < read.start;
  if (read.seen !== null) {
    if (!history.some((w) => w.writes === read.seen && mayHaveLanded(w))) {
      return `${where} returned ETag ${read.seen}, which no write that may have landed wrote`;
    }
    const replaced = history.find((w) => w.base === read.seen && landedBefore(w));
    if (replaced) {
      return `${where} returned ETag ${read.seen}, replaced before it by the ${describe(replaced)}`;
    }
  } else {
    const kept = history.find((w) =>
      w.writes !== undefined && landedBefore(w) && !deletedBefore(w, history, read.end)
    );
    if (kept) {
      return `${where} returned 404 after the ${
        describe(kept)
      } had landed, and before any deletion of its object or of what replaced it`;
    }
  }
  return undefined;
}

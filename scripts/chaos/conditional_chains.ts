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
 * - a read never returns what an acknowledged write had replaced before the
 *   read began, nor what no write that could have landed wrote;
 * - once every write has ended, a key is a write that no acknowledged write
 *   replaced, and is absent only if a deletion may have followed every
 *   acknowledged write.
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
  start: number;
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
  for (const [key, history] of byKey) problems.push(...checkKey(key, history));
  for (const r of reads) {
    const problem = checkRead(r, byKey.get(r.key) ?? []);
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * What a read after every write ended may return: the ETags of writes that
 * may have landed and that no acknowledged write replaced, and whether the key
 * may be absent (what every acknowledged write made may have been deleted since).
 */
export function finalStates(
  history: ConditionalWrite[],
): { etags: Set<string>; absent: boolean } {
  const replacedByAck = new Set(
    history.filter((w) => w.outcome === "ok" && w.base !== null).map((w) => w.base!),
  );
  const made = history.filter((w) => w.writes !== undefined && mayHaveLanded(w));
  const etags = new Set(made.filter((w) => !replacedByAck.has(w.writes!)).map((w) => w.writes!));
  const absent = made.every((w) => w.outcome !== "ok" || chainDeleted(w, history));
  return { etags, absent };
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
  const undeleted = acked.filter((w) => w.kind === "create" && !chainDeleted(w, history));
  if (undeleted.length > 1) {
    problems.push(
      `${key}: ${undeleted.length} acknowledged creates, none of whose objects was deleted: ${
        undeleted.map(describe).join("; ")
      }`,
    );
  }
  return problems;
}

/** Whether a write that may have landed deleted what `made` wrote, or what replaced it. */
function chainDeleted(made: ConditionalWrite, history: ConditionalWrite[]): boolean {
  const pending = [made.writes!];
  const seen = new Set<string>();
  while (pending.length) {
    const etag = pending.pop()!;
    if (seen.has(etag)) continue;
    seen.add(etag);
    for (const w of history) {
      if (w.base !== etag || !mayHaveLanded(w)) continue;
      if (w.kind === "delete") return true;
      pending.push(w.writes!);
    }
  }
  return false;
}

function checkRead(read: ConditionalRead, history: ConditionalWrite[]): string | undefined {
  const where = `read of ${read.key} (${read.label}, at ${read.start} ms)`;
  if (read.seen !== null) {
    if (!history.some((w) => w.writes === read.seen && mayHaveLanded(w))) {
      return `${where} returned ETag ${read.seen}, which no write that may have landed wrote`;
    }
    const replaced = history.find((w) =>
      w.outcome === "ok" && w.base === read.seen && w.end < read.start
    );
    if (replaced) {
      return `${where} returned ETag ${read.seen}, replaced before it by the ${describe(replaced)}`;
    }
  }
  if (history.every((w) => w.end < read.start)) {
    const { etags, absent } = finalStates(history);
    if (read.seen === null ? !absent : !etags.has(read.seen)) {
      return `${where}, after every write ended, returned ${read.seen ?? "404"}; possible: ${
        [...etags].join(", ") || "none"
      }${absent ? ", 404" : ""}`;
    }
  }
  return undefined;
}

/**
 * The data this node writes for the uploads it coordinates (a PutObject's,
 * a part's or a CopyObject's), noted on this node alone before the first
 * block and forgotten once the upload's record names it or it is released.
 * An upload cut off by the death of this node leaves its note behind: the
 * next process settles it (`releaseInterruptedUploads`), since nobody else
 * knows the data exists. An upload that fails while its process runs on,
 * its data kept because a record naming it may have reached a replica,
 * leaves its note to the same settling (`leave`), once its writes can no
 * longer land.
 *
 * Keys: `["dj", dataId]` -> JournalEntry.
 */
import type { DbStore } from "../db/db.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { LEFT_NOTE_SETTLE_DELAY_MS } from "../util/limits.ts";

const JOURNAL_SPACE = "dj";

/** What an upload's data belongs to once it is complete. */
export type DataOwner =
  /** A single upload: its version's uuid is the data id. */
  | { kind: "object"; bucketId: string; key: string }
  /** A part; a completed upload's version has the upload's id for uuid. */
  | { kind: "part"; bucketId: string; key: string; uploadId: string; partNumber: number }
  /** A CopyObject's data, named by the version the copy commits. */
  | { kind: "copy"; bucketId: string; key: string; versionUuid: string };

export interface JournalEntry {
  dataId: string;
  owner: DataOwner;
  /** The process that noted it (`DataJournal.run`). */
  run: string;
}

export class DataJournal {
  /** This process's notes that failed uploads left (`leave`), with when. */
  readonly #leftAtMs = new Map<string, number>();

  /** `run`: this process (Replication.run); notes of other runs are of uploads that died with theirs. */
  constructor(
    private readonly db: DbStore,
    private readonly nowMs: () => number,
    readonly run: string,
  ) {}

  /** Notes, durably, that `dataId` is about to be written for `owner`. */
  async begin(dataId: string, owner: DataOwner): Promise<void> {
    await this.beginAll([dataId], owner);
  }

  /** Notes, in one commit, that each of `dataIds` is about to be written for `owner`. */
  async beginAll(dataIds: string[], owner: DataOwner): Promise<void> {
    if (dataIds.length === 0) return;
    await this.db.commit(dataIds.map((dataId) => {
      const entry: JournalEntry = { dataId, owner, run: this.run };
      return { type: "set", key: [JOURNAL_SPACE, dataId], value: entry };
    }));
  }

  /** Forgets the note: the data's upload settled it. A note left behind is settled later. */
  end(dataId: string): void {
    this.endAll([dataId]);
  }

  /** Forgets the notes of `dataIds`, in one commit, as `end` does. */
  endAll(dataIds: string[]): void {
    if (dataIds.length === 0) return;
    this.forget(...dataIds).catch((e) =>
      log("remise::model", "warn", `cannot forget upload data ${dataIds[0]}: ${errorMessage(e)}`)
    );
  }

  /**
   * Leaves the notes of `dataIds`, noted by this process, to be settled as an
   * earlier process's are (`unsettled`): their upload failed, and keeps its
   * data while a record naming it may show.
   */
  leave(dataIds: string[]): void {
    const nowMs = this.nowMs();
    for (const dataId of dataIds) this.#leftAtMs.set(dataId, nowMs);
  }

  async forget(...dataIds: string[]): Promise<void> {
    await this.db.commit(
      dataIds.map((dataId) => ({ type: "delete", key: [JOURNAL_SPACE, dataId] })),
    );
    for (const dataId of dataIds) this.#leftAtMs.delete(dataId);
  }

  /**
   * The notes to settle: those that processes before this one left, and
   * those that this one's failed uploads left long enough ago that no write
   * they sent is still on its way (LEFT_NOTE_SETTLE_DELAY_MS).
   */
  async *unsettled(): AsyncIterableIterator<JournalEntry> {
    const settleLeftBeforeMs = this.nowMs() - LEFT_NOTE_SETTLE_DELAY_MS;
    const listed = new Set<string>();
    for await (const { value } of this.db.list<JournalEntry>({ prefix: [JOURNAL_SPACE] })) {
      if (value.run !== this.run) yield value;
      else if ((this.#leftAtMs.get(value.dataId) ?? Infinity) <= settleLeftBeforeMs) {
        listed.add(value.dataId);
        yield value;
      }
    }
    // Left without a note (its commit failed): nothing to settle.
    for (const [dataId, leftAtMs] of this.#leftAtMs) {
      if (leftAtMs <= settleLeftBeforeMs && !listed.has(dataId)) this.#leftAtMs.delete(dataId);
    }
  }
}

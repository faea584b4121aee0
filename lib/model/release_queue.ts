/**
 * The release of a replaced or deleted object's data, or of an aborted
 * upload's, done after the change is answered: it marks every block entry of
 * the data deleted, ~1 ms a block, which made a DeleteObject or an
 * AbortMultipartUpload of 5 GB take seconds (and one of 100 GB outlast
 * clients' timeouts). The change that calls for the release notes it
 * in its own commit, so that a release cut short (the process stopped or
 * died, a quorum was missing) is never forgotten: notes not being worked on
 * are taken up again by `resume`, run periodically. Releasing is idempotent.
 *
 * Keys: `["rel", versionUuid]` -> ReleaseNote.
 */
import type { DbStore } from "../db/db.ts";
import type { LocalTransaction } from "../table/schema.ts";
import type { ObjectVersion } from "./object_table.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

const RELEASE_SPACE = "rel";

/** The key a version was of (absent from notes written before 2026-11-29). */
export interface VersionKey {
  bucketId: string;
  key: string;
}

interface ReleaseNote {
  version: ObjectVersion;
  of?: VersionKey;
}

export class ReleaseQueue {
  /** The releases waiting or running in this process, by version uuid. */
  readonly #queued = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly db: DbStore,
    /** `fresh`: the first try of a release noted by this process (not one taken up again). */
    private readonly release: (
      version: ObjectVersion,
      of: VersionKey | undefined,
      fresh: boolean,
    ) => Promise<void>,
    /**
     * How long after its commit a release may start: in a cluster, the
     * write that replaced a version lands on its replicas one after another,
     * and a release checks that a quorum of them has it.
     */
    private readonly settleMs = 0,
  ) {}

  /**
   * Notes in `tx` the release of `version`'s data, which runs once `tx` is
   * durable; false when there is no data to release (inline data).
   *
   * The note holds the version whole, ~130 bytes a part: one of S3's 10,000
   * parts makes a note of ~1.3 MB, which, like the entry that held the
   * version, takes more than one engine commit. It comes after the entry in
   * `tx`, so a stop between them can only lose the note (the data is kept),
   * never note the release of a version that is still there.
   */
  note(tx: LocalTransaction, version: ObjectVersion, of: VersionKey): boolean {
    const state = version.state;
    if (state.state === "complete" && state.data.type !== "parts") return false;
    const note: ReleaseNote = { version, of };
    tx.set([RELEASE_SPACE, version.uuid], note);
    tx.afterCommit(() => {
      this.#enqueue(version, of, Date.now() + this.settleMs);
      return Promise.resolve();
    });
    return true;
  }

  /** Takes up the notes no release of this process is working on; returns how many it queued. */
  async resume(): Promise<number> {
    let queued = 0;
    for await (const { value } of this.db.list<ReleaseNote>({ prefix: [RELEASE_SPACE] })) {
      if (this.#queued.has(value.version.uuid)) continue;
      this.#enqueue(value.version, value.of);
      queued++;
    }
    return queued;
  }

  /** Resolves once every release queued so far has ended (done, or failed and kept). */
  async settled(): Promise<void> {
    while (this.#queued.size > 0) await this.#chain;
  }

  /** Starts no more releases: the notes left are taken up by the next process. */
  stop(): void {
    this.#stopped = true;
  }

  #enqueue(version: ObjectVersion, of: VersionKey | undefined, notBeforeMs = 0): void {
    if (this.#stopped || this.#queued.has(version.uuid)) return;
    this.#queued.add(version.uuid);
    // One release at a time: they are background work, and each is many commits already.
    this.#chain = this.#chain.then(async () => {
      try {
        // Waits only when the queue was idle: releases waiting in line are past it.
        const waitMs = notBeforeMs - Date.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        if (this.#stopped) return;
        // Only releases noted by this process have a start time: their first try.
        await this.release(version, of, notBeforeMs > 0);
        await this.db.commit([{ type: "delete", key: [RELEASE_SPACE, version.uuid] }]);
      } catch (e) {
        if (this.#stopped) return;
        log(
          "remise::model",
          "warn",
          `the data of version ${version.uuid} is kept for now (released later): ${
            errorMessage(e)
          }`,
        );
      } finally {
        this.#queued.delete(version.uuid);
      }
    });
  }
}

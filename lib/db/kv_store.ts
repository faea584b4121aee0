/**
 * DbStore over Deno KV (SQLite underneath).
 *
 * - Values are serialized here, in V8's format (v8_write.ts, else node:v8)
 *   so that their size is known: values over Deno KV's 64 KiB limit are split
 *   into chunks kept under a separate key space (`CHUNK_SPACE`), so range
 *   scans never see them.
 * - Point reads go out in batches while the read connections are busy
 *   (ReadBatcher).
 * - Group commit: a durable KV commit costs ~0.3 ms whatever its size, so
 *   mutations of concurrent callers are gathered into one atomic commit, within
 *   the engine's mutation and byte limits.
 * - The chunk counts of split values are kept in memory (read from the chunk
 *   space at start), so that overwriting a key needs no read to find stale
 *   chunks: split values are rare, and a read per written key was not.
 * - A key larger than Deno KV allows is absent (key_size.ts), not an error.
 * - Keys recently found absent are remembered (`AbsentKeys`, which commits
 *   keep exact): a PUT of a new key reads it twice.
 */
import { deserialize, serialize } from "node:v8";
import { setImmediate } from "node:timers";
import {
  KV_ABSENT_KEYS_MAX,
  KV_COMMIT_BYTES_MAX,
  KV_COMMIT_MUTATIONS_MAX,
  KV_GET_MANY_MAX,
  KV_GROUP_LINGER_MS,
  KV_READ_CONNECTIONS,
  KV_VALUE_MAX_BYTES,
} from "../util/limits.ts";
import { AbsentKeys } from "./absent_keys.ts";
import { keyTooLarge } from "./key_size.ts";
import { ReadBatcher } from "./read_batcher.ts";
import { wrapError } from "../util/errors.ts";
import { isOutOfSpace, type WriteOutcomes } from "../util/free_space.ts";
import {
  type DbEntry,
  type DbKey,
  dbKeyId,
  type DbListOptions,
  type DbSelector,
  type DbStore,
  type Mutation,
  type ValuePick,
} from "./db.ts";
import { decodeSerialized, pickSerialized, pickValue } from "./v8_pick.ts";
import { encodeSerialized } from "./v8_write.ts";

const CHUNK_SPACE = "\u0000chunks";
/** First byte of a stored value: the value itself follows, or a chunk count. */
const TAG_INLINE = 0;
const TAG_SPLIT = 1;
/** A value is at most this many chunks (60 MiB). */
const CHUNKS_MAX = 1024;
/** Reads of a split value that writes changed each time, before giving up (~0.5 s in all). */
const SPLIT_READ_ATTEMPTS = 9;

/** `bytes` after one zero byte. */
function afterOneByte(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength + 1);
  out.set(bytes, 1);
  return out;
}

/** The value of an inline stored value, or only its picked properties. */
function decodeInline<T>(stored: Uint8Array, pick: ValuePick | undefined): T {
  if (pick === undefined) {
    return (decodeSerialized(stored, 1) ?? { value: deserialize(stored.subarray(1)) }).value as T;
  }
  // The picking reader declines what it does not handle: then decode whole and pick.
  return (pickSerialized(stored, 1, pick) ?? pickValue(deserialize(stored.subarray(1)), pick)) as T;
}

function splitCount(head: Uint8Array): number {
  return new DataView(head.buffer, head.byteOffset).getUint32(1);
}

interface KvOp {
  key: Deno.KvKey;
  value?: Uint8Array;
  /** dbKeyId of a mutation's own key (absent on its chunks' keys, never read on their own). */
  id?: string;
}

interface PendingCommit {
  ops: KvOp[];
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * SQLite's words for a commit the disk failed: Deno KV throws them as
 * TypeErrors too ("database or disk is full", "attempt to write a readonly
 * database", "disk I/O error").
 */
const STORAGE_FAILURE = /disk is full|readonly database|I\/O error/i;

/** A mutation the engine refuses (a key too large), not a failure of the disk. */
function isRefusedMutation(e: unknown): boolean {
  return e instanceof TypeError && !STORAGE_FAILURE.test(e.message);
}

export class KvStore implements DbStore {
  #pending: PendingCommit[] = [];
  /** dbKeyId -> chunk count, for every key whose stored value is split. */
  readonly #chunkCounts = new Map<string, number>();
  #flushing = false;
  readonly #absent = new AbsentKeys(KV_ABSENT_KEYS_MAX);
  /** Callers in the last group committed. */
  #lastGroupSize = 0;
  #closed = false;
  #nextReader = 0;
  readonly #batcher: ReadBatcher;
  /** Told of each engine commit's outcome, so that a disk refusing writes shows in `remise status`. */
  writeOutcomes?: WriteOutcomes;
  /**
   * Called when a commit failed for want of space; resolves with whether it
   * made room (the ballast), and the commit is then tried once more.
   */
  makeRoom?: () => Promise<boolean>;

  /**
   * `readers` serve reads and `writer` commits, all connections to the same
   * file, so that reads are not queued behind a commit's fsync (SQLite's WAL
   * lets readers proceed while a writer commits; one connection serializes
   * them: a read under a stream of commits took ~0.3 ms at p50 instead of
   * ~0.03). Each connection runs on a thread of its own, one read at a time:
   * see KV_READ_CONNECTIONS. `kv` is the first reader.
   */
  private constructor(
    private readonly readers: Deno.Kv[],
    private readonly writer: Deno.Kv,
    readonly path: string,
  ) {
    this.#batcher = new ReadBatcher(readers);
  }

  get kv(): Deno.Kv {
    return this.readers[0];
  }

  static async open(path: string): Promise<KvStore> {
    let store: KvStore;
    const opened: Deno.Kv[] = [];
    if (typeof Deno.openKv !== "function") {
      throw new Error(
        `Cannot open the metadata store at ${path}: Deno KV is not enabled; ` +
          "run deno with --unstable-kv (deno run -A --unstable-kv ...)",
      );
    }
    try {
      const writer = await Deno.openKv(path);
      opened.push(writer);
      // An in-memory store is private to its connection.
      const readerCount = path === ":memory:" ? 0 : KV_READ_CONNECTIONS;
      for (let i = 0; i < readerCount; i++) opened.push(await Deno.openKv(path));
      store = new KvStore(readerCount === 0 ? [writer] : opened.slice(1), writer, path);
    } catch (e) {
      for (const kv of opened) kv.close();
      throw wrapError(`Cannot open the metadata store at ${path}`, e);
    }
    try {
      await store.#loadChunkCounts();
    } catch (e) {
      store.close();
      throw wrapError(`Cannot read the split values of the metadata store at ${path}`, e);
    }
    return store;
  }

  /** The next reader, in turn. */
  #reader(): Deno.Kv {
    return this.readers[this.#nextReader++ % this.readers.length];
  }

  async #loadChunkCounts(): Promise<void> {
    for await (const { key } of this.kv.list({ prefix: [CHUNK_SPACE] })) {
      const id = dbKeyId(key.slice(1, -1) as DbKey);
      const count = (key.at(-1) as number) + 1;
      if (count > (this.#chunkCounts.get(id) ?? 0)) this.#chunkCounts.set(id, count);
    }
  }

  async get<T>(key: DbKey): Promise<T | undefined> {
    if (keyTooLarge(key)) return undefined;
    const id = dbKeyId(key);
    if (this.#absent.has(id)) return undefined;
    const found = this.#absent.beginRead(id);
    let stored: Uint8Array | null | undefined;
    try {
      stored = await this.#batcher.get(key as Deno.KvKey);
    } finally {
      found(stored === undefined ? undefined : stored !== null);
    }
    if (stored === null) return undefined;
    return await this.#decode<T>(key, stored);
  }

  async *list<T>(
    selector: DbSelector,
    options: DbListOptions = {},
  ): AsyncIterableIterator<DbEntry<T>> {
    // Listings stay on one connection, whose page cache a walk keeps warm.
    const iter = this.kv.list<Uint8Array>(selector as Deno.KvListSelector, {
      limit: options.limit,
      reverse: options.reverse,
      batchSize: Math.min(options.limit ?? 500, 500),
    });
    for await (const entry of iter) {
      const key = entry.key as DbKey;
      const stored = entry.value;
      // Inline values decode without waiting: only split values need reads.
      const value = stored[0] === TAG_INLINE
        ? decodeInline<T>(stored, options.pick)
        : await this.#decode<T>(key, stored, options.pick);
      // A split value deleted since the listing read its key is left out, as if deleted before.
      if (value !== undefined) yield { key, value };
    }
  }

  async commit(mutations: Mutation[]): Promise<void> {
    if (this.#closed) throw new Error(`The metadata store ${this.path} is closed`);
    if (mutations.length === 0) return;
    const ops: KvOp[] = [];
    let bytes = 0;
    // Chunk counts after these mutations; recorded once all are encoded.
    const chunkCounts = new Map<string, number>();
    // Counts before them, for the keys whose count changes.
    const countsBefore = new Map<string, number>();
    for (const m of mutations) {
      const id = dbKeyId(m.key);
      const oldChunkCount = chunkCounts.get(id) ?? this.#chunkCounts.get(id) ?? 0;
      const encoded = this.#encode(m, id, oldChunkCount);
      if (encoded.chunkCount !== oldChunkCount && !countsBefore.has(id)) {
        countsBefore.set(id, oldChunkCount);
      }
      chunkCounts.set(id, encoded.chunkCount);
      for (const op of encoded.ops) {
        ops.push(op);
        bytes += (op.value?.byteLength ?? 0) + 64;
      }
    }
    for (const [id, count] of chunkCounts) {
      if (count > 0) this.#chunkCounts.set(id, count);
      else this.#chunkCounts.delete(id);
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.#pending.push({ ops, bytes, resolve, reject });
        if (!this.#flushing) this.#flush();
      });
    } catch (e) {
      // The chunks stored before may all still be there (or some of a larger
      // value, committed in slices): the counts stay at least what they were,
      // so that the next write of these keys deletes them.
      for (const [id, before] of countsBefore) {
        const now = this.#chunkCounts.get(id) ?? 0;
        if (before > now) this.#chunkCounts.set(id, before);
      }
      throw e;
    }
  }

  close(): void {
    this.#closed = true;
    for (const reader of this.readers) if (reader !== this.writer) reader.close();
    this.writer.close();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length > 0) {
        // One turn of the event loop first: requests whose I/O just completed
        // may join this group. Under concurrent writes (the last group had
        // several callers, fewer wait now) wait a little more: each commit
        // costs an fsync, and larger groups gave 4 KiB PUTs at c=32 +20% and
        // DELETEs +50% (a caller alone never waits).
        await new Promise((resolve) => setImmediate(resolve));
        if (this.#lastGroupSize > 1 && this.#pending.length < this.#lastGroupSize) {
          await new Promise((resolve) => setTimeout(resolve, KV_GROUP_LINGER_MS));
        }
        const group: PendingCommit[] = [];
        let ops = 0;
        let bytes = 0;
        while (this.#pending.length > 0) {
          const next = this.#pending[0];
          const fits = ops + next.ops.length <= KV_COMMIT_MUTATIONS_MAX &&
            bytes + next.bytes <= KV_COMMIT_BYTES_MAX;
          if (group.length > 0 && !fits) break;
          group.push(this.#pending.shift()!);
          ops += next.ops.length;
          bytes += next.bytes;
        }
        this.#lastGroupSize = group.length;
        await this.#commitGroup(group);
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #commitGroup(group: PendingCommit[]): Promise<void> {
    try {
      const allOps = group.flatMap((g) => g.ops);
      // A single caller's batch larger than one engine commit is applied in
      // slices; callers keep such batches rare (large split values only).
      for (let i = 0; i < allOps.length; i += KV_COMMIT_MUTATIONS_MAX) {
        await this.#commitOps(allOps.slice(i, i + KV_COMMIT_MUTATIONS_MAX));
      }
      for (const g of group) g.resolve();
    } catch (e) {
      const error = wrapError(`Cannot commit to the metadata store ${this.path}`, e);
      for (const g of group) g.reject(error);
    }
  }

  async #commitOps(ops: KvOp[]): Promise<void> {
    let batch: KvOp[] = [];
    let bytes = 0;
    for (const op of ops) {
      const size = (op.value?.byteLength ?? 0) + 64;
      if (bytes + size > KV_COMMIT_BYTES_MAX && bytes > 0) {
        await this.#commitAtomic(batch);
        batch = [];
        bytes = 0;
      }
      bytes += size;
      batch.push(op);
    }
    await this.#commitAtomic(batch);
  }

  /** One engine commit of `ops`, its outcome told to writeOutcomes. */
  async #engineCommit(ops: KvOp[]): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    let atomic = this.writer.atomic();
    for (const op of ops) {
      atomic = op.value === undefined ? atomic.delete(op.key) : atomic.set(op.key, op.value);
    }
    try {
      const result = await atomic.commit();
      this.writeOutcomes?.writeSucceeded();
      return result;
    } catch (e) {
      if (!isRefusedMutation(e)) this.writeOutcomes?.writeFailed(e);
      throw e;
    }
  }

  /** Commits `ops` in one engine commit; once durable, AbsentKeys learns what they wrote. */
  async #commitAtomic(ops: KvOp[]): Promise<void> {
    let result: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      result = await this.#engineCommit(ops);
    } catch (e) {
      // A failed commit wrote nothing: once room is made, it can be sent again.
      if (!isOutOfSpace(e) || !(await this.makeRoom?.())) throw e;
      result = await this.#engineCommit(ops);
    }
    if (!result.ok) throw new Error("atomic commit was refused");
    for (const op of ops) {
      if (op.id !== undefined) this.#absent.written(op.id, op.value !== undefined);
    }
  }

  /** The engine operations for a mutation, and the key's chunk count after it. */
  #encode(m: Mutation, id: string, oldChunkCount: number): { ops: KvOp[]; chunkCount: number } {
    const key = m.key as Deno.KvKey;
    const ops: KvOp[] = [];
    for (let i = 0; i < oldChunkCount; i++) ops.push({ key: [CHUNK_SPACE, ...key, i] });
    if (m.type === "delete") {
      ops.push({ key, id });
      return { ops, chunkCount: 0 };
    }
    // The value after one byte for its tag: written here, or by node:v8 for what this writer declines.
    const tagged = encodeSerialized(m.value, 1) ?? afterOneByte(serialize(m.value));
    const payload = tagged.subarray(1);
    if (tagged.byteLength <= KV_VALUE_MAX_BYTES) {
      tagged[0] = TAG_INLINE;
      ops.push({ key, value: tagged, id });
      return { ops, chunkCount: 0 };
    }
    const count = Math.ceil(payload.byteLength / KV_VALUE_MAX_BYTES);
    if (count > CHUNKS_MAX) {
      throw new Error(`A metadata value of ${payload.byteLength} bytes is too large to store`);
    }
    const head = new Uint8Array(5);
    head[0] = TAG_SPLIT;
    new DataView(head.buffer).setUint32(1, count);
    ops.push({ key, value: head, id });
    for (let i = 0; i < count; i++) {
      const chunk = payload.subarray(i * KV_VALUE_MAX_BYTES, (i + 1) * KV_VALUE_MAX_BYTES);
      ops.push({ key: [CHUNK_SPACE, ...key, i], value: new Uint8Array(chunk) });
    }
    return { ops, chunkCount: count };
  }

  /** The value `stored` under `key` holds; undefined when a split value was deleted meanwhile. */
  async #decode<T>(key: DbKey, stored: Uint8Array, pick?: ValuePick): Promise<T | undefined> {
    let head: Uint8Array | null = stored;
    for (let attempt = 0; head !== null; attempt++) {
      if (head[0] === TAG_INLINE) return decodeInline<T>(head, pick);
      if (head[0] !== TAG_SPLIT) throw new Error(`Unknown value format for key ${String(key)}`);
      if (attempt === SPLIT_READ_ATTEMPTS) {
        throw new Error(
          `The value of key ${
            String(key)
          } kept changing while its chunks were read, or misses some`,
        );
      }
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 2 ** attempt));
      const read = await this.#readChunks(key, splitCount(head));
      if ("whole" in read) {
        const value = (decodeSerialized(read.whole, 0) ?? { value: deserialize(read.whole) }).value;
        return (pick === undefined ? value : pickValue(value, pick)) as T;
      }
      head = read.changed;
    }
    return undefined;
  }

  /**
   * The chunks of a split value, joined; or, when the value was written
   * again while they were read, its new head (null: deleted). Each read of
   * chunks also reads the head, whose versionstamp changes with every
   * commit of the key: chunks read while it stayed the same are of one value
   * (a write in slices deletes the old chunks in its first). A value of up
   * to KV_GET_MANY_MAX - 1 chunks (540 KiB) is read in one read, which the
   * engine makes atomic; a larger one, rewritten without a pause, may keep
   * changing under its reads (see SPLIT_READ_ATTEMPTS).
   */
  async #readChunks(
    key: DbKey,
    count: number,
  ): Promise<{ whole: Uint8Array } | { changed: Uint8Array | null }> {
    const head = key as Deno.KvKey;
    const chunkKeys = Array.from(
      { length: count },
      (_, i) => [CHUNK_SPACE, ...key, i] as Deno.KvKey,
    );
    const parts: Uint8Array[] = [];
    const reader = this.#reader();
    let versionstamp: string | undefined;
    for (let i = 0; i < chunkKeys.length; i += KV_GET_MANY_MAX - 1) {
      const [headNow, ...got] = await reader.getMany<Uint8Array[]>([
        head,
        ...chunkKeys.slice(i, i + KV_GET_MANY_MAX - 1),
      ]);
      const value = headNow.value;
      versionstamp ??= headNow.versionstamp ?? undefined;
      if (
        value === null || headNow.versionstamp !== versionstamp || value[0] !== TAG_SPLIT ||
        splitCount(value) !== count
      ) {
        return { changed: value };
      }
      for (const g of got) {
        // A value larger than one engine commit is written in slices: the rest comes soon.
        if (g.value === null) return { changed: value };
        parts.push(g.value);
      }
    }
    const whole = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let offset = 0;
    for (const p of parts) {
      whole.set(p, offset);
      offset += p.byteLength;
    }
    return { whole };
  }
}

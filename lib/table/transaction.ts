import { type DbKey, dbKeyId, type DbStore, type Mutation } from "../db/db.ts";
import type { LocalTransaction } from "./schema.ts";

export class DbTransaction implements LocalTransaction {
  readonly mutations: Mutation[] = [];
  readonly #overlay = new Map<string, { value: unknown } | null>();
  readonly #after: (() => Promise<void>)[] = [];
  readonly #settled: { done: () => void; failed: () => void }[] = [];

  constructor(private readonly db: DbStore, readonly writerDerives = false) {}

  async get<T>(key: DbKey): Promise<T | undefined> {
    const pending = this.pending<T>(key);
    if (pending !== undefined) return pending?.value;
    return await this.db.get<T>(key);
  }

  pending<T>(key: DbKey): { value: T } | null | undefined {
    return this.#overlay.get(dbKeyId(key)) as { value: T } | null | undefined;
  }

  set(key: DbKey, value: unknown): void {
    this.mutations.push({ type: "set", key, value });
    this.#overlay.set(dbKeyId(key), { value });
  }

  delete(key: DbKey): void {
    this.mutations.push({ type: "delete", key });
    this.#overlay.set(dbKeyId(key), null);
  }

  afterCommit(fn: () => Promise<void>): void {
    this.#after.push(fn);
  }

  onSettled(done: () => void, failed: () => void): void {
    this.#settled.push({ done, failed });
  }

  async commit(): Promise<void> {
    try {
      await this.db.commit(this.mutations);
    } catch (e) {
      for (const { failed } of this.#settled) failed();
      throw e;
    }
    for (const { done } of this.#settled) done();
  }

  async runAfterCommit(): Promise<void> {
    for (const fn of this.#after) await fn();
  }
}

import { type DbKey, dbKeyId, type DbStore, type Mutation } from "../db/db.ts";
import type { LocalTransaction } from "./schema.ts";

export class DbTransaction implements LocalTransaction {
  readonly mutations: Mutation[] = [];
  readonly #overlay = new Map<string, { value: unknown } | null>();
  readonly #after: (() => Promise<void>)[] = [];

  constructor(private readonly db: DbStore) {}

  async get<T>(key: DbKey): Promise<T | undefined> {
    const pending = this.#overlay.get(dbKeyId(key));
    if (pending !== undefined) return pending === null ? undefined : pending.value as T;
    return await this.db.get<T>(key);
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

  async commit(): Promise<void> {
    await this.db.commit(this.mutations);
  }

  async runAfterCommit(): Promise<void> {
    for (const fn of this.#after) await fn();
  }
}

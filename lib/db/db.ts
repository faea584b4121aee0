/**
 * The metadata store's interface. Only `lib/db` touches the storage engine;
 * every layer above sees typed keys, atomic batches and range scans.
 */

export type DbKeyPart = string | number | bigint | Uint8Array | boolean;
export type DbKey = readonly DbKeyPart[];

/** A string that tells keys apart, for maps keyed by DbKey (parts joined by U+0000, typed). */
export function dbKeyId(key: DbKey): string {
  let id = "";
  for (let i = 0; i < key.length; i++) {
    const part = key[i];
    if (i > 0) id += "\u0000";
    id += part instanceof Uint8Array ? `u${part.join(",")}` : `${typeof part}:${part}`;
  }
  return id;
}

export type Mutation =
  | { type: "set"; key: DbKey; value: unknown }
  | { type: "delete"; key: DbKey };

export interface DbEntry<T> {
  key: DbKey;
  value: T;
}

/** Keys under `prefix` from `start` (inclusive) or to `end` (exclusive), or between `start` and `end`. */
export type DbSelector =
  | { prefix: DbKey; start?: DbKey; end?: never }
  | { prefix: DbKey; start?: never; end?: DbKey }
  | { prefix?: never; start: DbKey; end: DbKey };

/**
 * Properties of a value to read: `true` keeps a property's whole value, a
 * nested pick keeps some of its properties. A pick applied to an array
 * applies to each element; applied to anything but a plain object or an
 * array, it keeps the value whole.
 */
export type ValuePick = { readonly [property: string]: true | ValuePick };

export interface DbListOptions {
  limit?: number;
  reverse?: boolean;
  /** Read only these properties of each value (the rest is not even decoded). */
  pick?: ValuePick;
}

export interface DbStore {
  get<T>(key: DbKey): Promise<T | undefined>;
  list<T>(selector: DbSelector, options?: DbListOptions): AsyncIterableIterator<DbEntry<T>>;
  /**
   * Applies the mutations atomically and durably. Concurrent calls may be
   * grouped into one engine commit; each call resolves once its own
   * mutations are durable.
   */
  commit(mutations: Mutation[]): Promise<void>;
  close(): void;
}

/** A table on a temporary metadata store, for tests that give it their own replication. */
import { KvStore } from "../db/kv_store.ts";
import type { Replication } from "../rpc/replication.ts";
import { KeyedMutex } from "../util/keyed_mutex.ts";
import type { TableSchema } from "./schema.ts";
import { Table } from "./table.ts";

export async function withTable<E>(
  replication: Replication,
  schema: TableSchema<E>,
  fn: (table: Table<E>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `remise-table-${schema.name}-` });
  const db = await KvStore.open(`${dir}/meta.kv`);
  try {
    await fn(new Table(schema, db, new KeyedMutex(), replication));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * An offline check of a stopped node's metadata store: that every complete
 * object version's data is there (each part's block entries live and adding
 * up to its size) and referenced (each of those blocks' references live, and
 * its reference count above zero: else garbage collection takes the block;
 * this assumes the node holds every partition, as each node of a 3-node
 * cluster with 3 replicas does), that the Merkle index that anti-entropy
 * compares matches the entries (a node of a cluster), and how much live data
 * nothing names (a leak).
 *
 *   deno run -A --unstable-kv scripts/chaos/metadata_check.ts METADATA_DIR...
 *
 * Prints one report per store; exits 1 when a store has a missing part or a
 * wrong Merkle leaf.
 * kill_restart.ts runs it on every node once they are stopped.
 */
import { KvStore } from "../../lib/db/kv_store.ts";
import type { ObjectEntry } from "../../lib/model/object_table.ts";
import type { VersionBlock } from "../../lib/model/version_table.ts";
import type { BlockRef } from "../../lib/model/block_ref_table.ts";
import { type MultipartUpload, uploadDataIds } from "../../lib/model/mpu_table.ts";
import {
  DIGEST_BYTES,
  equalDigests,
  itemHash,
  leafOf,
  MerkleIndex,
} from "../../lib/table/merkle.ts";
import { KeyedMutex } from "../../lib/util/keyed_mutex.ts";

/** A complete version's part whose data is not all there. */
export interface MissingPart {
  key: string;
  versionUuid: string;
  partNumber: number;
  dataId: string;
  /** "no blocks", "deleted blocks", or "N of M bytes". */
  problem: string;
}

/** A live block of a complete version that garbage collection could take. */
export interface UnreferencedBlock {
  key: string;
  dataId: string;
  hash: string;
  /** "no reference", "reference deleted", or "reference count 0". */
  problem: string;
}

/** Live data that no complete version and no upload going on names. */
export interface Unnamed {
  dataIds: number;
  bytes: number;
}

export interface MetadataReport {
  path: string;
  partsChecked: number;
  missing: MissingPart[];
  /** Block entries of the parts checked (live ones), and those not referenced. */
  blocksChecked: number;
  unreferenced: UnreferencedBlock[];
  /** Merkle leaves checked, and those whose digest is not that of the entries under them. */
  merkleLeaves: { checked: number; wrong: string[] };
  /** Data of PutObjects still recorded as uploading: collected after 7 days (abandoned uploads). */
  uploading: Unnamed;
  /** Data of uploads ended but not yet cleared: released with the upload's clearing. */
  endedUploads: Unnamed;
  /** Data only this node's journal names: its next pass of interrupted uploads settles it. */
  noted: Unnamed;
  /** Data nothing on this node names: leaked, unless another node's journal notes it. */
  leaked: Unnamed & { ids: string[] };
  /** Every data id this node's journal notes (see DataJournal). */
  journal: string[];
  /** The hashes of the blocks that live block entries name (each once). */
  liveBlocks: string[];
}

interface Stored<E> {
  entry: E;
}

interface DataBlocks {
  live: number;
  deleted: number;
  liveBytes: number;
}

async function* tableEntries<E>(db: KvStore, table: string): AsyncIterableIterator<E> {
  for await (const { value } of db.list<Stored<E>>({ prefix: ["t", table] })) yield value.entry;
}

/** Checks the metadata store in `metadataDir` (its node stopped). */
export async function checkMetadata(metadataDir: string): Promise<MetadataReport> {
  const path = `${metadataDir.replace(/\/$/, "")}/metadata.kv`;
  // Opening a file that is not there would make an empty store, and report nothing wrong.
  await Deno.stat(path);
  const db = await KvStore.open(path);
  try {
    const blocks = new Map<string, DataBlocks>();
    const liveBlocks = new Set<string>();
    const liveHashesOf = new Map<string, string[]>();
    for await (const b of tableEntries<VersionBlock>(db, "version")) {
      const data = blocks.get(b.dataId) ?? { live: 0, deleted: 0, liveBytes: 0 };
      if (b.deleted) data.deleted++;
      else {
        data.live++;
        data.liveBytes += b.size;
        liveBlocks.add(b.hash);
        const hashes = liveHashesOf.get(b.dataId);
        if (hashes) hashes.push(b.hash);
        else liveHashesOf.set(b.dataId, [b.hash]);
      }
      blocks.set(b.dataId, data);
    }
    const refs = new Map<string, boolean>();
    for await (const r of tableEntries<BlockRef>(db, "block_ref")) {
      refs.set(`${r.hash}/${r.dataId}`, !r.deleted);
    }
    const refcounts = new Map<string, number>();
    for await (const { key, value } of db.list<{ count: number }>({ prefix: ["block", "rc"] })) {
      refcounts.set(key[2] as string, value.count);
    }
    const uploadsGoingOn = new Set<string>();
    const uploadsEnded = new Set<string>();
    for await (const upload of tableEntries<MultipartUpload>(db, "mpu")) {
      if (upload.clearedMs !== undefined) continue;
      const named = upload.deleted.v ? uploadsEnded : uploadsGoingOn;
      for (const dataId of uploadDataIds(upload)) named.add(dataId);
    }
    const report: MetadataReport = {
      path,
      partsChecked: 0,
      missing: [],
      blocksChecked: 0,
      unreferenced: [],
      merkleLeaves: await checkMerkleIndex(db),
      uploading: { dataIds: 0, bytes: 0 },
      endedUploads: { dataIds: 0, bytes: 0 },
      noted: { dataIds: 0, bytes: 0 },
      leaked: { dataIds: 0, bytes: 0, ids: [] },
      journal: [],
      liveBlocks: [...liveBlocks],
    };
    const complete = new Set<string>();
    const uploading = new Set<string>();
    for await (const entry of tableEntries<ObjectEntry>(db, "object")) {
      for (const version of entry.versions) {
        const state = version.state;
        if (state.state === "uploading" && !state.multipart) uploading.add(version.uuid);
        if (state.state !== "complete" || state.data.type !== "parts") continue;
        for (const part of state.data.parts) {
          report.partsChecked++;
          complete.add(part.dataId);
          for (const hash of liveHashesOf.get(part.dataId) ?? []) {
            report.blocksChecked++;
            const ref = refs.get(`${hash}/${part.dataId}`);
            const problem = ref === undefined
              ? "no reference"
              : !ref
              ? "reference deleted"
              : !(refcounts.get(hash)! > 0)
              ? "reference count 0"
              : undefined;
            if (problem) {
              report.unreferenced.push({ key: entry.key, dataId: part.dataId, hash, problem });
            }
          }
          const data = blocks.get(part.dataId);
          // An empty part (an empty object of a versioned key) has no blocks to miss.
          if (part.size === 0 && data === undefined) continue;
          const problem = data === undefined || data.live + data.deleted === 0
            ? "no blocks"
            : data.deleted > 0
            ? "deleted blocks"
            : data.liveBytes !== part.size
            ? `${data.liveBytes} of ${part.size} bytes`
            : undefined;
          if (problem === undefined) continue;
          const { key } = entry;
          const { partNumber, dataId } = part;
          report.missing.push({ key, versionUuid: version.uuid, partNumber, dataId, problem });
        }
      }
    }
    for await (const { key } of db.list({ prefix: ["dj"] })) {
      report.journal.push(key[1] as string);
    }
    const noted = new Set(report.journal);
    for (const [dataId, data] of blocks) {
      if (data.live === 0 || complete.has(dataId) || uploadsGoingOn.has(dataId)) continue;
      const unnamed = uploadsEnded.has(dataId)
        ? report.endedUploads
        : uploading.has(dataId)
        ? report.uploading
        : noted.has(dataId)
        ? report.noted
        : report.leaked;
      unnamed.dataIds++;
      unnamed.bytes += data.liveBytes;
      if (unnamed === report.leaked) report.leaked.ids.push(dataId);
    }
    return report;
  } finally {
    db.close();
  }
}

/**
 * Every leaf digest of the Merkle index against the XOR of the item hashes
 * of the entries under it (partitions whose index is built; none on a node
 * that runs alone).
 */
async function checkMerkleIndex(db: KvStore): Promise<MetadataReport["merkleLeaves"]> {
  const index = new MerkleIndex(db, new KeyedMutex());
  const expected = new Map<string, Uint8Array>();
  const built = new Map<string, boolean>();
  for await (const { key, value } of db.list({ prefix: ["t"] })) {
    const [, table, partition, pk, sk] = key as [string, string, number, string, string];
    const id = `${table}/${partition}`;
    if (!built.has(id)) built.set(id, await index.isBuilt(table, partition));
    if (!built.get(id)) continue;
    const leafId = `${id}/${leafOf(pk, sk)}`;
    const digest = expected.get(leafId) ?? new Uint8Array(DIGEST_BYTES);
    const hash = itemHash(pk, sk, value);
    for (let i = 0; i < DIGEST_BYTES; i++) digest[i] ^= hash[i];
    expected.set(leafId, digest);
  }
  const result = { checked: 0, wrong: [] as string[] };
  for (const [id, isBuilt] of built) {
    if (!isBuilt) continue;
    const [table, partition] = id.split("/");
    const leaves = await index.leafDigests(table, Number(partition));
    for (const [leaf, digest] of leaves.entries()) {
      result.checked++;
      const want = expected.get(`${id}/${leaf}`) ?? new Uint8Array(DIGEST_BYTES);
      if (!equalDigests(digest, want)) result.wrong.push(`${id}/${leaf}`);
    }
  }
  return result;
}

/** One line of a report, for people. */
export function describeReport(report: MetadataReport): string {
  const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  const unnamed = (u: Unnamed) => `${u.dataIds} (${mib(u.bytes)})`;
  const merkle = report.merkleLeaves;
  return `${report.partsChecked} parts checked, ${report.missing.length} missing; ` +
    `${report.blocksChecked} of their blocks checked, ${report.unreferenced.length} unreferenced; ` +
    `${merkle.checked} Merkle leaves checked, ${merkle.wrong.length} wrong; live data ` +
    `named by nothing here: ${unnamed(report.leaked)}, by this node's journal only: ` +
    `${unnamed(report.noted)}, by a PutObject still uploading: ${unnamed(report.uploading)}, ` +
    `by an ended upload not cleared: ${unnamed(report.endedUploads)}`;
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error("usage: metadata_check.ts METADATA_DIR...");
    Deno.exit(2);
  }
  let problems = 0;
  for (const dir of Deno.args) {
    const report = await checkMetadata(dir);
    console.log(`${report.path}: ${describeReport(report)}`);
    for (const part of report.missing) console.log(`  missing: ${JSON.stringify(part)}`);
    for (const block of report.unreferenced) {
      console.log(`  unreferenced: ${JSON.stringify(block)}`);
    }
    for (const leaf of report.merkleLeaves.wrong) console.log(`  wrong Merkle leaf: ${leaf}`);
    if (report.leaked.ids.length > 0) {
      console.log(`  data ids named by nothing here: ${report.leaked.ids.slice(0, 10).join(", ")}`);
    }
    problems += report.missing.length + report.unreferenced.length +
      report.merkleLeaves.wrong.length;
  }
  Deno.exit(problems > 0 ? 1 : 0);
}

/**
 * Copies of object data: whole blocks are shared (a new version entry and a
 * new block reference, no new file); only the partial blocks at the edges of
 * a range are read and written again.
 */
import { md5Hasher, sha256Hex, toHex } from "../util/hash.ts";
import type { ByteRange } from "./object_data.ts";
import type { CurrentObject } from "./objects.ts";
import { nextTimestamp } from "./objects.ts";
import {
  currentData,
  type DataPart,
  type ObjectMeta,
  type ObjectVersion,
  type VersionData,
} from "./object_table.ts";
import type { Store } from "./store.ts";

/** Copies `range` of the source data into `dataId`; returns its size and, when asked, its MD5. */
export async function copyRange(
  store: Store,
  source: CurrentObject,
  range: ByteRange,
  dataId: string,
  withMd5: boolean,
): Promise<{ size: number; md5Hex?: string }> {
  const md5 = withMd5 ? md5Hasher() : undefined;
  let out = 0;
  const addBlock = async (hash: string, size: number) => {
    await store.versions.insert({ dataId, offset: out, hash, size, deleted: false });
    out += size;
  };
  const addBytes = async (bytes: Uint8Array) => {
    const hash = sha256Hex(bytes);
    await store.blocks.putBlock(hash, bytes);
    await addBlock(hash, bytes.byteLength);
  };
  const data = source.data;
  if (data.type === "inline") {
    const bytes = data.bytes.subarray(range.start, range.end);
    md5?.update(bytes);
    if (bytes.byteLength > 0) await addBytes(bytes);
  } else {
    let partStart = 0;
    for (const part of data.parts) {
      const partEnd = partStart + part.size;
      if (partEnd > range.start && partStart < range.end) {
        for await (const block of store.versions.scan(part.dataId)) {
          if (block.deleted) continue;
          const blockStart = partStart + block.offset;
          const blockEnd = blockStart + block.size;
          if (blockEnd <= range.start) continue;
          if (blockStart >= range.end) break;
          const whole = blockStart >= range.start && blockEnd <= range.end;
          if (whole && !md5) {
            await addBlock(block.hash, block.size);
            continue;
          }
          const content = await store.blocks.getBlock(block.hash);
          const slice = content.subarray(
            Math.max(range.start, blockStart) - blockStart,
            Math.min(range.end, blockEnd) - blockStart,
          );
          md5?.update(slice);
          if (whole) await addBlock(block.hash, block.size);
          else await addBytes(slice);
        }
      }
      partStart = partEnd;
    }
  }
  return { size: out, md5Hex: md5 ? toHex(md5.digest()) : undefined };
}

/** Makes a copy of `source` the current version of the destination key. */
export async function copyObject(
  store: Store,
  source: CurrentObject,
  destination: { bucketId: string; key: string },
  headers: [string, string][],
  precondition?: (current: CurrentObject | undefined) => void,
): Promise<{ version: ObjectVersion; meta: ObjectMeta }> {
  const meta: ObjectMeta = { ...source.data.meta, headers };
  let data: VersionData;
  const created: string[] = [];
  try {
    if (source.data.type === "inline") {
      data = { type: "inline", meta, bytes: source.data.bytes };
    } else {
      const parts: DataPart[] = [];
      for (const part of source.data.parts) {
        const dataId = crypto.randomUUID();
        created.push(dataId);
        const single: CurrentObject = {
          version: source.version,
          data: { type: "parts", meta: source.data.meta, parts: [part] },
        };
        await copyRange(store, single, { start: 0, end: part.size }, dataId, false);
        parts.push({ ...part, dataId });
      }
      data = { type: "parts", meta, parts };
    }
    const entry = await store.objects.get(destination.bucketId, destination.key);
    precondition?.(currentData(entry));
    const version: ObjectVersion = {
      uuid: crypto.randomUUID(),
      timestampMs: nextTimestamp(store, entry),
      state: { state: "complete", data },
    };
    await store.objects.insert({ ...destination, versions: [version] });
    return { version, meta };
  } catch (e) {
    for (const id of created) await store.releaseData(id);
    throw e;
  }
}

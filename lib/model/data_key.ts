/**
 * Keys that object data is encrypted with: the client's own (SSE-C, see
 * customer_key.ts) or one remise keeps with the object (SSE-S3, see
 * managed_key.ts).
 *
 * Each block is encrypted on its own with AES-256-CTR, so a block keeps its
 * size (offsets and ranges stay those of the plain data) and a range reads
 * only the blocks it covers. The counter block is derived from the part's
 * data id and the block's offset in it: unique for every block ever written
 * with the key, and known again when reading, so nothing more is stored per
 * block. A stored block is named by the hash of its encrypted bytes, so
 * replication, scrub and resync check blocks without the key.
 */
import { createHash } from "node:crypto";
import type { CustomerEncryption } from "./customer_key.ts";
import type { ManagedEncryption } from "./managed_key.ts";

/** What an object (or an upload in progress) keeps of the key its data is encrypted with. */
export type DataEncryption = CustomerEncryption | ManagedEncryption;

export const DATA_KEY_BYTES = 32;
/** Named for SSE-C, which came first: every stored block's counter depends on it, so it stays. */
const COUNTER_DOMAIN = "remise SSE-C block counter\0";

export abstract class DataKey {
  #cryptoKey?: Promise<CryptoKey>;

  protected constructor(protected readonly raw: Uint8Array<ArrayBuffer>) {}

  /** A new record of this key for an object or upload. */
  abstract newEncryption(): DataEncryption;

  /** The ETag of data encrypted with this key, from the MD5 (hex) of its plain bytes. */
  abstract etagOf(md5Hex: string): string;

  /** Encrypts (or decrypts: CTR is its own inverse) a block stored at `offset` of `dataId`. */
  async transformBlock(data: Uint8Array, dataId: string, offset: number): Promise<Uint8Array> {
    this.#cryptoKey ??= crypto.subtle.importKey("raw", this.raw, "AES-CTR", false, [
      "encrypt",
    ]);
    const counter = new Uint8Array(16);
    // 96 bits from the block's name, then a 32-bit block counter from zero:
    // up to 64 GiB a block before the counter would wrap.
    counter.set(
      createHash("sha256").update(`${COUNTER_DOMAIN}${dataId}\0${offset}`).digest().subarray(0, 12),
    );
    const out = await crypto.subtle.encrypt(
      { name: "AES-CTR", counter, length: 32 },
      await this.#cryptoKey,
      data as Uint8Array<ArrayBuffer>,
    );
    return new Uint8Array(out);
  }
}

/** The ETag of data with this MD5 (hex), encrypted with `key` or not. */
export function etagOfData(md5Hex: string, key: DataKey | undefined): string {
  return key ? key.etagOf(md5Hex) : md5Hex;
}

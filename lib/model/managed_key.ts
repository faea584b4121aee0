/**
 * Server-side encryption with keys remise manages (SSE-S3, `AES256`): each
 * object, or multipart upload, gets a random key of its own, kept in its
 * metadata entry. The block files on the data disk are then unreadable
 * without the metadata store: a data disk thrown away, stolen, or copied
 * alone gives nothing away. Whoever holds both can read the data (encrypt
 * the disks, or use SSE-C, against that).
 */
import { DATA_KEY_BYTES, type DataEncryption, DataKey } from "./data_key.ts";
import { fromBase64, toBase64 } from "../util/hash.ts";

export interface ManagedEncryption {
  algorithm: "AES256";
  /** Base64 key the data is encrypted with. */
  key: string;
}

export function isManaged(encryption: DataEncryption): encryption is ManagedEncryption {
  return "key" in encryption;
}

export class ManagedKey extends DataKey {
  /** A new random key, for data about to be written. */
  static generate(): ManagedKey {
    return new ManagedKey(crypto.getRandomValues(new Uint8Array(DATA_KEY_BYTES)));
  }

  /** The key an object's (or upload's) record keeps. */
  static of(encryption: ManagedEncryption): ManagedKey {
    const raw = fromBase64(encryption.key);
    if (raw.byteLength !== DATA_KEY_BYTES) {
      throw new Error(`A managed encryption key of ${raw.byteLength} bytes is not an AES-256 key`);
    }
    return new ManagedKey(new Uint8Array(raw));
  }

  newEncryption(): ManagedEncryption {
    return { algorithm: "AES256", key: toBase64(this.raw) };
  }

  /** As S3 does for SSE-S3, the MD5 itself: the key is not the client's secret. */
  etagOf(md5Hex: string): string {
    return md5Hex;
  }
}

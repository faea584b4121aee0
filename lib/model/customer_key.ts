/**
 * Server-side encryption with customer keys (SSE-C): the client sends an
 * AES-256 key with every request that writes or reads the object, and remise
 * never stores it. Blocks are encrypted as data_key.ts says.
 *
 * The object keeps a salted HMAC of the key, to tell a wrong key from the
 * right one before decrypting anything, and an ETag keyed with it: the MD5 of
 * the plain data would let anyone who can list the bucket confirm a guess of
 * the content.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { DATA_KEY_BYTES, DataKey } from "./data_key.ts";
import { fromBase64, toBase64 } from "../util/hash.ts";

/** What an object (or an upload in progress) keeps of the key it was encrypted with. */
export interface CustomerEncryption {
  algorithm: "AES256";
  /** Base64 random salt of the check. */
  salt: string;
  /** Base64 HMAC-SHA256 of the salt under the key. */
  check: string;
}

export class CustomerKey extends DataKey {
  private constructor(
    raw: Uint8Array<ArrayBuffer>,
    /** Base64 MD5 of the key, as S3 answers it (x-amz-server-side-encryption-customer-key-MD5). */
    readonly md5Base64: string,
  ) {
    super(raw);
  }

  /** The key from its raw 32 bytes; undefined when it has another length. */
  static fromBytes(raw: Uint8Array): CustomerKey | undefined {
    if (raw.byteLength !== DATA_KEY_BYTES) return undefined;
    const copy = new Uint8Array(raw);
    return new CustomerKey(copy, createHash("md5").update(copy).digest("base64"));
  }

  /** A new record of this key for an object or upload: a fresh salt and its check. */
  newEncryption(): CustomerEncryption {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    return { algorithm: "AES256", salt: toBase64(salt), check: this.#checkOf(salt) };
  }

  /** Whether this is the key `encryption` was made with. */
  matches(encryption: CustomerEncryption): boolean {
    const expected = fromBase64(encryption.check);
    const actual = fromBase64(this.#checkOf(fromBase64(encryption.salt)));
    return expected.byteLength === actual.byteLength && timingSafeEqual(expected, actual);
  }

  /**
   * The ETag of data encrypted with this key, from the MD5 (hex) of its plain
   * bytes: as long, and as stable, without revealing that MD5.
   */
  etagOf(md5Hex: string): string {
    return createHmac("md5", this.raw).update(md5Hex).digest("hex");
  }

  #checkOf(salt: Uint8Array): string {
    return createHmac("sha256", this.raw).update("remise SSE-C key check\0").update(salt).digest(
      "base64",
    );
  }
}

/**
 * Server-side encryption with customer keys (SSE-C): the client sends an
 * AES-256 key with every request that writes or reads the object, and remise
 * never stores it.
 *
 * Each block is encrypted on its own with AES-256-CTR, so a block keeps its
 * size (offsets and ranges stay those of the plain data) and a range reads
 * only the blocks it covers. The counter block is derived from the part's
 * data id and the block's offset in it: unique for every block ever written
 * with the key, and known again when reading, so nothing more is stored per
 * block. A stored block is named by the hash of its encrypted bytes, so
 * replication, scrub and resync check blocks without the key.
 *
 * The object keeps a salted HMAC of the key, to tell a wrong key from the
 * right one before decrypting anything, and an ETag keyed with it: the MD5 of
 * the plain data would let anyone who can list the bucket confirm a guess of
 * the content.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { fromBase64, toBase64 } from "../util/hash.ts";

/** What an object (or an upload in progress) keeps of the key it was encrypted with. */
export interface CustomerEncryption {
  algorithm: "AES256";
  /** Base64 random salt of the check. */
  salt: string;
  /** Base64 HMAC-SHA256 of the salt under the key. */
  check: string;
}

const KEY_BYTES = 32;
const COUNTER_DOMAIN = "remise SSE-C block counter\0";

export class CustomerKey {
  #cryptoKey?: Promise<CryptoKey>;

  private constructor(
    private readonly raw: Uint8Array<ArrayBuffer>,
    /** Base64 MD5 of the key, as S3 answers it (x-amz-server-side-encryption-customer-key-MD5). */
    readonly md5Base64: string,
  ) {}

  /** The key from its raw 32 bytes; undefined when it has another length. */
  static fromBytes(raw: Uint8Array): CustomerKey | undefined {
    if (raw.byteLength !== KEY_BYTES) return undefined;
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

  /** The ETag of data with this MD5 (hex): keyed when it is encrypted with `key`, else the MD5. */
  static etagOfData(md5Hex: string, key: CustomerKey | undefined): string {
    return key ? key.etagOf(md5Hex) : md5Hex;
  }

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

  #checkOf(salt: Uint8Array): string {
    return createHmac("sha256", this.raw).update("remise SSE-C key check\0").update(salt).digest(
      "base64",
    );
  }
}

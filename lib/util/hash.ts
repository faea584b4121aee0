/**
 * Incremental hashers: the digests S3 uses for ETags, payload signatures and
 * the x-amz-checksum-* headers. This is the adapter over node:crypto and the
 * CRC packages (xxHash: xxhash.ts); nothing else imports them.
 */
import { createHash, createHmac } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32c } from "./crc32c.ts";
import { Crc64NvmeJs } from "@aws-sdk/checksums/crc";
import { XxHasher } from "./xxhash.ts";

export interface Hasher {
  update(data: Uint8Array): void;
  /** The digest; call once, after the last update. */
  digest(): Uint8Array;
}

/** S3's checksum algorithms (x-amz-checksum-*), as its API names them. */
export const CHECKSUM_ALGORITHMS = [
  "CRC32",
  "CRC32C",
  "SHA1",
  "SHA256",
  "CRC64NVME",
  "SHA512",
  "MD5",
  "XXHASH64",
  "XXHASH3",
  "XXHASH128",
] as const;
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

/** What the headers (and trailers) of checksums are named: this, then the algorithm. */
export const CHECKSUM_HEADER_PREFIX = "x-amz-checksum-";

/** The algorithm a name stands for, in any case (`sha256` of `x-amz-checksum-sha256`). */
export function checksumAlgorithmNamed(name: string): ChecksumAlgorithm | undefined {
  const upper = name.toUpperCase();
  return CHECKSUM_ALGORITHMS.find((a) => a === upper);
}

class NodeHasher implements Hasher {
  #hash;
  constructor(algorithm: string) {
    this.#hash = createHash(algorithm);
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }
}

class Crc32Hasher implements Hasher {
  #value = 0;
  constructor(readonly castagnoli: boolean) {}
  update(data: Uint8Array): void {
    this.#value = this.castagnoli ? crc32c(data, this.#value) : zlibCrc32(data, this.#value);
  }
  digest(): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.#value >>> 0);
    return out;
  }
}

class Crc64Hasher implements Hasher {
  // The package's digest() is async only in signature; its state is two public
  // 32-bit halves, finalised here synchronously as it does.
  #crc = new Crc64NvmeJs() as unknown as { c1: number; c2: number; update(d: Uint8Array): void };
  update(data: Uint8Array): void {
    this.#crc.update(data);
  }
  digest(): Uint8Array {
    const out = new Uint8Array(8);
    const view = new DataView(out.buffer);
    view.setUint32(0, (this.#crc.c1 ^ 0xffffffff) >>> 0);
    view.setUint32(4, (this.#crc.c2 ^ 0xffffffff) >>> 0);
    return out;
  }
}

export function md5Hasher(): Hasher {
  return new NodeHasher("md5");
}

export function sha256Hasher(): Hasher {
  return new NodeHasher("sha256");
}

export function checksumHasher(algorithm: ChecksumAlgorithm): Hasher {
  switch (algorithm) {
    case "CRC32":
      return new Crc32Hasher(false);
    case "CRC32C":
      return new Crc32Hasher(true);
    case "SHA1":
      return new NodeHasher("sha1");
    case "SHA256":
      return new NodeHasher("sha256");
    case "CRC64NVME":
      return new Crc64Hasher();
    case "SHA512":
      return new NodeHasher("sha512");
    case "MD5":
      return new NodeHasher("md5");
    case "XXHASH64":
    case "XXHASH3":
    case "XXHASH128":
      return new XxHasher(algorithm);
  }
}

/** CRC-32 (ISO-HDLC, as zlib) of `data`: the check of a block read back (~20 GiB/s here). */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data) >>> 0;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * SHA-256 over each text's UTF-8 length (4 bytes, big-endian) then its
 * bytes: the texts are hashed where they are, not encoded first.
 */
export function sha256OfLengthPrefixed(texts: readonly string[]): Uint8Array {
  const hash = createHash("sha256");
  const length = new Uint8Array(4);
  const view = new DataView(length.buffer);
  for (const text of texts) {
    view.setUint32(0, Buffer.byteLength(text, "utf8"));
    hash.update(length);
    hash.update(text, "utf8");
  }
  return new Uint8Array(hash.digest());
}

export function md5Hex(data: Uint8Array | string): string {
  return createHash("md5").update(data).digest("hex");
}

export function hmacSha256(key: Uint8Array | string, data: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

const HMAC_BLOCK_BYTES = 64;
/** Inner and outer padded keys of the HMAC keys in use (signing keys are cached, so few). */
const hmacPads = new WeakMap<Uint8Array, { inner: Uint8Array; outer: Uint8Array }>();

/**
 * HMAC-SHA256 in hex, as two SHA-256 over padded keys computed once per key
 * (RFC 2104): node:crypto's createHmac costs ~5 us a call here, two hashes ~2.
 */
export function hmacSha256Hex(key: Uint8Array, data: string): string {
  let pads = hmacPads.get(key);
  if (pads === undefined) {
    const block = new Uint8Array(HMAC_BLOCK_BYTES);
    block.set(key.byteLength > HMAC_BLOCK_BYTES ? createHash("sha256").update(key).digest() : key);
    pads = { inner: block.map((b) => b ^ 0x36), outer: block.map((b) => b ^ 0x5c) };
    hmacPads.set(key, pads);
  }
  const inner = createHash("sha256").update(pads.inner).update(data).digest();
  return createHash("sha256").update(pads.outer).update(inner).digest("hex");
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function fromBase64(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/** Constant-time comparison of two strings of hex or base64. */
export function timingSafeEqualString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

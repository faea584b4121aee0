/**
 * The CRC of concatenated data from the CRCs of its pieces and their sizes,
 * without the data: what a multipart upload's full-object checksum
 * (`x-amz-checksum-type: FULL_OBJECT`) is made of. For the reflected CRCs S3
 * uses (CRC32, CRC32C, CRC64NVME), crc(A‖B) is crc(A) multiplied by x^(8·|B|)
 * modulo the polynomial, xor crc(B); the initial and final xor cancel out.
 * Polynomials are in GF(2), as bit-reversed integers (x^0 is the top bit).
 */
import type { ChecksumAlgorithm } from "./hash.ts";

interface CrcModel {
  width: bigint;
  /** The polynomial, bit-reversed, without its x^width term. */
  reflectedPoly: bigint;
  /** x^(2^k) modulo the polynomial, for k = 0 .. width - 1 (then they cycle). */
  powers: bigint[];
  /** x^(8·n) modulo the polynomial, by n: parts mostly share a few sizes (bounded, see shiftFor). */
  shifts: Map<number, bigint>;
}

/** Part sizes whose shift is remembered, per algorithm. */
const SHIFTS_CACHED_MAX = 1024;

export type CombinableCrc = Extract<ChecksumAlgorithm, "CRC32" | "CRC32C" | "CRC64NVME">;

const MODELS: Record<CombinableCrc, CrcModel> = {
  CRC32: model(32n, 0xedb88320n),
  CRC32C: model(32n, 0x82f63b78n),
  CRC64NVME: model(64n, 0x9a6c9329ac4bc9b5n),
};

export function isCombinableCrc(algorithm: ChecksumAlgorithm): algorithm is CombinableCrc {
  return algorithm in MODELS;
}

function model(width: bigint, reflectedPoly: bigint): CrcModel {
  const m: CrcModel = { width, reflectedPoly, powers: [], shifts: new Map() };
  let power = 1n << (width - 2n); // x^1
  for (let k = 0n; k < width; k++) {
    m.powers.push(power);
    power = multiplyModP(m, power, power);
  }
  return m;
}

/** a·b modulo the polynomial. */
function multiplyModP(m: CrcModel, a: bigint, b: bigint): bigint {
  let product = 0n;
  for (let bit = 1n << (m.width - 1n); bit > 0n; bit >>= 1n) {
    if (a & bit) product ^= b;
    b = b & 1n ? (b >> 1n) ^ m.reflectedPoly : b >> 1n;
  }
  return product;
}

/** x^(8·bytes) modulo the polynomial. */
function shiftFor(m: CrcModel, bytes: number): bigint {
  const cached = m.shifts.get(bytes);
  if (cached !== undefined) return cached;
  let result = 1n << (m.width - 1n); // x^0
  // 8·bytes = bytes·2^3: the bits of `bytes` select x^(2^(k+3)).
  let k = 3;
  for (let n = BigInt(bytes); n > 0n; n >>= 1n, k++) {
    if (n & 1n) result = multiplyModP(m, m.powers[k % m.powers.length], result);
  }
  if (m.shifts.size >= SHIFTS_CACHED_MAX) m.shifts.clear();
  m.shifts.set(bytes, result);
  return result;
}

function toBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function fromBigInt(value: bigint, width: bigint): Uint8Array {
  const out = new Uint8Array(Number(width / 8n));
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

/**
 * The CRC (big-endian bytes, as S3 encodes it) of the pieces' data put end
 * to end, from each piece's CRC and size, in order.
 */
export function combineCrcs(
  algorithm: CombinableCrc,
  pieces: { crc: Uint8Array; size: number }[],
): Uint8Array {
  const m = MODELS[algorithm];
  let crc = 0n; // the CRC of no data
  for (const piece of pieces) {
    crc = multiplyModP(m, shiftFor(m, piece.size), crc) ^ toBigInt(piece.crc);
  }
  return fromBigInt(crc, m.width);
}

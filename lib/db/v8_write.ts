/**
 * Writes plain data in V8's serialization format, as `node:v8` serialize
 * does: what its deserialize and v8_pick.ts read. A metadata entry costs
 * a fraction of node:v8's native serializer, which is set up for every call
 * (13 us for a 4 KiB inline object entry here).
 *
 * Handles what remise stores: objects with a plain prototype (their own
 * enumerable string keys), arrays without holes, strings, numbers, booleans,
 * null, undefined, Uint8Arrays and Buffers. Anything else (a Map, a Date,
 * another typed array, a hole, a cycle) makes `encodeSerialized` return
 * undefined: the caller then uses node:v8, which writes it.
 */
import { Buffer } from "node:buffer";
import { HOST_BUFFER, HOST_UINT8_ARRAY, TAG } from "./v8_format.ts";

/** The format version node:v8 writes with the V8 of Deno 2.9. */
const FORMAT_VERSION = 15;
/** Nesting deeper than this (or a cycle) is left to node:v8. */
const MAX_DEPTH = 100;

/** Thrown (without a stack) on anything this writer does not handle. */
const UNSUPPORTED = Object.freeze({ unsupported: true });

// V8 writes doubles in the machine's byte order; every platform Deno runs on is little-endian.
const scratchDouble = new Float64Array(1);
const scratchBytes = new Uint8Array(scratchDouble.buffer);

/**
 * `value` serialized after `reserved` zero bytes (for the caller's own
 * header), or undefined when it holds something this writer does not handle.
 */
export function encodeSerialized(value: unknown, reserved = 0): Uint8Array | undefined {
  // Values are written into one scratch buffer, kept for the next (a getter
  // that serializes while another is written gets a buffer of its own).
  const scratch = idleScratch ?? new Uint8Array(SCRATCH_BYTES);
  idleScratch = undefined;
  const writer = new Writer(scratch, reserved);
  try {
    writer.byte(TAG.version);
    writer.varint(FORMAT_VERSION);
    writer.value(value, 0);
    return writer.bytes.slice(0, writer.pos);
  } catch (e) {
    if (e === UNSUPPORTED) return undefined;
    throw e;
  } finally {
    if (writer.bytes.byteLength <= SCRATCH_KEPT_MAX_BYTES) idleScratch = writer.bytes;
  }
}

/** The scratch buffer's first size, and the largest one kept between calls. */
const SCRATCH_BYTES = 16 * 1024;
const SCRATCH_KEPT_MAX_BYTES = 1024 * 1024;
let idleScratch: Uint8Array | undefined;

class Writer {
  pos: number;

  constructor(public bytes: Uint8Array, private readonly start: number) {
    this.pos = start;
    bytes.fill(0, 0, start);
  }

  #ensure(n: number): void {
    if (this.pos + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + n));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
  }

  byte(b: number): void {
    this.#ensure(1);
    this.bytes[this.pos++] = b;
  }

  varint(n: number): void {
    this.#ensure(8);
    while (n >= 0x80) {
      this.bytes[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.bytes[this.pos++] = n;
  }

  value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.#string(v);
      case "number":
        return this.#number(v);
      case "boolean":
        return this.byte(v ? TAG.true : TAG.false);
      case "undefined":
        return this.byte(TAG.undefined);
      case "object":
        break;
      default:
        throw UNSUPPORTED;
    }
    if (v === null) return this.byte(TAG.null);
    if (depth >= MAX_DEPTH) throw UNSUPPORTED;
    const proto = Object.getPrototypeOf(v);
    if (proto === Array.prototype) return this.#array(v as unknown[], depth);
    if (proto === Object.prototype || proto === null) {
      return this.#object(v as Record<string, unknown>, depth);
    }
    if (proto === Uint8Array.prototype) return this.#hostBytes(v as Uint8Array, HOST_UINT8_ARRAY);
    if (proto === Buffer.prototype) return this.#hostBytes(v as Uint8Array, HOST_BUFFER);
    throw UNSUPPORTED;
  }

  #string(s: string): void {
    const n = s.length;
    let oneByte = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0xff) {
        oneByte = false;
        break;
      }
    }
    if (oneByte) {
      this.byte(TAG.oneByteString);
      this.varint(n);
      this.#ensure(n);
      for (let i = 0; i < n; i++) this.bytes[this.pos++] = s.charCodeAt(i);
      return;
    }
    // UTF-16 code units, aligned to two bytes from the payload's start as V8 aligns them.
    const byteLength = n * 2;
    if ((this.pos - this.start + 1 + varintSize(byteLength)) % 2 === 1) this.byte(TAG.padding);
    this.byte(TAG.twoByteString);
    this.varint(byteLength);
    this.#ensure(byteLength);
    for (let i = 0; i < n; i++) {
      const unit = s.charCodeAt(i);
      this.bytes[this.pos++] = unit & 0xff;
      this.bytes[this.pos++] = unit >> 8;
    }
  }

  #number(x: number): void {
    if (Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31 && !Object.is(x, -0)) {
      this.byte(TAG.int32);
      this.varint(((x << 1) ^ (x >> 31)) >>> 0); // zigzag
      return;
    }
    this.byte(TAG.double);
    this.#ensure(8);
    scratchDouble[0] = x;
    this.bytes.set(scratchBytes, this.pos);
    this.pos += 8;
  }

  #array(a: unknown[], depth: number): void {
    const n = a.length;
    // Own properties besides the elements (a match result's `index`) are node:v8's to write.
    if (Object.keys(a).length !== n) throw UNSUPPORTED;
    this.byte(TAG.beginDenseArray);
    this.varint(n);
    for (let i = 0; i < n; i++) {
      if (!(i in a)) throw UNSUPPORTED;
      this.value(a[i], depth + 1);
    }
    // No properties besides the elements, then the length again.
    this.byte(TAG.endDenseArray);
    this.varint(0);
    this.varint(n);
  }

  #object(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o);
    this.byte(TAG.beginObject);
    for (const key of keys) {
      this.#string(key);
      this.value(o[key], depth + 1);
    }
    this.byte(TAG.endObject);
    this.varint(keys.length);
  }

  /** node:v8 writes a typed array as a host object: its type index, byte length and bytes. */
  #hostBytes(view: Uint8Array, type: number): void {
    this.byte(TAG.hostObject);
    this.varint(type);
    this.varint(view.byteLength);
    this.#ensure(view.byteLength);
    this.bytes.set(view, this.pos);
    this.pos += view.byteLength;
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

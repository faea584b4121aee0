/**
 * Reads some properties of a value serialized by V8's ValueSerializer
 * (`node:v8` serialize) and skips the rest without building it: a scan that
 * needs a few fields of each entry then costs a fraction of a full
 * deserialize, and leaves little garbage.
 *
 * Only the plain data remise stores is understood: objects, arrays, strings,
 * numbers, booleans, null, undefined, Uint8Arrays and Buffers. Anything
 * else, or another version of the format, makes `pickSerialized` and
 * `decodeSerialized` return `undefined`: the caller then deserializes the
 * value whole (and applies `pickValue`), which gives the same result.
 *
 * `decodeSerialized` reads a whole value the same way: node:v8's deserialize
 * is written in JavaScript over a native reader and costs ~3x more.
 */
import { Buffer } from "node:buffer";
import type { ValuePick } from "./db.ts";
import { HOST_BUFFER, HOST_UINT8_ARRAY, TAG } from "./v8_format.ts";

/** Applies a pick to a deserialized value. */
export function pickValue(value: unknown, pick: ValuePick): unknown {
  if (Array.isArray(value)) return value.map((v) => pickValue(v, pick));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, sub] of Object.entries(pick)) {
    if (Object.hasOwn(value, name)) {
      out[name] = sub === true ? value[name] : pickValue(value[name], sub);
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The picked value of `bytes[offset..]`, one value serialized by V8, or
 * undefined when it holds something this reader does not handle.
 */
export function pickSerialized(bytes: Uint8Array, offset: number, pick: ValuePick): unknown {
  const reader = new Reader(bytes, offset);
  try {
    if (reader.byte() !== TAG.version) return undefined;
    const version = reader.varint();
    if (version < 13 || version > 15) return undefined;
    return reader.value(compile(pick));
  } catch (e) {
    if (e === UNSUPPORTED) return undefined;
    throw e;
  }
}

/** The whole value of `bytes[offset..]`, in a box; undefined when this reader does not handle it. */
export function decodeSerialized(
  bytes: Uint8Array,
  offset: number,
): { value: unknown } | undefined {
  const reader = new Reader(bytes, offset);
  try {
    if (reader.byte() !== TAG.version) return undefined;
    const version = reader.varint();
    if (version < 13 || version > 15) return undefined;
    return { value: reader.value(null) };
  } catch (e) {
    if (e === UNSUPPORTED) return undefined;
    throw e;
  }
}

/** Thrown (without a stack) on anything the reader does not handle. */
const UNSUPPORTED = Object.freeze({ unsupported: true });

interface CompiledPick {
  names: string[];
  /** The names as bytes, to match property names written as one-byte strings without decoding them. */
  nameBytes: Uint8Array[];
  subs: (CompiledPick | null)[];
}

const compiled = new WeakMap<ValuePick, CompiledPick>();

function compile(pick: ValuePick): CompiledPick {
  let c = compiled.get(pick);
  if (c === undefined) {
    const entries = Object.entries(pick);
    c = {
      names: entries.map(([name]) => name),
      nameBytes: entries.map(([name]) => latin1Bytes(name)),
      subs: entries.map(([, sub]) => (sub === true ? null : compile(sub))),
    };
    compiled.set(pick, c);
  }
  return c;
}

function latin1Bytes(name: string): Uint8Array {
  const bytes = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    // A name beyond Latin-1 is never written as a one-byte string: keep an impossible length.
    if (code > 0xff) return new Uint8Array(0x10000);
    bytes[i] = code;
  }
  return bytes;
}

const utf8 = new TextDecoder();
const utf16 = new TextDecoder("utf-16le");
// V8 writes doubles in the machine's byte order; every platform Deno runs on is little-endian.
const scratchDouble = new Float64Array(1);
const scratchBytes = new Uint8Array(scratchDouble.buffer);

class Reader {
  constructor(private readonly bytes: Uint8Array, private pos: number) {}

  byte(): number {
    if (this.pos >= this.bytes.length) throw UNSUPPORTED;
    return this.bytes[this.pos++];
  }

  /** The next tag, past padding. */
  tag(): number {
    let t = this.byte();
    while (t === TAG.padding) t = this.byte();
    if (t === TAG.verifyObjectCount) {
      this.varint();
      return this.tag();
    }
    return t;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    while (true) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
      if (shift > 49) throw UNSUPPORTED;
    }
  }

  /** Advances past `n` bytes, returning where they start. */
  take(n: number): number {
    const start = this.pos;
    if (start + n > this.bytes.length) throw UNSUPPORTED;
    this.pos += n;
    return start;
  }

  /** The value at the current position: whole when `pick` is null, else only the picked parts. */
  value(pick: CompiledPick | null): unknown {
    const t = this.tag();
    switch (t) {
      case TAG.beginObject:
        return pick === null ? this.object() : this.pickedObject(pick);
      case TAG.beginDenseArray: {
        const length = this.varint();
        const out = new Array(length);
        for (let i = 0; i < length; i++) out[i] = this.value(pick);
        this.endDenseArray();
        return out;
      }
      case TAG.beginSparseArray: {
        const out = new Array(this.varint());
        this.sparseElements(out.length, (i) => out[i] = this.value(pick));
        return out;
      }
      case TAG.hostObject: {
        // node:v8 writes a typed array as its type index, byte length and bytes.
        const type = this.varint();
        const length = this.varint();
        const start = this.take(length);
        // A copy of its own (bytes may be a Buffer, whose slice() would be a view).
        const copy = new Uint8Array(this.bytes.subarray(start, start + length));
        if (type === HOST_UINT8_ARRAY) return copy;
        if (type === HOST_BUFFER) return Buffer.from(copy.buffer, 0, length);
        throw UNSUPPORTED;
      }
      default:
        return this.primitive(t);
    }
  }

  primitive(t: number): unknown {
    switch (t) {
      case TAG.undefined:
        return undefined;
      case TAG.null:
        return null;
      case TAG.true:
        return true;
      case TAG.false:
        return false;
      case TAG.int32: {
        const n = this.varint();
        return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      }
      case TAG.uint32:
        return this.varint();
      case TAG.double: {
        const start = this.take(8);
        scratchBytes.set(this.bytes.subarray(start, start + 8));
        return scratchDouble[0];
      }
      case TAG.oneByteString:
        return this.oneByteString(this.varint());
      case TAG.twoByteString: {
        const n = this.varint();
        if (n % 2 !== 0) throw UNSUPPORTED;
        const start = this.take(n);
        return utf16.decode(this.bytes.subarray(start, start + n));
      }
      case TAG.utf8String: {
        const n = this.varint();
        const start = this.take(n);
        return utf8.decode(this.bytes.subarray(start, start + n));
      }
      default:
        throw UNSUPPORTED;
    }
  }

  oneByteString(n: number): string {
    const start = this.take(n);
    const bytes = this.bytes;
    // Latin-1: each byte is the code point (TextDecoder's "latin1" is windows-1252).
    let s = "";
    for (let i = start; i < start + n; i += 4096) {
      const chunk = bytes.subarray(i, Math.min(i + 4096, start + n));
      s += String.fromCharCode.apply(null, chunk as unknown as number[]);
    }
    return s;
  }

  object(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let count = 0;
    while (true) {
      const t = this.tag();
      if (t === TAG.endObject) break;
      out[String(this.primitive(t))] = this.value(null);
      count++;
    }
    if (this.varint() !== count) throw UNSUPPORTED;
    return out;
  }

  pickedObject(pick: CompiledPick): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let count = 0;
    while (true) {
      const t = this.tag();
      if (t === TAG.endObject) break;
      count++;
      const i = this.pickedName(t, pick);
      if (i < 0) this.skip();
      else out[pick.names[i]] = this.value(pick.subs[i]);
    }
    if (this.varint() !== count) throw UNSUPPORTED;
    return out;
  }

  /** Reads a property name; its index in the pick, or -1. */
  pickedName(t: number, pick: CompiledPick): number {
    if (t === TAG.oneByteString) {
      const n = this.varint();
      const start = this.take(n);
      const bytes = this.bytes;
      for (let i = 0; i < pick.nameBytes.length; i++) {
        const name = pick.nameBytes[i];
        if (name.length !== n) continue;
        let j = 0;
        while (j < n && bytes[start + j] === name[j]) j++;
        if (j === n) return i;
      }
      return -1;
    }
    return pick.names.indexOf(String(this.primitive(t)));
  }

  endDenseArray(): void {
    // Properties other than the elements would follow the elements; remise never stores any.
    if (this.tag() !== TAG.endDenseArray) throw UNSUPPORTED;
    if (this.varint() !== 0) throw UNSUPPORTED;
    this.varint();
  }

  /**
   * Reads the elements of a sparse array (V8 writes so any array that may
   * have holes, such as one made by `new Array(n)`, holes or not).
   */
  sparseElements(length: number, element: (index: number) => void): void {
    let count = 0;
    while (true) {
      const t = this.tag();
      if (t === TAG.endSparseArray) break;
      const index = this.primitive(t);
      if (typeof index !== "number" || !(index >= 0 && index < length && index % 1 === 0)) {
        throw UNSUPPORTED;
      }
      element(index);
      count++;
    }
    if (this.varint() !== count || this.varint() !== length) throw UNSUPPORTED;
  }

  /** Advances past one value without building it. */
  skip(): void {
    const t = this.tag();
    switch (t) {
      case TAG.undefined:
      case TAG.null:
      case TAG.true:
      case TAG.false:
        return;
      case TAG.int32:
      case TAG.uint32:
        this.varint();
        return;
      case TAG.double:
        this.take(8);
        return;
      case TAG.oneByteString:
      case TAG.twoByteString:
      case TAG.utf8String:
        this.take(this.varint());
        return;
      case TAG.beginObject: {
        let count = 0;
        while (this.tag() !== TAG.endObject) {
          this.pos--;
          this.skip();
          this.skip();
          count++;
        }
        if (this.varint() !== count) throw UNSUPPORTED;
        return;
      }
      case TAG.beginDenseArray: {
        const length = this.varint();
        for (let i = 0; i < length; i++) this.skip();
        this.endDenseArray();
        return;
      }
      case TAG.beginSparseArray:
        this.sparseElements(this.varint(), () => this.skip());
        return;
      case TAG.hostObject:
        // node:v8 writes a typed array as its type index, byte length and bytes.
        this.varint();
        this.take(this.varint());
        return;
      default:
        throw UNSUPPORTED;
    }
  }
}

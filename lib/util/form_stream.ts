/**
 * A streaming reader of `multipart/form-data` bodies (RFC 7578) for uploads
 * through an HTML form: the fields before the file are read into memory
 * (bounded), the file is handed out as a stream, never buffered whole.
 * What follows the file is not read.
 */
import { Buffer } from "node:buffer";

/** A body that does not parse as multipart/form-data, or breaks a bound. */
export class FormDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormDataError";
  }
}

export interface FormFile {
  /** The `filename` of the part's Content-Disposition ("" when absent). */
  filename: string;
  /** The part's own Content-Type, if any. */
  contentType?: string;
  /** The file's bytes; errors with a FormDataError if the body ends before the part does. */
  stream: ReadableStream<Uint8Array>;
}

export interface FormUpload {
  /** The fields before the file, by lowercase name (the first of repeated names). */
  fields: Map<string, string>;
  /** The part named `fileField`; undefined if the body has none. */
  file?: FormFile;
}

/** The boundary of a `multipart/form-data` Content-Type, or undefined if it is another type. */
export function formBoundary(contentType: string | null): string | undefined {
  if (!contentType || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

const HEADER_END = Buffer.from("\r\n\r\n");
/** Bytes a part's headers may take. */
const PART_HEADERS_MAX_BYTES = 8 * 1024;

/** A byte reader over a stream that keeps what it has read but not consumed. */
class ByteReader {
  #buffer: Buffer = Buffer.alloc(0);
  #done = false;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  get buffered(): Buffer {
    return this.#buffer;
  }

  /** Reads one more chunk; false at the end of the stream. */
  async more(): Promise<boolean> {
    if (this.#done) return false;
    const { done, value } = await this.reader.read();
    if (done) {
      this.#done = true;
      return false;
    }
    this.#buffer = this.#buffer.length === 0
      ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      : Buffer.concat([this.#buffer, value]);
    return true;
  }

  consume(n: number): Buffer {
    const taken = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return taken;
  }

  /** The bytes up to `pattern` (consumed with it); at most `max` bytes before it. */
  async readUntil(pattern: Buffer, max: number, what: string): Promise<Buffer> {
    let from = 0;
    while (true) {
      const at = this.#buffer.indexOf(pattern, from);
      if (at >= 0) {
        if (at > max) throw new FormDataError(`${what} is over ${max} bytes`);
        const before = Buffer.from(this.consume(at));
        this.consume(pattern.length);
        return before;
      }
      if (this.#buffer.length > max + pattern.length) {
        throw new FormDataError(`${what} is over ${max} bytes`);
      }
      from = Math.max(0, this.#buffer.length - pattern.length + 1);
      if (!(await this.more())) throw new FormDataError(`the body ends inside ${what}`);
    }
  }

  cancel(): Promise<void> {
    return this.reader.cancel().catch(() => {});
  }
}

interface PartHeaders {
  name: string;
  filename?: string;
  contentType?: string;
}

function parsePartHeaders(text: string): PartHeaders {
  let name: string | undefined;
  let filename: string | undefined;
  let contentType: string | undefined;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === "content-type") contentType = value;
    if (header !== "content-disposition") continue;
    for (const m of value.matchAll(/;\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g)) {
      const param = m[1].toLowerCase();
      const v = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
      if (param === "name") name = v;
      else if (param === "filename") filename = v;
    }
  }
  if (name === undefined) throw new FormDataError("a part has no Content-Disposition name");
  return { name, filename, contentType };
}

/**
 * Reads the fields of a form up to the part named `fileField` (any case),
 * whose content is then streamed. The fields together may hold at most
 * `fieldsMaxBytes`.
 */
export async function readFormUpload(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  fileField: string,
  fieldsMaxBytes: number,
): Promise<FormUpload> {
  const reader = new ByteReader(body.getReader());
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const fields = new Map<string, string>();
  let fieldBytes = 0;
  try {
    // The first delimiter has no line break before it (unless a preamble does).
    await reader.readUntil(Buffer.from(`--${boundary}`), fieldsMaxBytes, "the preamble");
    while (true) {
      // After a delimiter: "--" ends the body, a line break starts a part.
      while (reader.buffered.length < 2) {
        if (!(await reader.more())) throw new FormDataError("the body ends after a delimiter");
      }
      const after = reader.consume(2).toString("latin1");
      if (after === "--") break;
      if (after !== "\r\n") throw new FormDataError("a delimiter is not followed by a line break");
      const headers = parsePartHeaders(
        (await reader.readUntil(HEADER_END, PART_HEADERS_MAX_BYTES, "a part's headers"))
          .toString("utf8") + "\r\n",
      );
      if (headers.name.toLowerCase() === fileField) {
        return {
          fields,
          file: {
            filename: headers.filename ?? "",
            contentType: headers.contentType,
            stream: partStream(reader, delimiter),
          },
        };
      }
      const value = await reader.readUntil(
        delimiter,
        fieldsMaxBytes - fieldBytes,
        "the form fields",
      );
      fieldBytes += value.length;
      const name = headers.name.toLowerCase();
      if (!fields.has(name)) fields.set(name, value.toString("utf8"));
    }
    await reader.cancel();
    return { fields };
  } catch (e) {
    await reader.cancel();
    throw e;
  }
}

/** The bytes before the next delimiter, as they arrive; the rest of the body is then dropped. */
function partStream(reader: ByteReader, delimiter: Buffer): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (true) {
        const buffered = reader.buffered;
        const at = buffered.indexOf(delimiter);
        if (at >= 0) {
          if (at > 0) controller.enqueue(reader.consume(at));
          controller.close();
          await reader.cancel();
          return;
        }
        // All but what may be the start of a delimiter split across chunks.
        const safe = buffered.length - (delimiter.length - 1);
        if (safe > 0) {
          controller.enqueue(reader.consume(safe));
          return;
        }
        if (!(await reader.more())) {
          controller.error(new FormDataError("the body ends inside the file"));
          return;
        }
      }
    },
    async cancel() {
      await reader.cancel();
    },
  });
}

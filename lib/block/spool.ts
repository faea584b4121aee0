/**
 * Spooling a request body to a temporary file before storing it.
 *
 * Deno.serve (2.9) burns CPU while a `Transfer-Encoding: chunked` request
 * body waits for a reader that is busy with asynchronous work (writing
 * blocks): a 512 MiB upload from the AWS SDK for JavaScript took ~30 s of
 * CPU instead of ~2 s. Draining such a body at once, with synchronous writes
 * that never leave the event loop idle, avoids it; the data is then read
 * back from the file. Bodies with a Content-Length are not affected.
 */
import { wrapError } from "../util/errors.ts";

/** Read size when streaming the spooled file back. */
const SPOOL_READ_BYTES = 1024 * 1024;

/** The body is larger than the limit given; nothing is kept. */
export class SpoolTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The request body is larger than the limit of ${limit} bytes`);
    this.name = "SpoolTooLargeError";
  }
}

export async function spoolToFile(
  body: ReadableStream<Uint8Array>,
  tmpDir: string,
  maxBytes: number,
  /** Counts each piece before it is written; throws to refuse it (a disk's reserve). */
  claim: (bytes: number) => void = () => {},
): Promise<ReadableStream<Uint8Array>> {
  const path = `${tmpDir}/spool-${crypto.randomUUID()}`;
  const remove = () => Deno.remove(path).catch(() => {});
  try {
    const out = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    try {
      let size = 0;
      for await (const chunk of body) {
        size += chunk.byteLength;
        if (size > maxBytes) throw new SpoolTooLargeError(maxBytes);
        claim(chunk.byteLength);
        let written = 0;
        while (written < chunk.byteLength) written += out.writeSync(chunk.subarray(written));
      }
    } finally {
      out.close();
    }
  } catch (e) {
    await remove();
    throw e;
  }
  let file: Deno.FsFile | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        file ??= await Deno.open(path, { read: true });
        const buf = new Uint8Array(SPOOL_READ_BYTES);
        const n = await file.read(buf);
        if (n === null) {
          file.close();
          await remove();
          controller.close();
        } else {
          controller.enqueue(buf.subarray(0, n));
        }
      } catch (e) {
        file?.close();
        await remove();
        controller.error(wrapError("Cannot read back the spooled request body", e));
      }
    },
    async cancel() {
      file?.close();
      await remove();
    },
  }, { highWaterMark: 0 });
}

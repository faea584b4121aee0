/**
 * A BYOB reader of a stream, when it is a byte stream worth reading that way.
 *
 * `Deno.serve` gives a request body that arrived whole with its headers (a
 * few KiB) as a plain stream, not a byte stream (measured with Deno 2.9: 4
 * KiB bodies after a connection's first request; 8 KiB and larger ones were
 * byte streams). Asking a plain stream for a BYOB reader throws, and the
 * error's stack trace cost ~30 µs of the request thread, a fifth of a small
 * PUT's. Bodies this small gain nothing from BYOB reads, so they are not
 * asked.
 */
export const BYOB_MIN_BYTES = 64 * 1024;

/** undefined when `size` (a body's Content-Length, if known) is small or the stream is not a byte stream. */
export function byobReader(
  stream: ReadableStream<Uint8Array>,
  size: number | undefined,
): ReadableStreamBYOBReader | undefined {
  if (size !== undefined && size < BYOB_MIN_BYTES) return undefined;
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

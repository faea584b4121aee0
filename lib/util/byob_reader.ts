/**
 * A BYOB reader of a stream, when it is a byte stream worth reading that way:
 * a body of known size, 64 KiB or more, read into buffers of that size.
 *
 * `Deno.serve` gives a request body that arrived whole with its headers (a
 * few KiB) as a plain stream, not a byte stream (measured with Deno 2.9: 4
 * KiB bodies after a connection's first request; 8 KiB and larger ones were
 * byte streams), and a DELETE, which has no body, a plain stream too. Asking
 * a plain stream for a BYOB reader throws, and the error's stack trace cost
 * ~30 µs of the request thread, a fifth of a small PUT's. Small bodies gain
 * nothing from BYOB reads, nor do those of unknown size, whose readers take
 * chunks (spooling, or cutting into blocks as they come), so neither is asked.
 */
export const BYOB_MIN_BYTES = 64 * 1024;

/** undefined when `size` (a body's Content-Length) is unknown or small, or the stream is not a byte stream. */
export function byobReader(
  stream: ReadableStream<Uint8Array>,
  size: number | undefined,
): ReadableStreamBYOBReader | undefined {
  if (size === undefined || size < BYOB_MIN_BYTES) return undefined;
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

/**
 * The whole content of a stream, at most `max` bytes: past that the stream
 * is cancelled and `tooLarge()` is thrown, so an oversized body is refused
 * without being held.
 */
export async function readBounded(
  stream: ReadableStream<Uint8Array>,
  max: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return all;
}

/**
 * Reads a stream into `buffer`, which it must fill exactly: a stream that
 * ends early, or carries more (then cancelled), throws `wrongSize(bytes)`
 * with the bytes received so far. One copy from the stream's chunks, and no
 * buffer of the whole beside them (see readBounded).
 */
export async function readInto(
  stream: ReadableStream<Uint8Array>,
  buffer: Uint8Array,
  wrongSize: (received: number) => Error,
): Promise<void> {
  let filled = 0;
  for await (const chunk of stream) {
    if (filled + chunk.byteLength > buffer.byteLength) throw wrongSize(filled + chunk.byteLength);
    buffer.set(chunk, filled);
    filled += chunk.byteLength;
  }
  if (filled !== buffer.byteLength) throw wrongSize(filled);
}

/**
 * The body of a refused request. A client reads the answer only once it has
 * sent its body (Deno.serve sends "100 Continue" at once, so the client does
 * not wait to be refused); closing the connection on it instead makes it
 * fail with a connection error and retry, for minutes, never seeing the S3
 * error. So what is left of the body is read and dropped, within bounds.
 */
import { REFUSED_BODY_DRAIN_MAX_BYTES, REFUSED_BODY_DRAIN_MAX_MS } from "../../util/limits.ts";

/**
 * Reads and drops what is left of a body (the request's, or what
 * authentication made of it); false when it was too large, too slow, or is
 * still being read by someone else (then close the connection).
 */
export async function drainRefusedBody(
  body: ReadableStream<Uint8Array> | null,
  headers: Headers,
): Promise<boolean> {
  if (!body) return true;
  if (body.locked) return false;
  const announced = Number(headers.get("content-length") ?? NaN);
  if (announced > REFUSED_BODY_DRAIN_MAX_BYTES) {
    await body.cancel().catch(() => {});
    return false;
  }
  const reader = body.getReader();
  const timer = setTimeout(() => reader.cancel().catch(() => {}), REFUSED_BODY_DRAIN_MAX_MS);
  try {
    let read = 0;
    while (true) {
      const { done, value } = await reader.read();
      if (done) return true;
      read += value.byteLength;
      if (read > REFUSED_BODY_DRAIN_MAX_BYTES) {
        await reader.cancel();
        return false;
      }
    }
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A request body left unread: the request was refused, or its handler
 * answered without it (CreateMultipartUpload sent a body). A client reads
 * the answer only once it has sent its body (Deno.serve sends "100
 * Continue" at once, so the client does not wait to be refused); closing the
 * connection on it instead makes it fail with a connection error and retry,
 * for minutes, never seeing the answer, and leaving the body unread and the
 * connection open stalls both ends. So what is left of the body is read and
 * dropped, within bounds.
 */
import { UNREAD_BODY_DRAIN_MAX_BYTES, UNREAD_BODY_DRAIN_MAX_MS } from "../../util/limits.ts";

/**
 * Reads and drops what is left of a body (the request's, or what
 * authentication made of it); false when it was too large, too slow, or is
 * still being read by someone else (then close the connection).
 */
export async function drainUnreadBody(
  body: ReadableStream<Uint8Array> | null,
  headers: Headers,
  maxMs = UNREAD_BODY_DRAIN_MAX_MS,
): Promise<boolean> {
  if (!body) return true;
  if (body.locked) return false;
  const length = headers.get("content-length");
  // Without a length or a transfer encoding an HTTP/1.1 request has no body
  // (Deno.serve still gives a DELETE's a stream): there is nothing to read.
  if (length === "0" || (length === null && headers.get("transfer-encoding") === null)) return true;
  const announced = Number(length ?? NaN);
  if (announced > UNREAD_BODY_DRAIN_MAX_BYTES) {
    await body.cancel().catch(() => {});
    return false;
  }
  const reader = body.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, maxMs);
  try {
    let read = 0;
    while (true) {
      const { done, value } = await reader.read();
      // A cancelled read ends as if the body had: the rest was never read.
      if (done) return !timedOut;
      read += value.byteLength;
      if (read > UNREAD_BODY_DRAIN_MAX_BYTES) {
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

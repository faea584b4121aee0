/**
 * A plain (not aws-chunked) request body passed through unchanged while its
 * bytes are counted and, for a signed payload, hashed: when it falls short of
 * Content-Length or its SHA-256 differs from x-amz-content-sha256 the stream
 * errors instead of ending, so a consumer that commits only after `done`
 * never stores what the client did not sign or did not finish sending.
 */
import { sha256Hasher, toHex } from "../../../util/hash.ts";
import { contentSha256Mismatch, incompleteBody } from "./_auth_errors.ts";

export interface BodyExpectation {
  /** Lowercase hex SHA-256 the body must have; undefined for an unsigned payload. */
  sha256Hex?: string;
  /** Content-Length, when the request has one. */
  contentLength?: number;
}

/** Wraps `source`: the same chunks (never copied), checked at the end. */
export function verifiedBody(
  source: ReadableStream<Uint8Array>,
  expected: BodyExpectation,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const hasher = expected.sha256Hex === undefined ? undefined : sha256Hasher();
  const contentLength = expected.contentLength;
  let received = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          let result: ReadableStreamReadResult<Uint8Array>;
          try {
            result = await reader.read();
          } catch (e) {
            throw incompleteBody(undefined, e);
          }
          if (result.done) {
            if (contentLength !== undefined && received !== contentLength) throw incompleteBody();
            if (hasher !== undefined) {
              const computed = toHex(hasher.digest());
              if (computed !== expected.sha256Hex) {
                throw contentSha256Mismatch(expected.sha256Hex!, computed);
              }
            }
            controller.close();
            return;
          }
          const chunk = result.value;
          if (chunk.byteLength === 0) continue;
          received += chunk.byteLength;
          hasher?.update(chunk);
          controller.enqueue(chunk);
          return;
        }
      } catch (e) {
        reader.cancel(e).catch(() => {});
        throw e;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

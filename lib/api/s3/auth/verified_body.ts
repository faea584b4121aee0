/**
 * A plain (not aws-chunked) request body passed through unchanged while its
 * bytes are counted and, for a signed payload, hashed: when it falls short of
 * Content-Length or its SHA-256 differs from x-amz-content-sha256 the stream
 * errors instead of ending, so a consumer that commits only after `done`
 * never stores what the client did not sign or did not finish sending.
 *
 * A byte-stream source (a request body) of 64 KiB or more gives a byte
 * stream, so that a consumer with a BYOB reader has the bytes read straight
 * into its buffers (see byob_reader.ts).
 */
import { type Hasher, sha256Hasher, toHex } from "../../../util/hash.ts";
import { contentSha256Mismatch, incompleteBody } from "./_auth_errors.ts";
import { byobReader } from "../../../util/byob_reader.ts";
import { relayFrom } from "../../../util/stream_relay.ts";
import { IdleReadLimit } from "./idle_read.ts";
import { BODY_IDLE_MAX_MS } from "../../../util/limits.ts";

export interface BodyExpectation {
  /** Lowercase hex SHA-256 the body must have; undefined for an unsigned payload. */
  sha256Hex?: string;
  /** Content-Length, when the request has one. */
  contentLength?: number;
}

/** Chunks a default reader of the byte stream gets at a time. */
const AUTO_CHUNK_BYTES = 64 * 1024;

/**
 * Wraps `source`: the same bytes (never copied), checked at the end. A read
 * that waits on the client longer than `idleMs` fails (see idle_read.ts).
 */
export function verifiedBody(
  source: ReadableStream<Uint8Array>,
  expected: BodyExpectation,
  idleMs = BODY_IDLE_MAX_MS,
): ReadableStream<Uint8Array> {
  const check = new BodyCheck(expected);
  // Not a byte stream, or a small body or one of unknown size: its chunks are passed on.
  const byob = byobReader(source, expected.contentLength);
  if (byob) return verifiedBytes(byob, new IdleReadLimit(byob, idleMs), check);
  const reader = source.getReader();
  return verifiedChunks(reader, new IdleReadLimit(reader, idleMs), check);
}

/** Counts (and hashes) the bytes that pass; `end` throws when they are not what was expected. */
class BodyCheck {
  readonly #hasher: Hasher | undefined;
  #received = 0;

  constructor(private readonly expected: BodyExpectation) {
    this.#hasher = expected.sha256Hex === undefined ? undefined : sha256Hasher();
  }

  add(chunk: Uint8Array): void {
    this.#received += chunk.byteLength;
    this.#hasher?.update(chunk);
  }

  end(): void {
    const { contentLength, sha256Hex } = this.expected;
    if (contentLength !== undefined && this.#received !== contentLength) throw incompleteBody();
    if (this.#hasher !== undefined) {
      const computed = toHex(this.#hasher.digest());
      if (computed !== sha256Hex) throw contentSha256Mismatch(sha256Hex!, computed);
    }
  }
}

function verifiedChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: IdleReadLimit,
  check: BodyCheck,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    relayFrom<ReadableStreamDefaultController<Uint8Array>>(limit, async (controller) => {
      for (;;) {
        const result = await limit.read(() => reader.read());
        if (result.done) {
          limit.end();
          check.end();
          controller.close();
          return;
        }
        const chunk = result.value;
        if (chunk.byteLength === 0) continue;
        check.add(chunk);
        controller.enqueue(chunk);
        return;
      }
    }),
    { highWaterMark: 0 },
  );
}

/**
 * Each read of the consumer's buffer (or of one allocated for a default
 * reader) is passed to the source's BYOB reader, which fills it; the filled
 * view is handed back with `respondWithNewView` (the buffer was transferred).
 */
function verifiedBytes(
  reader: ReadableStreamBYOBReader,
  limit: IdleReadLimit,
  check: BodyCheck,
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: AUTO_CHUNK_BYTES,
    ...relayFrom<ReadableByteStreamController>(limit, async (controller) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const result = await limit.read(() =>
        reader.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))
      );
      if (result.done) {
        limit.end();
        check.end();
        controller.close();
        // The buffer came back empty: it completes the consumer's read as done.
        if (result.value) request.respondWithNewView(result.value);
        return;
      }
      check.add(result.value);
      request.respondWithNewView(result.value);
    }),
  }, { highWaterMark: 0 });
}

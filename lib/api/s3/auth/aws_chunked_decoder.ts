/**
 * Decoding of `aws-chunked` request bodies (x-amz-content-sha256 of
 * `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
 * or `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`):
 *
 *     hex-size[;chunk-signature=SIG]\r\n <data> \r\n ... 0[;chunk-signature=SIG]\r\n
 *     then \r\n, or trailer lines `name:value\r\n` ending with an empty line.
 *
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
 *
 * Chunk data is forwarded as it arrives (views into the read buffers, never
 * copied) while being hashed; a chunk's signature is checked when its data
 * ends. So bytes of a chunk whose signature turns out wrong may reach the
 * consumer, but the stream then errors instead of ending: a consumer that
 * commits only after reading `done` never stores unverified data. The same
 * holds for the trailer signature, the trailing checksum and the decoded
 * length, all checked before the end. Because nothing is held, chunks need no
 * size limit beyond the declared decoded length.
 */
import {
  CHECKSUM_HEADER_PREFIX,
  type ChecksumAlgorithm,
  checksumHasher,
  type Hasher,
  sha256Hasher,
  sha256Hex,
  timingSafeEqualString,
  toBase64,
  toHex,
} from "../../../util/hash.ts";
import { S3Error } from "../s3_error.ts";
import { EMPTY_SHA256, signatureHex, SIGV4_ALGORITHM } from "./canonical_request.ts";
import {
  checksumMismatch,
  incompleteBody,
  malformedTrailer,
  signatureDoesNotMatch,
} from "./_auth_errors.ts";
import { relayFrom } from "../../../util/stream_relay.ts";
import { IdleReadLimit } from "./idle_read.ts";
import { BODY_IDLE_MAX_MS } from "../../../util/limits.ts";

/** Longest chunk-size or trailer line accepted: real ones are under 200 bytes. */
const AWS_CHUNKED_LINE_MAX_BYTES = 4096;
/** Most trailer lines accepted: clients send a checksum and a signature. */
const AWS_CHUNKED_TRAILERS_MAX = 16;

export const STREAMING_SIGNED_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const STREAMING_SIGNED_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

export interface ChunkSigning {
  /** The request's own signature, which the first chunk's signature chains from. */
  seedSignature: string;
  signingKey: Uint8Array;
  /** The request timestamp, ISO 8601 basic (20130524T000000Z). */
  timestamp: string;
  /** The credential scope (20130524/us-east-1/s3/aws4_request). */
  scope: string;
}

export interface AwsChunkedOptions {
  /** Present when chunks (and the trailer) carry signatures. */
  signing?: ChunkSigning;
  /** True when trailer lines follow the final chunk (the `-TRAILER` variants). */
  trailer: boolean;
  /** The checksum named by x-amz-trailer: computed over the decoded data and compared to the trailer's value. */
  trailerChecksum?: ChecksumAlgorithm;
  /** x-amz-decoded-content-length, when given. */
  decodedContentLength?: number;
  /** How long a read may wait on the client (see idle_read.ts). */
  idleMs?: number;
}

export interface VerifiedChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64, as in the x-amz-checksum-* header. */
  value: string;
}

/** String to sign of one chunk: chained from the previous signature. */
export function chunkStringToSign(
  timestamp: string,
  scope: string,
  previousSignature: string,
  chunkSha256Hex: string,
): string {
  return `${SIGV4_ALGORITHM}-PAYLOAD\n${timestamp}\n${scope}\n${previousSignature}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
}

/** String to sign of the trailer; `canonicalTrailers` is `name:value\n` per trailer line, in order. */
export function trailerStringToSign(
  timestamp: string,
  scope: string,
  previousSignature: string,
  canonicalTrailers: string,
): string {
  return `${SIGV4_ALGORITHM}-TRAILER\n${timestamp}\n${scope}\n${previousSignature}\n${
    sha256Hex(canonicalTrailers)
  }`;
}

function malformedBody(detail: string): S3Error {
  return incompleteBody(`The aws-chunked request body is malformed: ${detail}.`);
}

const SIZE_LINE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

const TRAILER_SIGNATURE = "x-amz-trailer-signature";
const CHUNK_SIGNATURE = "chunk-signature=";
const CHUNK_SIZE = /^[0-9a-fA-F]{1,13}$/;

const lineDecoder = new TextDecoder();

/**
 * The aws-chunked state machine, fed with reads of any size: a chunk header
 * may be split across reads, data is handed out as views of the input.
 */
export class AwsChunkedParser {
  #state: number = SIZE_LINE;
  #line = new Uint8Array(AWS_CHUNKED_LINE_MAX_BYTES);
  #lineLength = 0;
  #chunkRemaining = 0;
  #chunkSignature = "";
  #chunkHasher: Hasher | undefined;
  #finalChunk = false;
  #crlfSeen = 0;
  #previousSignature: string;
  #checksumHasher: Hasher | undefined;
  #decodedLength = 0;
  #trailers: [string, string][] = [];
  #trailerSignature: string | undefined;
  #blankBeforeTrailers = false;
  #verifiedChecksum: VerifiedChecksum | undefined;

  constructor(readonly options: AwsChunkedOptions) {
    this.#previousSignature = options.signing?.seedSignature ?? "";
    if (options.trailerChecksum !== undefined) {
      this.#checksumHasher = checksumHasher(options.trailerChecksum);
    }
  }

  /** Decoded bytes so far. */
  get decodedLength(): number {
    return this.#decodedLength;
  }

  /** The trailing checksum, once verified. */
  get verifiedChecksum(): VerifiedChecksum | undefined {
    return this.#verifiedChecksum;
  }

  /** True once the final chunk, trailers included, has been read and verified. */
  get complete(): boolean {
    return this.#state === DONE;
  }

  /**
   * Feeds the next bytes of the body. `emit` gets the decoded data, as views
   * into `input`. Throws an S3Error when the body is malformed or fails
   * verification.
   */
  push(input: Uint8Array, emit: (data: Uint8Array) => void): void {
    const n = input.length;
    let pos = 0;
    while (pos < n) {
      switch (this.#state) {
        case DATA: {
          const take = Math.min(this.#chunkRemaining, n - pos);
          const piece = input.subarray(pos, pos + take);
          pos += take;
          this.#chunkHasher?.update(piece);
          this.#checksumHasher?.update(piece);
          this.#chunkRemaining -= take;
          // The last piece of a chunk goes out only after its signature checked.
          if (this.#chunkRemaining === 0) this.#endChunkData();
          emit(piece);
          break;
        }
        case DATA_END: {
          if (input[pos] !== (this.#crlfSeen === 0 ? 13 : 10)) {
            throw malformedBody("chunk data is not followed by CRLF");
          }
          pos++;
          if (++this.#crlfSeen === 2) {
            this.#state = this.#finalChunk ? DONE : SIZE_LINE;
          }
          break;
        }
        case SIZE_LINE:
        case TRAILERS: {
          const lf = input.indexOf(10, pos);
          const end = lf < 0 ? n : lf;
          this.#appendLine(input, pos, end);
          pos = end;
          if (lf >= 0) {
            pos++;
            const line = this.#takeLine();
            if (this.#state === SIZE_LINE) this.#onSizeLine(line);
            else this.#onTrailerLine(line);
          }
          break;
        }
        default:
          throw malformedBody("data follows the final chunk");
      }
    }
  }

  /** The body has no more bytes: throws unless it ended where it may. */
  end(): void {
    switch (this.#state) {
      case DONE:
        return;
      case TRAILERS:
        // Tolerated: the empty line closing the trailers is missing.
        if (this.#lineLength > 0) this.#onTrailerLine(this.#takeLine());
        if (!this.complete) this.#finishTrailers();
        return;
      case DATA_END:
        // Tolerated: the CRLF after the final zero-size chunk is missing.
        if (this.#finalChunk) {
          this.#state = DONE;
          return;
        }
    }
    throw incompleteBody("The aws-chunked request body ended before its final chunk.");
  }

  #appendLine(input: Uint8Array, from: number, to: number): void {
    const length = to - from;
    if (this.#lineLength + length > AWS_CHUNKED_LINE_MAX_BYTES) {
      throw malformedBody(
        `a chunk header or trailer line is longer than ${AWS_CHUNKED_LINE_MAX_BYTES} bytes`,
      );
    }
    this.#line.set(input.subarray(from, to), this.#lineLength);
    this.#lineLength += length;
  }

  #takeLine(): string {
    let length = this.#lineLength;
    if (length > 0 && this.#line[length - 1] === 13) length--;
    this.#lineLength = 0;
    return lineDecoder.decode(this.#line.subarray(0, length));
  }

  #onSizeLine(line: string): void {
    const semicolon = line.indexOf(";");
    const sizeText = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
    if (!CHUNK_SIZE.test(sizeText)) {
      throw malformedBody(`invalid chunk size line "${line.slice(0, 80)}"`);
    }
    const size = parseInt(sizeText, 16);
    let signature: string | undefined;
    if (semicolon >= 0) {
      for (const extension of line.slice(semicolon + 1).split(";")) {
        const e = extension.trim();
        if (e.startsWith(CHUNK_SIGNATURE)) {
          signature = e.slice(CHUNK_SIGNATURE.length).toLowerCase();
        }
      }
    }
    const signing = this.options.signing;
    if (signing !== undefined && signature === undefined) {
      throw malformedBody("a chunk has no chunk-signature");
    }
    const declared = this.options.decodedContentLength;
    if (declared !== undefined && this.#decodedLength + size > declared) {
      throw new S3Error(
        "InvalidRequest",
        400,
        `The decoded request body is longer than the x-amz-decoded-content-length of ${declared} bytes.`,
      );
    }
    this.#decodedLength += size;
    this.#chunkRemaining = size;
    this.#chunkSignature = signature ?? "";
    if (size > 0) {
      if (signing !== undefined) this.#chunkHasher = sha256Hasher();
      this.#state = DATA;
      return;
    }
    this.#finalChunk = true;
    if (declared !== undefined && this.#decodedLength < declared) {
      throw incompleteBody(
        `The decoded request body has ${this.#decodedLength} bytes, less than the x-amz-decoded-content-length of ${declared}.`,
      );
    }
    this.#endChunkData();
  }

  #endChunkData(): void {
    const signing = this.options.signing;
    if (signing !== undefined) {
      const hash = this.#chunkHasher === undefined
        ? EMPTY_SHA256
        : toHex(this.#chunkHasher.digest());
      this.#chunkHasher = undefined;
      const expected = signatureHex(
        signing.signingKey,
        chunkStringToSign(signing.timestamp, signing.scope, this.#previousSignature, hash),
      );
      if (!timingSafeEqualString(expected, this.#chunkSignature)) {
        throw signatureDoesNotMatch(
          "The chunk signature we calculated does not match the signature you provided.",
        );
      }
      this.#previousSignature = expected;
    }
    if (this.#finalChunk && this.options.trailer) {
      this.#state = TRAILERS;
    } else {
      this.#state = DATA_END;
      this.#crlfSeen = 0;
    }
  }

  #onTrailerLine(line: string): void {
    if (line === "") {
      // Some encoders put the final chunk's CRLF before the trailers.
      if (
        !this.#blankBeforeTrailers && this.#trailers.length === 0 &&
        this.#trailerSignature === undefined
      ) {
        this.#blankBeforeTrailers = true;
        return;
      }
      this.#finishTrailers();
      return;
    }
    if (this.#trailers.length >= AWS_CHUNKED_TRAILERS_MAX) {
      throw malformedTrailer(`more than ${AWS_CHUNKED_TRAILERS_MAX} trailer lines`);
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformedTrailer(`"${line.slice(0, 80)}" is not a name:value line`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === TRAILER_SIGNATURE) this.#trailerSignature = value.toLowerCase();
    else this.#trailers.push([name, value]);
  }

  #finishTrailers(): void {
    const signing = this.options.signing;
    if (signing !== undefined) {
      if (this.#trailerSignature === undefined) {
        throw signatureDoesNotMatch("The trailer has no x-amz-trailer-signature.");
      }
      let canonical = "";
      for (const [name, value] of this.#trailers) canonical += `${name}:${value}\n`;
      const expected = signatureHex(
        signing.signingKey,
        trailerStringToSign(signing.timestamp, signing.scope, this.#previousSignature, canonical),
      );
      if (!timingSafeEqualString(expected, this.#trailerSignature)) {
        throw signatureDoesNotMatch(
          "The trailer signature we calculated does not match the signature you provided.",
        );
      }
      this.#previousSignature = expected;
    }
    const announced = this.options.trailerChecksum;
    for (const [name, value] of this.#trailers) {
      if (!name.startsWith(CHECKSUM_HEADER_PREFIX)) continue;
      const algorithm = name.slice(CHECKSUM_HEADER_PREFIX.length).toUpperCase();
      if (algorithm !== announced || this.#verifiedChecksum !== undefined) {
        throw malformedTrailer(`the trailer ${name} was not announced by x-amz-trailer`);
      }
      if (toBase64(this.#checksumHasher!.digest()) !== value) throw checksumMismatch(algorithm);
      this.#verifiedChecksum = { algorithm: announced, value };
    }
    if (announced !== undefined && this.#verifiedChecksum === undefined) {
      throw malformedTrailer(
        `the x-amz-checksum-${announced.toLowerCase()} trailer announced by x-amz-trailer is missing`,
      );
    }
    this.#state = DONE;
  }
}

export interface DecodedAwsChunkedBody {
  /** The decoded data; errors (S3Error) instead of ending when the body fails verification. */
  body: ReadableStream<Uint8Array>;
  /** The verified trailing checksum, once the body has ended. */
  trailerChecksum: () => VerifiedChecksum | undefined;
}

/** Decodes and verifies an aws-chunked body as it is read. */
export function decodeAwsChunked(
  source: ReadableStream<Uint8Array>,
  options: AwsChunkedOptions,
): DecodedAwsChunkedBody {
  const parser = new AwsChunkedParser(options);
  const reader = source.getReader();
  const limit = new IdleReadLimit(reader, options.idleMs ?? BODY_IDLE_MAX_MS);
  let ended = false;
  const body = new ReadableStream<Uint8Array>(
    relayFrom<ReadableStreamDefaultController<Uint8Array>>(limit, async (controller) => {
      for (;;) {
        const result = await limit.read(
          () => reader.read(),
          "The request body could not be read to its end.",
        );
        if (result.done) {
          limit.end();
          parser.end();
          ended = true;
          controller.close();
          return;
        }
        let emitted = false;
        parser.push(result.value, (data) => {
          controller.enqueue(data);
          emitted = true;
        });
        if (emitted) return;
      }
    }),
    { highWaterMark: 0 },
  );
  return { body, trailerChecksum: () => ended ? parser.verifiedChecksum : undefined };
}

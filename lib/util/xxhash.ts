/**
 * xxHash digests for S3's XXHASH64, XXHASH3 and XXHASH128 checksums, over the
 * pure-JS classes of `@aws-sdk/checksums` (the ones the AWS SDK for
 * JavaScript computes them with). Their `digest()` is async in signature
 * only; remise's hashers finish synchronously (the aws-chunked parser checks
 * a trailer in the middle of a read), so the final steps are called here as
 * the package's `digest()` calls them. `xxhash_test.ts` pins them to the
 * reference vectors, which an upgrade of the package must still pass.
 */
import { Xxh3_128, Xxh3_64, Xxh64 } from "@aws-sdk/checksums/xxh";

interface Updatable {
  update(data: Uint8Array): void;
}

/** XXH3's finishing steps, by input length (the package's digest() dispatch). */
interface Xxh3Internals extends Updatable {
  byteCount: number;
  getBufferedInput(): Uint8Array;
  digestSmall(input: Uint8Array, length: number): Uint8Array;
  digestMedium(input: Uint8Array, length: number): Uint8Array;
  digestLarge(length: number): Uint8Array;
}

/** XXH64's state: digest() leaves the result in its first scratch slot. */
interface Xxh64Internals extends Updatable {
  mem: { toBytes(slot: number): Uint8Array };
  digest(): Promise<Uint8Array>;
}
const XXH64_RESULT_SLOT = 5;

/** Inputs up to this many bytes are kept whole and finished in one step. */
const XXH3_BUFFERED_MAX = 240;
const XXH3_SMALL_MAX = 16;

export class XxHasher {
  readonly #hasher: Updatable;
  readonly #finish: () => Uint8Array;

  constructor(variant: "XXHASH64" | "XXHASH3" | "XXHASH128") {
    if (variant === "XXHASH64") {
      const h = new Xxh64() as unknown as Xxh64Internals;
      this.#hasher = h;
      this.#finish = () => {
        // Runs to completion before it returns: there is no await inside.
        void h.digest();
        return h.mem.toBytes(XXH64_RESULT_SLOT);
      };
      return;
    }
    const h = (variant === "XXHASH3" ? new Xxh3_64() : new Xxh3_128()) as unknown as Xxh3Internals;
    this.#hasher = h;
    this.#finish = () => {
      const length = h.byteCount;
      if (length > XXH3_BUFFERED_MAX) return h.digestLarge(length);
      const input = h.getBufferedInput();
      return length <= XXH3_SMALL_MAX
        ? h.digestSmall(input, length)
        : h.digestMedium(input, length);
    };
  }

  update(data: Uint8Array): void {
    this.#hasher.update(data);
  }

  digest(): Uint8Array {
    return this.#finish();
  }
}

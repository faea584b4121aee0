import assert from "node:assert/strict";
import { checksumHasher, toBase64 } from "../../../util/hash.ts";
import { credentialScope, signingKey } from "./canonical_request.ts";
import {
  type AwsChunkedOptions,
  AwsChunkedParser,
  decodeAwsChunked,
} from "./aws_chunked_decoder.ts";
import {
  assertS3Error,
  assertStreamFails,
  bytesOf,
  EXAMPLE_SECRET,
  EXAMPLE_TIMESTAMP,
  readAll,
  signedChunks,
  streamOf,
} from "./_test_helpers.ts";

// Values marked "AWS docs" come from the examples of
// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html and
// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html:
// PUT of 65536 + 1024 bytes of 'a' with the documentation's example key.

const key = signingKey(EXAMPLE_SECRET, "20130524", "us-east-1");
const scope = credentialScope("20130524", "us-east-1");
const signing = (seedSignature: string) => ({
  seedSignature,
  signingKey: key,
  timestamp: EXAMPLE_TIMESTAMP,
  scope,
});
const chunk1 = new Uint8Array(65536).fill(97);
const chunk2 = new Uint8Array(1024).fill(97);
const all = bytesOf(chunk1, chunk2);

/** AWS docs: the example's seed signature and chunk signatures. */
const SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SIG1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
const SIG2 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
const SIG_FINAL = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";
const exampleBody = bytesOf(
  `10000;chunk-signature=${SIG1}\r\n`,
  chunk1,
  `\r\n400;chunk-signature=${SIG2}\r\n`,
  chunk2,
  `\r\n0;chunk-signature=${SIG_FINAL}\r\n\r\n`,
);

/** AWS docs (trailers page): seed, chunk and trailer signatures, CRC32C trailer. */
const TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const exampleTrailerBody = bytesOf(
  "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n",
  chunk1,
  "\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n",
  chunk2,
  "\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n",
  "x-amz-checksum-crc32c:sOO8/Q==\r\n",
  "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n",
);

function decode(body: Uint8Array, options: AwsChunkedOptions, pieces?: number[]) {
  return decodeAwsChunked(streamOf(body, pieces), options);
}

/** Signs chunks the way clients do, chaining from `seed`. */
function encodeSigned(
  seed: string,
  chunks: Uint8Array[],
  trailers?: [string, string][],
): Uint8Array {
  return signedChunks({ key, timestamp: EXAMPLE_TIMESTAMP, scope }, seed, chunks, trailers);
}

function crc32c(data: Uint8Array): string {
  const h = checksumHasher("CRC32C");
  h.update(data);
  return toBase64(h.digest());
}

Deno.test("AWS docs example: signed chunks decode, whatever the read boundaries", async () => {
  for (const pieces of [undefined, [1], [7, 3, 100], [65536 + 90], [88, 2, 65534, 5]]) {
    const { body } = decode(exampleBody, {
      signing: signing(SEED),
      trailer: false,
      decodedContentLength: 66560,
    }, pieces);
    assert.deepEqual(await readAll(body), all, `pieces ${pieces}`);
  }
});

Deno.test("AWS docs example: signed chunks with a signed CRC32C trailer", async () => {
  assert.equal(crc32c(all), "sOO8/Q==");
  for (const pieces of [undefined, [1], [13, 1000]]) {
    const decoded = decode(
      exampleTrailerBody,
      {
        signing: signing(TRAILER_SEED),
        trailer: true,
        trailerChecksum: "CRC32C",
        decodedContentLength: 66560,
      },
      pieces,
    );
    assert.equal(decoded.trailerChecksum(), undefined);
    assert.deepEqual(await readAll(decoded.body), all);
    assert.deepEqual(decoded.trailerChecksum(), { algorithm: "CRC32C", value: "sOO8/Q==" });
  }
});

Deno.test("a bad chunk signature errors the stream with SignatureDoesNotMatch", async () => {
  const tampered = exampleBody.slice();
  tampered[100] = 98; // one byte of chunk 1 changed
  const { body } = decode(tampered, { signing: signing(SEED), trailer: false });
  await assertStreamFails(body, "SignatureDoesNotMatch");

  const badFinal = bytesOf(exampleBody.subarray(0, exampleBody.length - 6), "0000\r\n\r\n");
  await assertStreamFails(
    decode(badFinal, { signing: signing(SEED), trailer: false }).body,
    "SignatureDoesNotMatch",
  );

  // A chunk that arrives in one read with a wrong signature delivers nothing.
  const wrongSeed = decode(exampleBody, { signing: signing("0".repeat(64)), trailer: false });
  assert.equal(await assertStreamFails(wrongSeed.body, "SignatureDoesNotMatch"), 0);
});

Deno.test("signed chunks: chunk extensions tolerated, missing signature refused", async () => {
  const data = new TextEncoder().encode("hello");
  const good = encodeSigned(SEED, [data]);
  const text = new TextDecoder().decode(good).replace(
    ";chunk-signature=",
    ";ext=1;chunk-signature=",
  );
  assert.deepEqual(
    await readAll(
      decode(new TextEncoder().encode(text), { signing: signing(SEED), trailer: false }).body,
    ),
    data,
  );
  const unsignedChunk = bytesOf("5\r\nhello\r\n0\r\n\r\n");
  await assertStreamFails(
    decode(unsignedChunk, { signing: signing(SEED), trailer: false }).body,
    "IncompleteBody",
  );
});

Deno.test("signed trailer: wrong trailer signature, missing trailer signature", async () => {
  const data = new TextEncoder().encode("some data");
  const good = encodeSigned(SEED, [data], [["x-amz-checksum-crc32c", crc32c(data)]]);
  const options: AwsChunkedOptions = {
    signing: signing(SEED),
    trailer: true,
    trailerChecksum: "CRC32C",
  };
  assert.deepEqual(await readAll(decode(good, options).body), data);

  const text = new TextDecoder().decode(good);
  const badSig = text.replace(
    /x-amz-trailer-signature:[0-9a-f]{4}/,
    "x-amz-trailer-signature:0000",
  );
  await assertStreamFails(
    decode(new TextEncoder().encode(badSig), options).body,
    "SignatureDoesNotMatch",
  );
  const noSig = text.replace(/x-amz-trailer-signature:[0-9a-f]+\r\n/, "");
  await assertStreamFails(
    decode(new TextEncoder().encode(noSig), options).body,
    "SignatureDoesNotMatch",
  );
});

Deno.test("unsigned chunks with a trailer, as the AWS SDK for JS and botocore send them", async () => {
  const data = new TextEncoder().encode("hello, trailer world");
  const checksum = crc32c(data);
  const bodies = [
    // AWS SDK for JavaScript v3 and botocore: "0\r\n" then the trailer and an empty line.
    bytesOf(
      "5\r\nhello\r\n",
      "f\r\n, trailer world\r\n",
      `0\r\nx-amz-checksum-crc32c:${checksum}\r\n\r\n`,
    ),
    // Tolerated: an empty line before the trailers, or none after them.
    bytesOf("14\r\n", data, `\r\n0\r\n\r\nx-amz-checksum-crc32c:${checksum}\r\n\r\n`),
    bytesOf("14\r\n", data, `\r\n0\r\nx-amz-checksum-crc32c:${checksum}\r\n`),
    bytesOf("14\r\n", data, `\r\n0\r\nx-amz-checksum-crc32c: ${checksum}`),
  ];
  for (const body of bodies) {
    for (const pieces of [undefined, [1], [3, 5]]) {
      const decoded = decode(body, {
        trailer: true,
        trailerChecksum: "CRC32C",
        decodedContentLength: 20,
      }, pieces);
      assert.deepEqual(await readAll(decoded.body), data);
      assert.deepEqual(decoded.trailerChecksum(), { algorithm: "CRC32C", value: checksum });
    }
  }
});

Deno.test("every checksum algorithm is verified from the trailer", async () => {
  const data = new TextEncoder().encode("checksum me");
  for (const algorithm of ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"] as const) {
    const h = checksumHasher(algorithm);
    h.update(data);
    const value = toBase64(h.digest());
    const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
    const body = bytesOf("b\r\n", data, `\r\n0\r\n${name}:${value}\r\n\r\n`);
    const decoded = decode(body, { trailer: true, trailerChecksum: algorithm });
    assert.deepEqual(await readAll(decoded.body), data);
    assert.deepEqual(decoded.trailerChecksum(), { algorithm, value });
  }
});

Deno.test("a wrong trailing checksum errors the stream with BadDigest naming the algorithm", async () => {
  const body = bytesOf("5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n");
  const decoded = decode(body, { trailer: true, trailerChecksum: "CRC32C" });
  await assertStreamFails(
    decoded.body,
    "BadDigest",
    "The CRC32C you specified did not match the calculated checksum.",
  );
  assert.equal(decoded.trailerChecksum(), undefined);
});

Deno.test("trailers missing, unannounced or malformed", async () => {
  const missing = bytesOf("5\r\nhello\r\n0\r\n\r\n");
  await assertStreamFails(
    decode(missing, { trailer: true, trailerChecksum: "CRC32" }).body,
    "MalformedTrailerError",
  );
  const other = bytesOf("5\r\nhello\r\n0\r\nx-amz-checksum-sha1:AAAA\r\n\r\n");
  await assertStreamFails(
    decode(other, { trailer: true, trailerChecksum: "CRC32" }).body,
    "MalformedTrailerError",
  );
  await assertStreamFails(decode(other, { trailer: true }).body, "MalformedTrailerError");
  const garbage = bytesOf("5\r\nhello\r\n0\r\nnot a trailer\r\n\r\n");
  await assertStreamFails(decode(garbage, { trailer: true }).body, "MalformedTrailerError");
  // Trailers that are not checksums are ignored.
  const meta = bytesOf("5\r\nhello\r\n0\r\nx-amz-meta-a:1\r\n\r\n");
  assert.equal(
    new TextDecoder().decode(await readAll(decode(meta, { trailer: true }).body)),
    "hello",
  );
});

Deno.test("truncated or malformed bodies error with IncompleteBody", async () => {
  const options = { signing: signing(SEED), trailer: false };
  for (const cut of [0, 5, 50, 90, 1000, 65536 + 80, exampleBody.length - 90]) {
    await assertStreamFails(decode(exampleBody.subarray(0, cut), options).body, "IncompleteBody");
  }
  // Missing only the final CRLF: tolerated.
  assert.deepEqual(
    await readAll(decode(exampleBody.subarray(0, exampleBody.length - 2), options).body),
    all,
  );

  for (
    const bad of [
      "zz\r\nhello\r\n0\r\n\r\n",
      "5\r\nhelloXX0\r\n\r\n",
      "-5\r\nhello\r\n0\r\n\r\n",
      "5\r\nhello\r\n0\r\n\r\nextra",
      "1".repeat(5000),
    ]
  ) {
    await assertStreamFails(decode(bytesOf(bad), { trailer: false }).body, "IncompleteBody");
  }
});

Deno.test("the decoded length must equal x-amz-decoded-content-length", async () => {
  const options = (decodedContentLength: number) => ({
    signing: signing(SEED),
    trailer: false,
    decodedContentLength,
  });
  await assertStreamFails(decode(exampleBody, options(66561)).body, "IncompleteBody");
  await assertStreamFails(
    decode(exampleBody, options(66559)).body,
    "InvalidRequest",
    "x-amz-decoded-content-length",
  );
  // Refused at the chunk header, before the oversized chunk's data goes out.
  assert.equal(
    await assertStreamFails(decode(exampleBody, options(100)).body, "InvalidRequest"),
    0,
  );
});

Deno.test("a source that fails mid-body errors with IncompleteBody", async () => {
  let sent = false;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytesOf("5\r\nhel"));
      } else {
        controller.error(new Error("connection reset"));
      }
    },
  });
  await assertStreamFails(decodeAwsChunked(source, { trailer: false }).body, "IncompleteBody");
});

Deno.test("decoded data are views of the read buffers, not copies", () => {
  const input = bytesOf("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n");
  const parser = new AwsChunkedParser({ trailer: false });
  const out: Uint8Array[] = [];
  parser.push(input, (d) => out.push(d));
  parser.end();
  assert.ok(parser.complete);
  assert.deepEqual(out.map((d) => new TextDecoder().decode(d)), ["hello", "abc"]);
  for (const d of out) assert.equal(d.buffer, input.buffer);
});

Deno.test("parser errors are S3Errors thrown by push and end", async () => {
  const parser = new AwsChunkedParser({ trailer: false });
  parser.push(bytesOf("5\r\nhe"), () => {});
  await assertS3Error(() => parser.end(), "IncompleteBody");
});

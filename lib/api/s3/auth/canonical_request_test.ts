import assert from "node:assert/strict";
import { sha256Hex } from "../../../util/hash.ts";
import {
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  credentialScope,
  EMPTY_SHA256,
  parseRawQuery,
  percentDecode,
  signatureHex,
  signingKey,
  splitRawUrl,
  stringToSign,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "./canonical_request.ts";
import { EXAMPLE_SECRET, EXAMPLE_TIMESTAMP } from "./_test_helpers.ts";

// Values marked "AWS docs" are copied from the examples of
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
// and https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html

const scope = credentialScope("20130524", "us-east-1");
const key = signingKey(EXAMPLE_SECRET, "20130524", "us-east-1");
const host = "examplebucket.s3.amazonaws.com";

function sign(
  method: string,
  rawPath: string,
  rawQuery: string,
  headers: Record<string, string>,
  signed: string[],
  payloadHash: string,
  presigned = false,
): { canonical: string; signature: string } {
  const canonical = canonicalRequest({
    method,
    canonicalUri: canonicalUri(rawPath),
    canonicalQuery: canonicalQueryString(parseRawQuery(rawQuery), presigned),
    canonicalHeaders: canonicalHeaders(new Headers(headers), signed),
    signedHeaders: signed.join(";"),
    payloadHash,
  });
  return {
    canonical,
    signature: signatureHex(key, stringToSign(EXAMPLE_TIMESTAMP, scope, canonical)),
  };
}

Deno.test("AWS docs example: GET object with Range", () => {
  const { canonical, signature } = sign(
    "GET",
    "/test.txt",
    "",
    {
      host,
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": EXAMPLE_TIMESTAMP,
    },
    ["host", "range", "x-amz-content-sha256", "x-amz-date"],
    EMPTY_SHA256,
  );
  // AWS docs: the canonical request, its hash in the string to sign, the signature.
  assert.equal(
    canonical,
    "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n" +
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    stringToSign(EXAMPLE_TIMESTAMP, scope, canonical),
    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
  );
  assert.equal(signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
});

Deno.test("AWS docs example: PUT object with x-amz-storage-class and a $ in the key", () => {
  const payloadHash = sha256Hex("Welcome to Amazon S3.");
  // AWS docs: the payload hash and the signature.
  assert.equal(payloadHash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const { canonical, signature } = sign(
    "PUT",
    "/test%24file.text",
    "",
    {
      host,
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-date": EXAMPLE_TIMESTAMP,
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": payloadHash,
    },
    ["date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"],
    payloadHash,
  );
  assert.ok(canonical.startsWith("PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"));
  assert.equal(signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
});

Deno.test("AWS docs example: GET bucket lifecycle (a parameter without value)", () => {
  const { canonical, signature } = sign(
    "GET",
    "/",
    "lifecycle",
    { host, "x-amz-date": EXAMPLE_TIMESTAMP, "x-amz-content-sha256": EMPTY_SHA256 },
    ["host", "x-amz-content-sha256", "x-amz-date"],
    EMPTY_SHA256,
  );
  assert.ok(canonical.startsWith("GET\n/\nlifecycle=\n"));
  assert.equal(signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
});

Deno.test("AWS docs example: GET bucket (list objects) with max-keys and prefix", () => {
  const { canonical, signature } = sign(
    "GET",
    "/",
    "max-keys=2&prefix=J",
    { host, "x-amz-date": EXAMPLE_TIMESTAMP, "x-amz-content-sha256": EMPTY_SHA256 },
    ["host", "x-amz-content-sha256", "x-amz-date"],
    EMPTY_SHA256,
  );
  assert.ok(canonical.startsWith("GET\n/\nmax-keys=2&prefix=J\n"));
  assert.equal(signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
});

Deno.test("AWS docs example: presigned URL, X-Amz-Signature left out of the canonical query", () => {
  const query = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  const { canonical, signature } = sign(
    "GET",
    "/test.txt",
    query,
    { host },
    ["host"],
    UNSIGNED_PAYLOAD,
    true,
  );
  assert.ok(!canonical.includes("X-Amz-Signature"));
  assert.equal(signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
});

Deno.test("canonicalUri: decoded then re-encoded per segment, dot segments kept", () => {
  assert.equal(canonicalUri(""), "/");
  assert.equal(canonicalUri("/"), "/");
  assert.equal(canonicalUri("/bucket/a/../b/./c"), "/bucket/a/../b/./c");
  assert.equal(canonicalUri("/bucket/%7e%7E~"), "/bucket/~~~");
  assert.equal(canonicalUri("/bucket/a%2Fb"), "/bucket/a%2Fb");
  assert.equal(canonicalUri("/bucket/a%2fb"), "/bucket/a%2Fb");
  assert.equal(canonicalUri("/bucket/a+b%20c"), "/bucket/a%2Bb%20c");
  assert.equal(canonicalUri("/bucket/%c3%a9t%C3%A9"), "/bucket/%C3%A9t%C3%A9");
  assert.equal(canonicalUri("/bucket/é"), "/bucket/%C3%A9");
  assert.equal(canonicalUri("/bucket/a:b=c@d$"), "/bucket/a%3Ab%3Dc%40d%24");
  assert.equal(canonicalUri("/bucket/%41%zz%"), "/bucket/A%25zz%25");
  assert.equal(canonicalUri("/bucket//double"), "/bucket//double");
});

Deno.test("uriEncode and percentDecode", () => {
  assert.equal(uriEncode("a b/c~d*é"), "a%20b%2Fc~d%2A%C3%A9");
  assert.equal(uriEncode("AZaz09-._~"), "AZaz09-._~");
  assert.equal(percentDecode("a%20b+c%2F%E6%97%A5"), "a b+c/日");
  assert.equal(percentDecode("%zz"), "%zz");
});

Deno.test("splitRawUrl keeps the path and query as sent", () => {
  assert.deepEqual(splitRawUrl("http://h:9000/b/../k%7e?x=a+b&y=%2f#frag"), {
    path: "/b/../k%7e",
    query: "x=a+b&y=%2f",
  });
  assert.deepEqual(splitRawUrl("http://h?acl"), { path: "", query: "acl" });
  assert.deepEqual(splitRawUrl("https://h"), { path: "", query: "" });
  assert.deepEqual(splitRawUrl("/b/k?x"), { path: "/b/k", query: "x" });
});

Deno.test("canonicalQueryString: sorted by name then value, re-encoded, empty values kept", () => {
  // A `+` is a space, as the handlers read it (the AWS SDK for Java 1 sends spaces so).
  const q = parseRawQuery("prefix=&delimiter=%2f&list-type=2&b=2&b=1&acl&&a%20b=c+d%2Be&~=%7e");
  assert.equal(
    canonicalQueryString(q, false),
    "a%20b=c%20d%2Be&acl=&b=1&b=2&delimiter=%2F&list-type=2&prefix=&~=~",
  );
  const presigned = parseRawQuery("X-Amz-Signature=abc&X-Amz-Date=1&x=1");
  assert.equal(canonicalQueryString(presigned, true), "X-Amz-Date=1&x=1");
  assert.equal(canonicalQueryString(presigned, false), "X-Amz-Date=1&X-Amz-Signature=abc&x=1");
  assert.equal(canonicalQueryString([], false), "");
});

Deno.test("canonicalHeaders: values trimmed, runs of spaces collapsed, missing ones empty", () => {
  const headers = new Headers({ "X-Amz-Meta-A": "  one   two\tthree  ", host: "h" });
  assert.equal(
    canonicalHeaders(headers, ["host", "x-amz-meta-a", "x-amz-meta-missing"]),
    "host:h\nx-amz-meta-a:one two three\nx-amz-meta-missing:\n",
  );
});

Deno.test("signingKey is cached per secret, date and region", () => {
  const a = signingKey("secret", "20240101", "garage");
  assert.equal(signingKey("secret", "20240101", "garage"), a);
  assert.notDeepEqual(signingKey("secret", "20240102", "garage"), a);
  assert.notDeepEqual(signingKey("secret2", "20240101", "garage"), a);
  // The cache is bounded: many keys later, values are still right.
  for (let i = 0; i < 2000; i++) signingKey(`s${i}`, "20240101", "garage");
  assert.deepEqual(signingKey("secret", "20240101", "garage"), a);
});

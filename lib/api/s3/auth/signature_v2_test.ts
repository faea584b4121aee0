import assert from "node:assert/strict";
import { type AuthContext, authenticateRequest } from "./authenticate.ts";
import {
  canonicalResourceV2,
  resourceVariantsV2,
  signatureV2,
  stringToSignV2,
} from "./signature_v2.ts";
import {
  assertS3Error,
  assertStreamFails,
  EXAMPLE_ACCESS_KEY_ID,
  EXAMPLE_SECRET,
  rawRequest,
  readAll,
} from "./_test_helpers.ts";

// The examples of the Signature Version 2 documentation (bucket johnsmith, virtual-hosted).
const DOC_URL = "http://johnsmith.s3.amazonaws.com/photos/puppy.jpg";
const DOC_DATE = "Tue, 27 Mar 2007 19:36:42 +0000";
const DOC_TIME_MS = Date.parse(DOC_DATE);

/** `hostBucket` null: a path-style request. */
function context(nowMs = DOC_TIME_MS, hostBucket: string | null = "johnsmith"): AuthContext {
  return {
    region: "us-east-1",
    nowMs: () => nowMs,
    getSecret: (id) => Promise.resolve(id === EXAMPLE_ACCESS_KEY_ID ? EXAMPLE_SECRET : undefined),
    hostBucket: hostBucket ?? undefined,
  };
}

/** The documentation's GET with this Authorization header (and Date, URL). */
function docRequest(authorization: string, date = DOC_DATE, url = DOC_URL): Request {
  return rawRequest(url, { headers: { date, authorization } });
}

function docGet(signature: string, date = DOC_DATE): Request {
  return docRequest(`AWS ${EXAMPLE_ACCESS_KEY_ID}:${signature}`, date);
}

Deno.test("Signature V2 header: the documentation's GET and PUT are accepted", async () => {
  const get = await authenticateRequest(docGet("bWq2s1WEIj+Ydj0vQ697zp+IXMU="), context());
  assert.equal(get.kind, "signed");
  assert.equal(get.kind === "signed" && get.accessKeyId, EXAMPLE_ACCESS_KEY_ID);

  const put = await authenticateRequest(
    rawRequest("http://johnsmith.s3.amazonaws.com/photos/puppy.jpg", {
      method: "PUT",
      body: "jpeg bytes",
      headers: {
        "content-type": "image/jpeg",
        date: "Tue, 27 Mar 2007 21:15:45 +0000",
        authorization: `AWS ${EXAMPLE_ACCESS_KEY_ID}:MyyxeRY7whkBe+bq8fHCL/2kKUg=`,
      },
    }),
    context(Date.parse("Tue, 27 Mar 2007 21:15:45 +0000")),
  );
  assert.equal(put.kind, "signed");
  assert.equal(new TextDecoder().decode(await readAll(put.body)), "jpeg bytes");
});

Deno.test("Signature V2 header: wrong signature, unknown key, bad or skewed date are refused", async () => {
  const wrong = await assertS3Error(
    authenticateRequest(docGet("bWq2s1WEIj+Ydj0vQ697zp+IXMV="), context()),
    "SignatureDoesNotMatch",
    403,
  );
  assert.equal(
    wrong.extra?.StringToSign,
    "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
  );
  // Path style: the same request signs the same resource.
  const pathStyle = docRequest(
    `AWS ${EXAMPLE_ACCESS_KEY_ID}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=`,
    DOC_DATE,
    "http://localhost:3900/johnsmith/photos/puppy.jpg",
  );
  assert.equal(
    (await authenticateRequest(pathStyle, context(DOC_TIME_MS, null))).kind,
    "signed",
  );

  await assertS3Error(
    authenticateRequest(docRequest("AWS NOBODY:abc="), context()),
    "InvalidAccessKeyId",
    403,
  );
  await assertS3Error(
    authenticateRequest(docGet("bWq2s1WEIj+Ydj0vQ697zp+IXMU="), context(DOC_TIME_MS + 16 * 60_000)),
    "RequestTimeTooSkewed",
    403,
  );
  await assertS3Error(
    authenticateRequest(docGet("bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "yesterday"), context()),
    "AccessDenied",
    403,
    "valid Date or x-amz-date",
  );
  // A date before 1970 is no date to S3, not a skewed one.
  await assertS3Error(
    authenticateRequest(
      docGet("bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "Tue, 07 Jul 1950 21:53:04 GMT"),
      context(),
    ),
    "AccessDenied",
    403,
    "valid Date or x-amz-date",
  );
  await assertS3Error(
    authenticateRequest(docRequest("AWS nocolon"), context()),
    "InvalidArgument",
    400,
  );
});

Deno.test("Signature V2 presigned URL: the documentation's example, and after it expired", async () => {
  const url = DOC_URL +
    `?AWSAccessKeyId=${EXAMPLE_ACCESS_KEY_ID}&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D` +
    "&Expires=1175139620";
  const before = await authenticateRequest(rawRequest(url), context(1175139620_000 - 60_000));
  assert.equal(before.kind, "signed");
  await assertS3Error(
    authenticateRequest(rawRequest(url), context(1175139620_000 + 1_000)),
    "AccessDenied",
    403,
    "Request has expired",
  );
  await assertS3Error(
    authenticateRequest(rawRequest(url.replace("puppy", "kitten")), context(1175139620_000)),
    "SignatureDoesNotMatch",
    403,
  );
  await assertS3Error(
    authenticateRequest(
      rawRequest(url.replace("&Expires=1175139620", "&Expires=soon")),
      context(1175139620_000),
    ),
    "AccessDenied",
    403,
  );
});

Deno.test("Signature V2 canonical resource: sub-resources sorted, values decoded, others left out", () => {
  assert.equal(
    canonicalResourceV2(
      "/bucket/a%20key",
      "uploadId=abc&partNumber=2&x-id=UploadPart&list-type=2",
      undefined,
    ),
    "/bucket/a%20key?partNumber=2&uploadId=abc",
  );
  assert.equal(
    canonicalResourceV2("/key", "response-content-type=text%2Fplain&acl", "bucket"),
    "/bucket/key?acl&response-content-type=text/plain",
  );
  assert.equal(canonicalResourceV2("/bucket", "uploads", undefined), "/bucket?uploads");
});

Deno.test("Signature V2 resource variants: a bucket's final slash, botocore 1.29's repeated query", () => {
  assert.deepEqual(resourceVariantsV2("/bucket", "", undefined), ["/bucket/"]);
  assert.deepEqual(resourceVariantsV2("/", "", "bucket"), ["/bucket"]);
  assert.deepEqual(resourceVariantsV2("/bucket", "list-type=2&prefix=a%2F", undefined), [
    "/bucket/",
    "/bucket?list-type=2",
  ]);
  assert.deepEqual(resourceVariantsV2("/bucket/key", "uploads", undefined), [
    "/bucket/key?uploads?uploads",
  ]);
  assert.deepEqual(resourceVariantsV2("/bucket/key", "", undefined), []);
  // An empty value: the name alone (rclone), or with its "=" as sent.
  assert.equal(canonicalResourceV2("/bucket/key", "uploads=", undefined), "/bucket/key?uploads");
  assert.ok(
    resourceVariantsV2("/bucket/key", "uploads=", undefined).includes("/bucket/key?uploads="),
  );
});

/** A path-style PUT signed with V2 by the example key, with these headers. */
function signedPut(body: string, headers: Record<string, string>): Request {
  const all = { date: DOC_DATE, "content-type": "application/octet-stream", ...headers };
  const toSign = stringToSignV2(
    "PUT",
    new Map(Object.entries(all)),
    DOC_DATE,
    "/johnsmith/photos/puppy.jpg",
  );
  return rawRequest("http://localhost:3900/johnsmith/photos/puppy.jpg", {
    method: "PUT",
    body,
    headers: {
      ...all,
      authorization: `AWS ${EXAMPLE_ACCESS_KEY_ID}:${signatureV2(EXAMPLE_SECRET, toSign)}`,
    },
  });
}

Deno.test("Signature V2: a presigned URL lacking a parameter, an aws-chunked body and a wrong body hash are refused", async () => {
  await assertS3Error(
    authenticateRequest(
      rawRequest(`${DOC_URL}?AWSAccessKeyId=${EXAMPLE_ACCESS_KEY_ID}&Expires=1175139620`),
      context(1175139620_000),
    ),
    "AccessDenied",
    403,
    "requires the Signature, Expires and AWSAccessKeyId",
  );
  const pathStyle = context(DOC_TIME_MS, null);
  await assertS3Error(
    authenticateRequest(
      signedPut("x", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" }),
      pathStyle,
    ),
    "InvalidRequest",
    400,
  );
  // A declared SHA-256 is checked as the body streams, as with V4.
  const declared = "0".repeat(64);
  const result = await authenticateRequest(
    signedPut("the body", { "x-amz-content-sha256": declared }),
    pathStyle,
  );
  assert.equal(result.kind, "signed");
  await assertStreamFails(result.body, "XAmzContentSHA256Mismatch");
});

Deno.test("Signature V2 presigned URL: checksum parameters are signed, as botocore signs them", async () => {
  const expires = 1175139620;
  // botocore's HmacV1QueryAuth signs the headers, then moves them into the query.
  const toSign = `PUT\n\n\n${expires}\nx-amz-checksum-crc32:AAAAAA==\n` +
    "x-amz-sdk-checksum-algorithm:CRC32\n/johnsmith/photos/puppy.jpg";
  const signature = encodeURIComponent(signatureV2(EXAMPLE_SECRET, toSign));
  const url = "http://localhost:3900/johnsmith/photos/puppy.jpg" +
    `?AWSAccessKeyId=${EXAMPLE_ACCESS_KEY_ID}&Signature=${signature}` +
    `&x-amz-sdk-checksum-algorithm=CRC32&x-amz-checksum-crc32=AAAAAA%3D%3D&Expires=${expires}`;
  const put = (target: string, headers?: Record<string, string>) =>
    authenticateRequest(
      rawRequest(target, { method: "PUT", body: new TextEncoder().encode("jpeg bytes"), headers }),
      context(expires * 1000 - 60_000, null),
    );
  const result = await put(url);
  assert.equal(result.kind, "signed");
  // Signed, not applied: the body is not checked against the query's CRC32 (of no bytes).
  assert.equal(new TextDecoder().decode(await readAll(result.body)), "jpeg bytes");
  await assertS3Error(
    put(url.replace("crc32=AAAAAA", "crc32=AAAAAB")),
    "SignatureDoesNotMatch",
    403,
  );
  await assertS3Error(
    put(url.replace("&x-amz-sdk-checksum-algorithm=CRC32", "")),
    "SignatureDoesNotMatch",
    403,
  );
  // A header of the same name sent with another value is the one signed.
  await assertS3Error(
    put(url, { "x-amz-checksum-crc32": "AAAAAB==" }),
    "SignatureDoesNotMatch",
    403,
  );
});

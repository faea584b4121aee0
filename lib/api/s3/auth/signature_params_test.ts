import assert from "node:assert/strict";
import { parseRawQuery } from "./canonical_request.ts";
import {
  formatAmzDate,
  parseAmzDate,
  parseAuthorizationHeader,
  parsePresignedQuery,
} from "./signature_params.ts";
import { assertS3Error } from "./_test_helpers.ts";

const SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

Deno.test("parseAuthorizationHeader with and without spaces after commas", () => {
  for (
    const header of [
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-date,Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=${SIG.toUpperCase()}`,
      ` AWS4-HMAC-SHA256  Signature=${SIG} , Credential=AKID/20130524/us-east-1/s3/aws4_request ,SignedHeaders=host;range;x-amz-date `,
    ]
  ) {
    assert.deepEqual(parseAuthorizationHeader(header), {
      location: "header",
      accessKeyId: "AKID",
      date: "20130524",
      region: "us-east-1",
      service: "s3",
      signedHeaders: ["host", "range", "x-amz-date"],
      signedHeadersText: "host;range;x-amz-date",
      signature: SIG,
    });
  }
});

Deno.test("parseAuthorizationHeader refuses other schemes and malformed headers", async () => {
  await assertS3Error(
    () => parseAuthorizationHeader("AWS AKID:c2lnbmF0dXJl"),
    "InvalidRequest",
    400,
    "AWS4-HMAC-SHA256",
  );
  await assertS3Error(
    () =>
      parseAuthorizationHeader(
        `AWS4-ECDSA-P256-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request`,
      ),
    "InvalidRequest",
  );
  await assertS3Error(() => parseAuthorizationHeader("Bearer xyz"), "InvalidRequest");
  // Empty, or a word alone: S3's InvalidArgument.
  for (const spaceless of ["", "   ", "garbage"]) {
    await assertS3Error(
      () => parseAuthorizationHeader(spaceless),
      "InvalidArgument",
      400,
      "one and only one ' ' (space)",
    );
  }
  for (
    const bad of [
      "AWS4-HMAC-SHA256",
      `AWS4-HMAC-SHA256 SignedHeaders=host, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3, SignedHeaders=host, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/2013-05-24/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;;a, Signature=${SIG}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders, Signature=${SIG}`,
    ]
  ) {
    await assertS3Error(() => parseAuthorizationHeader(bad), "AuthorizationHeaderMalformed", 400);
  }
});

const presignedQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
  "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

Deno.test("parsePresignedQuery reads the X-Amz-* parameters", () => {
  assert.deepEqual(parsePresignedQuery(parseRawQuery(presignedQuery)), {
    location: "query",
    accessKeyId: "AKIAIOSFODNN7EXAMPLE",
    date: "20130524",
    region: "us-east-1",
    service: "s3",
    signedHeaders: ["host"],
    signedHeadersText: "host",
    signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
    timestamp: "20130524T000000Z",
    expiresSeconds: 86400,
  });
});

Deno.test("parsePresignedQuery refuses bad parameters with AuthorizationQueryParametersError", async () => {
  const variants: [string, string][] = [
    ["X-Amz-Expires=86400", "X-Amz-Expires=604801"],
    ["X-Amz-Expires=86400", "X-Amz-Expires=abc"],
    ["X-Amz-Expires=86400", "X-Amz-Expires=-1"],
    ["X-Amz-Expires=86400&", ""],
    ["X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"],
    ["X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"],
    ["%2Fs3%2F", "%2Fsqs%2F"],
  ];
  for (const [from, to] of variants) {
    await assertS3Error(
      () => parsePresignedQuery(parseRawQuery(presignedQuery.replace(from, to))),
      "AuthorizationQueryParametersError",
      400,
    );
  }
  const week = parsePresignedQuery(parseRawQuery(presignedQuery.replace("86400", "604800")));
  assert.equal(week.expiresSeconds, 604800);
});

Deno.test("parseAmzDate and formatAmzDate", () => {
  assert.equal(parseAmzDate("20130524T000000Z"), Date.UTC(2013, 4, 24));
  assert.equal(formatAmzDate(Date.UTC(2013, 4, 24, 1, 2, 3)), "20130524T010203Z");
  for (const bad of ["20130524", "20130524T000000", "20131324T000000Z", "2013-05-24T00:00:00Z"]) {
    assert.ok(Number.isNaN(parseAmzDate(bad)), bad);
  }
});

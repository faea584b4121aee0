import assert from "node:assert/strict";
import { parseRawQuery } from "./canonical_request.ts";
import { queryHeaders, signedOnlyQueryHeaders, withQueryHeaders } from "./presigned_headers.ts";

const V4 =
  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=GK%2F20261127%2Fr%2Fs3%2Faws4_request" +
  "&X-Amz-Date=20261127T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ab";
const V2 = "AWSAccessKeyId=GK&Expires=1800000000&Signature=c2ln";

Deno.test("a V4 presigned query's x-amz-* parameters are headers, not its signature's nor checksums", () => {
  const found = queryHeaders(parseRawQuery(
    `${V4}&x-amz-meta-Who=a+b%2Bc&X-Amz-Tagging=k%3Dv&x-amz-checksum-crc32=AAAAAA%3D%3D` +
      "&x-amz-sdk-checksum-algorithm=CRC32&content-type=text%2Fplain&x-id=PutObject",
  ));
  assert.deepEqual([...found], [["x-amz-meta-who", "a b+c"], ["x-amz-tagging", "k=v"]]);
});

Deno.test("a V2 presigned query's Content-Type and Content-MD5 are headers too, and replace those sent", () => {
  const params = parseRawQuery(
    `${V2}&content-type=text%2Fplain&Content-MD5=bWQ1&x-amz-acl=private`,
  );
  assert.deepEqual([...queryHeaders(params)], [
    ["content-type", "text/plain"],
    ["content-md5", "bWQ1"],
    ["x-amz-acl", "private"],
  ]);
  const merged = withQueryHeaders(
    new Headers({ "content-type": "application/octet-stream" }),
    params,
  );
  assert.equal(merged?.get("content-type"), "text/plain");
});

Deno.test("a V2 presigned query's checksums are signed only, a V4 one's neither", () => {
  const checksums = "&x-amz-checksum-crc32=AAAAAA%3D%3D&X-Amz-SDK-Checksum-Algorithm=CRC32";
  const v2 = parseRawQuery(`${V2}&x-amz-meta-a=1${checksums}`);
  assert.deepEqual([...queryHeaders(v2)], [["x-amz-meta-a", "1"]]);
  assert.deepEqual([...signedOnlyQueryHeaders(v2)], [
    ["x-amz-checksum-crc32", "AAAAAA=="],
    ["x-amz-sdk-checksum-algorithm", "CRC32"],
  ]);
  assert.equal(withQueryHeaders(new Headers(), v2)?.has("x-amz-checksum-crc32"), false);
  assert.equal(signedOnlyQueryHeaders(parseRawQuery(`${V4}${checksums}`)).size, 0);
  assert.equal(signedOnlyQueryHeaders(parseRawQuery(checksums.slice(1))).size, 0);
});

Deno.test("with V4, a header sent is kept over the query's", () => {
  const params = parseRawQuery(`${V4}&x-amz-meta-a=query&x-amz-meta-b=query`);
  const merged = withQueryHeaders(new Headers({ "x-amz-meta-a": "header" }), params);
  assert.equal(merged?.get("x-amz-meta-a"), "header");
  assert.equal(merged?.get("x-amz-meta-b"), "query");
});

Deno.test("a query that is not presigned holds no headers", () => {
  const params = parseRawQuery("x-amz-meta-a=1&content-type=text%2Fplain");
  assert.equal(queryHeaders(params).size, 0);
  assert.equal(withQueryHeaders(new Headers(), params), undefined);
});

Deno.test("a query value no header can hold is InvalidArgument", () => {
  const params = parseRawQuery(`${V4}&x-amz-meta-a=line%0Abreak`);
  assert.throws(() => withQueryHeaders(new Headers(), params), { code: "InvalidArgument" });
});

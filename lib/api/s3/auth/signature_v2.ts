/**
 * AWS Signature Version 2 (HMAC-SHA1), which older clients still send: the
 * `Authorization: AWS <key>:<signature>` header, and presigned URLs with
 * `AWSAccessKeyId`, `Expires` and `Signature` (Debian 12's boto3 presigns so
 * by default). The payload is not signed; a Content-MD5, when sent, is.
 */
import { createHmac } from "node:crypto";
import { percentDecode } from "./canonical_request.ts";
import { S3Error } from "../s3_error.ts";

/** Query parameters that name a sub-resource: they are part of the signed resource. */
const SUB_RESOURCES = new Set([
  "accelerate",
  "acl",
  "analytics",
  "cors",
  "delete",
  "encryption",
  "inventory",
  "legal-hold",
  "lifecycle",
  "location",
  "logging",
  "metrics",
  "notification",
  "object-lock",
  "partNumber",
  "policy",
  "replication",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "restore",
  "retention",
  "select",
  "select-type",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

export interface SignatureV2 {
  accessKeyId: string;
  /** Base64, as the client sent it (decoded from the URL for a presigned one). */
  signature: string;
  /** Presigned URLs: when the URL stops being valid, in seconds since the epoch. */
  expiresSeconds?: number;
}

/** Whether an Authorization header is a Signature Version 2 one ("AWS key:signature"). */
export function isSignatureV2Header(authorization: string): boolean {
  return authorization.startsWith("AWS ");
}

export function parseSignatureV2Header(authorization: string): SignatureV2 {
  const credentials = authorization.slice(4).trim();
  const colon = credentials.lastIndexOf(":");
  if (colon <= 0 || colon === credentials.length - 1) {
    throw new S3Error(
      "InvalidArgument",
      400,
      "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
      { ArgumentName: "Authorization", ArgumentValue: authorization },
    );
  }
  return { accessKeyId: credentials.slice(0, colon), signature: credentials.slice(colon + 1) };
}

/** A presigned URL's parameters; each must appear once. */
export function parseSignatureV2Query(params: { name: string; value: string }[]): SignatureV2 {
  const get = (name: string) => {
    const found = params.filter((p) => p.name === name);
    if (found.length !== 1 || found[0].value === "") {
      throw new S3Error(
        "AccessDenied",
        403,
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
      );
    }
    return percentDecode(found[0].value);
  };
  const accessKeyId = get("AWSAccessKeyId");
  const signature = get("Signature");
  const expires = get("Expires");
  if (!/^\d{1,12}$/.test(expires)) {
    throw new S3Error("AccessDenied", 403, "Invalid date (should be seconds since epoch)", {
      Expires: expires,
    });
  }
  return { accessKeyId, signature, expiresSeconds: Number(expires) };
}

/**
 * The resource a V2 signature covers: `/bucket/key` as sent (the bucket
 * prefixed when it came in the Host header), then the sub-resources of the
 * query sorted by name, their values decoded (a name alone when empty).
 */
export function canonicalResourceV2(
  rawPath: string,
  rawQuery: string,
  hostBucket: string | undefined,
): string {
  const { path, subResources } = resourceParts(rawPath, rawQuery, hostBucket);
  return withQuery(path, subResources.canonical);
}

/**
 * Other resources clients sign for the same request, tried when the
 * canonical one does not match: a bucket's path with or without its final
 * slash (botocore signs `/bucket/`); an empty sub-resource with its `=` as
 * sent (`?uploads=`); and what botocore 1.29 (Debian 12) signs with
 * `signature_version="s3"`: the path, the first query parameter as sent,
 * then `?` and the sub-resources again (`/bucket?delete?delete`). No variant
 * covers less of the request than the canonical resource does.
 */
export function resourceVariantsV2(
  rawPath: string,
  rawQuery: string,
  hostBucket: string | undefined,
): string[] {
  const { path, subResources } = resourceParts(rawPath, rawQuery, hostBucket);
  const paths = [path];
  if (/^\/[^/]+\/?$/.test(path)) paths.push(path.endsWith("/") ? path.slice(0, -1) : `${path}/`);
  const first = rawQuery === "" ? "" : rawQuery.split("&")[0];
  if (first !== "") paths.push(`${path}?${first}`);
  const variants = new Set<string>();
  for (const p of paths) {
    for (const query of [subResources.canonical, subResources.asSent]) {
      variants.add(withQuery(p, query));
    }
  }
  variants.delete(withQuery(path, subResources.canonical));
  return [...variants];
}

function withQuery(path: string, query: string): string {
  return query === "" ? path : `${path}?${query}`;
}

function resourceParts(
  rawPath: string,
  rawQuery: string,
  hostBucket: string | undefined,
): { path: string; subResources: { canonical: string; asSent: string } } {
  const path = hostBucket === undefined ? rawPath : `/${hostBucket}${rawPath}`;
  const found: { name: string; canonical: string; asSent: string }[] = [];
  for (const part of rawQuery === "" ? [] : rawQuery.split("&")) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    if (!SUB_RESOURCES.has(name)) continue;
    const value = eq < 0 ? "" : percentDecode(part.slice(eq + 1));
    const canonical = value === "" ? name : `${name}=${value}`;
    found.push({ name, canonical, asSent: eq < 0 ? name : `${name}=${value}` });
  }
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    path,
    subResources: {
      canonical: found.map((f) => f.canonical).join("&"),
      asSent: found.map((f) => f.asSent).join("&"),
    },
  };
}

/**
 * The string a V2 signature signs. `dateOrExpires` is the Date header (empty
 * when x-amz-date is sent, which the amz headers carry) or a presigned URL's
 * Expires.
 */
export function stringToSignV2(
  method: string,
  headers: Map<string, string>,
  dateOrExpires: string,
  resource: string,
): string {
  const amzNames = [...headers.keys()].filter((name) => name.startsWith("x-amz-")).sort();
  return [
    method,
    headers.get("content-md5") ?? "",
    headers.get("content-type") ?? "",
    dateOrExpires,
    ...amzNames.map((name) => `${name}:${headers.get(name)!.replace(/\s*\n\s*/g, " ").trim()}`),
    resource,
  ].join("\n");
}

export function signatureV2(secret: string, stringToSign: string): string {
  return createHmac("sha1", secret).update(stringToSign).digest("base64");
}

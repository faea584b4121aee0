/** ListObjects (v1), ListObjectsV2 and ListObjectVersions. */
import {
  type ListedVersion,
  listedVersionsOlderThan,
  listObjects,
  type ListResult,
  listVersions,
} from "../../model/listing.ts";
import { LIST_KEYS_MAX } from "../../util/limits.ts";
import { requireBucket, type S3Request } from "./context.ts";
import { s3Errors } from "./s3_error.ts";
import { xmlEscape, XmlFragment, xmlResponse } from "./xml.ts";
import { isVersionId } from "./versions.ts";
import { uriEncode } from "./auth/canonical_request.ts";

function parseMaxKeys(value: string | null): number {
  if (value === null) return LIST_KEYS_MAX;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw s3Errors.invalidArgument(
      "Provided max-keys not an integer or within integer range",
      "max-keys",
      value,
    );
  }
  return Math.min(n, LIST_KEYS_MAX);
}

/**
 * A key as `encoding-type=url` listings give it: every byte of its UTF-8 but
 * A-Z a-z 0-9 - . _ ~ and "/" percent-encoded (a space is %20, "(" is %28).
 */
export function listingUrlEncode(key: string): string {
  return uriEncode(key).replaceAll("%2F", "/");
}

/** How a listing encodes keys: as they are, or `encoding-type=url`; another type is InvalidArgument. */
export function encoder(query: URLSearchParams): (s: string) => string {
  const type = query.get("encoding-type");
  if (type === null) return (s) => s;
  if (type.toLowerCase() !== "url") {
    throw s3Errors.invalidArgument(
      "Invalid Encoding Method specified in Request",
      "encoding-type",
      type,
    );
  }
  return listingUrlEncode;
}

/** The Contents elements, rendered in one loop: a page holds up to 1,000 of them. */
function contents(
  r: S3Request,
  result: ListResult,
  encode: (s: string) => string,
  owner: boolean,
): XmlFragment {
  const ownerXml = owner ? ownerElement(r) : "";
  let xml = "";
  for (const object of result.objects) {
    xml += `<Contents><Key>${xmlEscape(encode(object.key))}</Key>` +
      objectElements(object.lastModifiedMs, object) + `${ownerXml}</Contents>`;
  }
  return new XmlFragment(xml);
}

function ownerElement(r: S3Request): string {
  const id = xmlEscape(r.accessKeyId);
  return `<Owner><ID>${id}</ID><DisplayName>${id}</DisplayName></Owner>`;
}

function objectElements(
  lastModifiedMs: number,
  object: { etag: string; size: number; checksum?: { algorithm: string; type: string } },
): string {
  return `<LastModified>${new Date(lastModifiedMs).toISOString()}</LastModified>` +
    // The quotes of the ETag, escaped: xmlEscape(quotedEtag(etag)) without its slow path.
    `<ETag>&quot;${xmlEscape(object.etag)}&quot;</ETag>` +
    optionalElement("ChecksumAlgorithm", object.checksum?.algorithm) +
    optionalElement("ChecksumType", object.checksum?.type) +
    `<Size>${object.size}</Size><StorageClass>STANDARD</StorageClass>`;
}

/** The Version and DeleteMarker elements, in listing order. */
function versionElements(
  r: S3Request,
  versions: ListedVersion[],
  encode: (s: string) => string,
): XmlFragment {
  const ownerXml = ownerElement(r);
  let xml = "";
  for (const v of versions) {
    const element = v.object ? "Version" : "DeleteMarker";
    xml += `<${element}><Key>${xmlEscape(encode(v.key))}</Key>` +
      `<VersionId>${xmlEscape(v.versionId)}</VersionId><IsLatest>${v.isLatest}</IsLatest>` +
      (v.object
        ? objectElements(v.lastModifiedMs, v.object)
        : `<LastModified>${new Date(v.lastModifiedMs).toISOString()}</LastModified>`) +
      `${ownerXml}</${element}>`;
  }
  return new XmlFragment(xml);
}

function optionalElement(name: string, text: string | undefined): string {
  return text === undefined ? "" : `<${name}>${xmlEscape(text)}</${name}>`;
}

function encodeToken(last: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(last))).replaceAll("+", "-")
    .replaceAll("/", "_");
}

function decodeToken(token: string): string {
  try {
    const binary = atob(token.replaceAll("-", "+").replaceAll("_", "/"));
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
  } catch {
    throw s3Errors.invalidArgument(
      "The continuation token provided is incorrect",
      "continuation-token",
      token,
    );
  }
}

async function list(r: S3Request, after: string | undefined, resume: boolean) {
  const bucket = await requireBucket(r, "read");
  const q = r.target.query;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const maxKeys = parseMaxKeys(q.get("max-keys"));
  const encode = encoder(q);
  const result = maxKeys === 0
    ? { objects: [], commonPrefixes: [], truncated: false }
    : await listObjects(r.ctx.store, bucket.id, { prefix, delimiter, after, maxKeys, resume });
  return { bucket, prefix, delimiter, maxKeys, encode, result };
}

export async function handleListObjectsV2(r: S3Request): Promise<Response> {
  const q = r.target.query;
  const token = q.get("continuation-token");
  const startAfter = q.get("start-after") ?? undefined;
  let after = startAfter;
  if (token !== null) after = decodeToken(token);
  const { bucket, prefix, delimiter, maxKeys, encode, result } = await list(
    r,
    after,
    token !== null,
  );
  const fetchOwner = q.get("fetch-owner") === "true";
  return xmlResponse("ListBucketResult", {
    Name: bucket.name.v,
    Prefix: encode(prefix),
    Delimiter: delimiter === undefined ? undefined : encode(delimiter),
    MaxKeys: maxKeys,
    KeyCount: result.objects.length + result.commonPrefixes.length,
    IsTruncated: result.truncated,
    ContinuationToken: token ?? undefined,
    NextContinuationToken: result.truncated && result.last !== undefined
      ? encodeToken(result.last)
      : undefined,
    StartAfter: startAfter === undefined ? undefined : encode(startAfter),
    EncodingType: q.get("encoding-type") === null ? undefined : "url",
    Contents: contents(r, result, encode, fetchOwner),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

export async function handleListObjects(r: S3Request): Promise<Response> {
  const q = r.target.query;
  const marker = q.get("marker") ?? undefined;
  const { bucket, prefix, delimiter, maxKeys, encode, result } = await list(
    r,
    marker || undefined,
    true,
  );
  return xmlResponse("ListBucketResult", {
    Name: bucket.name.v,
    // ListObjects (v1) encodes keys, markers and the delimiter but not the
    // prefix, as S3 does: botocore, which asks for url encoding by itself,
    // decodes the others only.
    Prefix: prefix,
    Marker: encode(marker ?? ""),
    // As S3, only with a delimiter: without one, clients go on from the last key listed.
    NextMarker: result.truncated && result.last !== undefined && delimiter !== undefined
      ? encode(result.last)
      : undefined,
    Delimiter: delimiter === undefined ? undefined : encode(delimiter),
    MaxKeys: maxKeys,
    IsTruncated: result.truncated,
    EncodingType: q.get("encoding-type") === null ? undefined : "url",
    Contents: contents(r, result, encode, true),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

/**
 * ListObjectVersions: every version of every key, each key's newest first.
 * A page continues after `key-marker`, or within it after the version
 * `version-id-marker` names.
 */
export async function handleListObjectVersions(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "read");
  const q = r.target.query;
  const keyMarker = q.get("key-marker") || undefined;
  const versionIdMarker = q.get("version-id-marker") || undefined;
  if (versionIdMarker !== undefined) {
    if (keyMarker === undefined) {
      throw s3Errors.invalidArgument(
        "A version-id marker cannot be specified without a key marker.",
        "version-id-marker",
        versionIdMarker,
      );
    }
    if (!isVersionId(versionIdMarker)) {
      throw s3Errors.invalidArgument(
        "Invalid version id specified",
        "version-id-marker",
        versionIdMarker,
      );
    }
  }
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const maxKeys = parseMaxKeys(q.get("max-keys"));
  const encode = encoder(q);
  const result: ListResult<ListedVersion> = { objects: [], commonPrefixes: [], truncated: false };
  if (maxKeys > 0) {
    if (versionIdMarker !== undefined && keyMarker!.startsWith(prefix)) {
      // The marker key's versions older than the marker come first.
      const entry = await r.ctx.store.objects.get(bucket.id, keyMarker!);
      const rest = entry ? listedVersionsOlderThan(entry, versionIdMarker) : [];
      result.objects = rest.slice(0, maxKeys);
      result.truncated = rest.length > maxKeys;
      result.last = keyMarker;
    }
    if (!result.truncated) {
      const more = await listVersions(r.ctx.store, bucket.id, {
        prefix,
        delimiter,
        after: keyMarker,
        resume: true,
        maxKeys: maxKeys - result.objects.length,
      });
      result.objects.push(...more.objects);
      result.commonPrefixes = more.commonPrefixes;
      result.truncated = more.truncated;
      if (more.last !== undefined) result.last = more.last;
    }
  }
  const next = result.truncated ? result.last : undefined;
  // A page that ends with a key (not a common prefix) continues after its last version.
  const nextVersionId = next === undefined || result.commonPrefixes.at(-1) === next
    ? undefined
    : result.objects.at(-1)?.versionId;
  return xmlResponse("ListVersionsResult", {
    Name: bucket.name.v,
    Prefix: encode(prefix),
    KeyMarker: encode(keyMarker ?? ""),
    VersionIdMarker: versionIdMarker ?? "",
    NextKeyMarker: next === undefined ? undefined : encode(next),
    NextVersionIdMarker: nextVersionId,
    MaxKeys: maxKeys,
    Delimiter: delimiter === undefined ? undefined : encode(delimiter),
    IsTruncated: result.truncated,
    EncodingType: q.get("encoding-type") === null ? undefined : "url",
    Version: versionElements(r, result.objects, encode),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

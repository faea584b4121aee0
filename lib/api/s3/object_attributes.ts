/**
 * GetObjectAttributes: what the `x-amz-object-attributes` header asks for
 * among ETag, Checksum, ObjectParts (of a multipart object, paged with
 * `x-amz-max-parts` and `x-amz-part-number-marker`), StorageClass and
 * ObjectSize, without the data.
 */
import { requireObject, type S3Request } from "./context.ts";
import { readVersionHeader } from "./versions.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { httpDate } from "./object_headers.ts";
import { s3Errors } from "./s3_error.ts";
import { type XmlNode, xmlResponse } from "./xml.ts";
import { keyToReadFrom } from "./encryption.ts";

const ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];
const PARTS_MAX = 1000;

function nonNegativeInteger(headers: Headers, name: string, fallback: number): number {
  const raw = headers.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,9}$/.test(raw.trim())) {
    throw s3Errors.invalidArgument(`${name} must be a non-negative integer`, name, raw);
  }
  return Number(raw);
}

export async function handleGetObjectAttributes(r: S3Request): Promise<Response> {
  const headers = r.req.headers;
  const asked = (headers.get("x-amz-object-attributes") ?? "").split(",").map((a) => a.trim())
    .filter((a) => a !== "");
  if (asked.length === 0) {
    throw s3Errors.invalidArgument(
      "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
      "x-amz-object-attributes",
    );
  }
  const unknown = asked.find((a) => !ATTRIBUTES.includes(a));
  if (unknown !== undefined) {
    throw s3Errors.invalidArgument(
      `Invalid attribute name specified: ${unknown}`,
      "x-amz-object-attributes",
      unknown,
    );
  }
  const maxParts = Math.min(nonNegativeInteger(headers, "x-amz-max-parts", PARTS_MAX), PARTS_MAX);
  const marker = nonNegativeInteger(headers, "x-amz-part-number-marker", 0);
  const { bucket, current } = await requireObject(r, "read");
  const meta = current.data.meta;
  // An object encrypted with a client's key tells its attributes only with that key.
  keyToReadFrom(meta, headers);
  const checksum = meta.checksum;
  const body: XmlNode = {};
  if (asked.includes("ETag")) body.ETag = meta.etag;
  if (asked.includes("Checksum") && checksum) {
    body.Checksum = {
      [`Checksum${checksum.algorithm}`]: checksum.value,
      ChecksumType: checksum.type,
    };
  }
  const parts = current.data.type === "parts" && meta.etag.includes("-") ? current.data.parts : [];
  if (asked.includes("ObjectParts") && parts.length > 0) {
    const after = parts.filter((p) => p.partNumber > marker);
    const page = after.slice(0, maxParts);
    const truncated = page.length < after.length;
    body.ObjectParts = {
      PartsCount: parts.length,
      PartNumberMarker: marker,
      NextPartNumberMarker: page.length > 0 ? page[page.length - 1].partNumber : marker,
      MaxParts: maxParts,
      IsTruncated: truncated,
      // As in S3's general purpose buckets: the parts are listed only with their checksums.
      Part: checksum
        ? page.map((p) => ({
          PartNumber: p.partNumber,
          Size: p.size,
          ...(p.checksum ? { [`Checksum${checksum.algorithm}`]: p.checksum } : {}),
        }))
        : undefined,
    };
  }
  if (asked.includes("StorageClass")) body.StorageClass = "STANDARD";
  if (asked.includes("ObjectSize")) body.ObjectSize = meta.size;
  return xmlResponse("GetObjectAttributesResponse", body, {
    headers: {
      "last-modified": httpDate(current.version.timestampMs),
      ...readVersionHeader(current.version, versioningOf(bucket)),
    },
  });
}

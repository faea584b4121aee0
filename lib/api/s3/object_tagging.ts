/**
 * Object tags: `x-amz-tagging` on PutObject, CreateMultipartUpload and
 * CopyObject (with `x-amz-tagging-directive: REPLACE`), and
 * GetObjectTagging / PutObjectTagging / DeleteObjectTagging on the current
 * object (and Put/Get/DeleteBucketTagging on a bucket). Tags live in the version's metadata as a register of their own
 * (see ObjectMeta.tags), so changing them leaves the data, ETag and
 * Last-Modified alone.
 */
import { readRequestXml } from "./request_xml.ts";
import { versionIdOf } from "../../model/object_table.ts";
import { setMetaRegister } from "../../model/objects.ts";
import { deleteBucketSetting, requireBucket, requireObject, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, readXmlBody, xmlResponse } from "./xml.ts";
import { compareUtf8 } from "../../util/utf8_order.ts";

const TAG_KEY_MAX_CHARS = 128;
const TAG_VALUE_MAX_CHARS = 256;

const invalidTag = (message: string) => new S3Error("InvalidTag", 400, message);

/** How many tags a set may hold, and S3's answer to one more. */
interface TagLimit {
  max: number;
  tooMany: () => S3Error;
}

/** An object holds 10 tags; S3 answers an eleventh with BadRequest, not InvalidTag. */
const OBJECT_TAGS: TagLimit = {
  max: 10,
  tooMany: () => new S3Error("BadRequest", 400, "Object tags cannot be greater than 10"),
};

/** A bucket holds 50. */
const BUCKET_TAGS: TagLimit = {
  max: 50,
  tooMany: () => invalidTag("Bucket tag count cannot be greater than 50"),
};

/** Checks a tag set as S3 does: within `limit`, unique keys of 1-128 characters, values of 0-256. */
function checkTags(tags: [string, string][], limit = OBJECT_TAGS): [string, string][] {
  if (tags.length > limit.max) throw limit.tooMany();
  const seen = new Set<string>();
  for (const [key, value] of tags) {
    if (key.length === 0 || key.length > TAG_KEY_MAX_CHARS) {
      throw invalidTag(`The TagKey you have provided is invalid: "${key}"`);
    }
    if (value.length > TAG_VALUE_MAX_CHARS) {
      throw invalidTag(`The TagValue you have provided is invalid: "${value}"`);
    }
    if (key.toLowerCase().startsWith("aws:")) {
      throw invalidTag(`Your TagKey cannot be prefixed with aws: ("${key}")`);
    }
    if (seen.has(key)) throw invalidTag(`Cannot provide multiple Tags with the same key: "${key}"`);
    seen.add(key);
  }
  return tags;
}

/** The tags of an `x-amz-tagging` header (URL query encoding), or undefined without one. */
export function taggingHeader(headers: Headers): [string, string][] | undefined {
  const value = headers.get("x-amz-tagging");
  if (value === null) return undefined;
  return checkTags([...new URLSearchParams(value)]);
}

/** The tags of a Tagging document (a PutObjectTagging or PutBucketTagging body). */
export function tagsFromXml(
  doc: Record<string, unknown>,
  limit = OBJECT_TAGS,
): [string, string][] {
  const tagging = doc.Tagging as Record<string, unknown> | undefined;
  if (typeof tagging !== "object" || tagging === null) throw s3Errors.malformedXml();
  const set = tagging.TagSet;
  if (set === undefined) throw s3Errors.malformedXml();
  const items = set === "" ? [] : asList((set as Record<string, unknown>).Tag);
  const tags = items.map((item): [string, string] => {
    const tag = item as Record<string, unknown>;
    const value = tag?.Value ?? "";
    if (typeof tag?.Key !== "string" || typeof value !== "string") throw s3Errors.malformedXml();
    return [tag.Key, value];
  });
  return checkTags(tags, limit);
}

/** The tags of a form's `tagging` field (a Tagging document), as PostObject takes them. */
export async function taggingField(xml: string): Promise<[string, string][]> {
  return tagsFromXml(await readXmlBody(new Response(xml).body));
}

export async function handleGetObjectTagging(r: S3Request): Promise<Response> {
  const { current } = await requireObject(r, "read");
  const tags = current.data.meta.tags?.v ?? [];
  return xmlResponse("Tagging", tagSetXml(tags), {
    headers: { "x-amz-version-id": versionIdOf(current.version) },
  });
}

/** Writes the current version again with these tags; the newest tags win (see ObjectMeta.tags). */
async function setTags(r: S3Request, tags: [string, string][]): Promise<string> {
  const { bucket, key, current } = await requireObject(r, "write");
  return versionIdOf(await setMetaRegister(r.ctx.store, bucket.id, key, current, "tags", tags));
}

export async function handlePutObjectTagging(r: S3Request): Promise<Response> {
  const tags = tagsFromXml(await readRequestXml(r));
  const versionId = await setTags(r, tags);
  return new Response(null, { status: 200, headers: { "x-amz-version-id": versionId } });
}

export async function handleDeleteObjectTagging(r: S3Request): Promise<Response> {
  const versionId = await setTags(r, []);
  return new Response(null, { status: 204, headers: { "x-amz-version-id": versionId } });
}

export async function handlePutBucketTagging(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const tags = tagsFromXml(await readRequestXml(r), BUCKET_TAGS);
  await r.ctx.access.setSetting(bucket, "tags", tags);
  // 200 as MinIO, Ceph and most S3 servers answer (AWS answers 204): the
  // MinIO JavaScript SDK takes only 200, and every AWS SDK takes either.
  return new Response(null, { status: 200 });
}

export async function handleGetBucketTagging(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  const tags = bucket.tags?.v;
  if (!tags) throw new S3Error("NoSuchTagSet", 404, "The TagSet does not exist");
  return xmlResponse("Tagging", tagSetXml(tags));
}

/** A TagSet in key order, whatever order the tags were given in (keys are unique). */
function tagSetXml(tags: [string, string][]) {
  const sorted = [...tags].sort(([a], [b]) => compareUtf8(a, b));
  return { TagSet: { Tag: sorted.map(([Key, Value]) => ({ Key, Value })) } };
}

export const handleDeleteBucketTagging = deleteBucketSetting("tags");

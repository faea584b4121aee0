/**
 * PostObject: an upload through an HTML form (`POST /bucket`, with a
 * `multipart/form-data` body), as browsers send it. The form authenticates
 * itself (auth/form_signature.ts); its signed policy says until when and
 * what may be uploaded: every form field must be allowed by one of its
 * conditions. The file is streamed into the store like a PutObject body.
 */
import { checkUploadSpace } from "./upload_space.ts";
import { putObject } from "../../model/objects.ts";
import { versioningOf } from "../../model/bucket_table.ts";
import { formBoundary, FormDataError, readFormUpload } from "../../util/form_stream.ts";
import { fromBase64 } from "../../util/hash.ts";
import { PUT_OBJECT_MAX_BYTES } from "../../util/limits.ts";
import { type AuthContext, unsignedBody } from "./auth/authenticate.ts";
import { FORM_SIGNATURE_FIELDS, verifyFormSignature } from "./auth/form_signature.ts";
import type { S3Context } from "./context.ts";
import { refuseBlockedPublicAcl } from "./public_access_block.ts";
import { lockToWrite } from "./object_lock.ts";
import {
  CUSTOMER_KEY_PREFIX,
  encryptionHeaders,
  keyToWrite,
  refuseUnsupportedEncryption,
} from "./encryption.ts";
import { taggingField } from "./object_tagging.ts";
import {
  checkObjectKey,
  checkWriteHeaders,
  headersToStore,
  quotedEtag,
  requestedChecksum,
} from "./object_headers.ts";
import { verifyUpload } from "./put_object.ts";
import { objectUrl, type RequestTarget } from "./request_target.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlResponse } from "./xml.ts";

/** S3's bound on the form fields besides the file. */
const FORM_FIELDS_MAX_BYTES = 20 * 1024;

/** Form fields stored with the object as the headers of a PutObject. */
const CHECKSUM_FIELD_PREFIX = "x-amz-checksum-";

const STORED_FIELDS = [
  "content-type",
  "cache-control",
  "content-disposition",
  "content-encoding",
  "expires",
  "x-amz-website-redirect-location",
];

/** Whether a request is a form upload (POST to a bucket with a multipart/form-data body). */
export function isFormUpload(req: Request, target: RequestTarget): boolean {
  return req.method === "POST" && target.bucket !== undefined && target.key === undefined &&
    !target.query.has("delete") && formBoundary(req.headers.get("content-type")) !== undefined;
}

const malformed = (detail: string) =>
  new S3Error(
    "MalformedPOSTRequest",
    400,
    `The body of your POST request is not well-formed multipart/form-data: ${detail}`,
  );

const ISO_8601_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const policyError = (detail: string) =>
  new S3Error("InvalidPolicyDocument", 400, `Invalid Policy: ${detail}`);

const denied = (detail: string) =>
  new S3Error("AccessDenied", 403, `Invalid according to Policy: ${detail}`);

type Condition =
  | { kind: "eq" | "starts-with"; field: string; value: string; text: string }
  | { kind: "content-length-range"; min: number; max: number; text: string };

interface Policy {
  expirationMs: number;
  conditions: Condition[];
}

function parsePolicy(base64: string): Policy {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(base64)));
  } catch {
    throw policyError("Invalid JSON.");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw policyError("The policy is not a JSON object.");
  }
  const { expiration, conditions } = doc as Record<string, unknown>;
  if (typeof expiration !== "string") throw policyError("Policy missing expiration.");
  // ISO 8601 in UTC, as S3 requires: Date.parse would also take local times and other forms.
  const expirationMs = ISO_8601_UTC.test(expiration) ? Date.parse(expiration) : NaN;
  if (Number.isNaN(expirationMs)) throw policyError(`Invalid expiration "${expiration}".`);
  if (!Array.isArray(conditions)) throw policyError("Policy missing conditions.");
  return { expirationMs, conditions: conditions.map(parseCondition) };
}

function parseCondition(c: unknown): Condition {
  const text = JSON.stringify(c);
  if (typeof c === "object" && c !== null && !Array.isArray(c)) {
    const entries = Object.entries(c);
    if (entries.length !== 1 || typeof entries[0][1] !== "string") {
      throw policyError(`Invalid condition ${text}.`);
    }
    return { kind: "eq", field: entries[0][0].toLowerCase(), value: entries[0][1], text };
  }
  if (!Array.isArray(c) || c.length !== 3 || typeof c[0] !== "string") {
    throw policyError(`Invalid condition ${text}.`);
  }
  const op = c[0].toLowerCase();
  if (op === "content-length-range") {
    const [min, max] = [Number(c[1]), Number(c[2])];
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 0 || max < min) {
      throw policyError(`Invalid content-length-range ${text}.`);
    }
    return { kind: "content-length-range", min, max, text };
  }
  if ((op !== "eq" && op !== "starts-with") || typeof c[1] !== "string" || !c[1].startsWith("$")) {
    throw policyError(`Invalid condition ${text}.`);
  }
  if (typeof c[2] !== "string") throw policyError(`Invalid condition ${text}.`);
  return { kind: op, field: c[1].slice(1).toLowerCase(), value: c[2], text };
}

/**
 * Checks the form against the policy: every eq / starts-with condition
 * holds, and every field (but the signature's) is named by one. Returns the
 * allowed size range of the file.
 */
function checkPolicy(
  policy: Policy,
  fields: Map<string, string>,
  bucket: string,
  nowMs: number,
): { min: number; max: number } {
  if (policy.expirationMs < nowMs) throw denied("Policy expired.");
  const covered = new Set<string>();
  const range = { min: 0, max: PUT_OBJECT_MAX_BYTES };
  for (const condition of policy.conditions) {
    if (condition.kind === "content-length-range") {
      range.min = Math.max(range.min, condition.min);
      range.max = Math.min(range.max, condition.max);
      continue;
    }
    covered.add(condition.field);
    const value = condition.field === "bucket" ? bucket : fields.get(condition.field) ?? "";
    const holds = condition.kind === "eq"
      ? value === condition.value
      : value.startsWith(condition.value);
    if (!holds) throw denied(`Policy Condition failed: ${condition.text}`);
  }
  for (const name of fields.keys()) {
    if (
      FORM_SIGNATURE_FIELDS.includes(name) || name === "policy" || name.startsWith("x-ignore-") ||
      // A checksum only makes the upload stricter (AWS takes it without a condition).
      name.startsWith(CHECKSUM_FIELD_PREFIX)
    ) {
      continue;
    }
    if (!covered.has(name)) throw denied(`Extra input fields: ${name}`);
  }
  return range;
}

export async function handlePostObject(
  ctx: S3Context,
  auth: AuthContext,
  req: Request,
  target: RequestTarget,
): Promise<Response> {
  const bucketName = target.bucket!;
  const body = unsignedBody(req, auth);
  if (!body) throw malformed("the body is empty");
  let upload;
  try {
    const boundary = formBoundary(req.headers.get("content-type"))!;
    upload = await readFormUpload(body, boundary, "file", FORM_FIELDS_MAX_BYTES);
  } catch (e) {
    if (e instanceof FormDataError) throw malformed(e.message);
    throw e;
  }
  const { fields, file } = upload;
  try {
    const accessKeyId = await verifyFormSignature(fields, auth);
    const policy = parsePolicy(fields.get("policy")!);
    refuseUnsupportedEncryption((name) => fields.get(name));
    const keyTemplate = fields.get("key");
    if (keyTemplate === undefined) {
      throw s3Errors.invalidArgument("Bucket POST must contain a field named 'key'.", "key");
    }
    if (!file) {
      throw s3Errors.invalidArgument("POST requires exactly one file upload per request.", "file");
    }
    // The policy's conditions see the key as it will be stored.
    const key = keyTemplate.replaceAll("${filename}", file.filename);
    if (key === "") throw s3Errors.invalidArgument("The key must not be empty.", "key");
    checkObjectKey(key);
    fields.set("key", key);
    const range = checkPolicy(policy, fields, bucketName, auth.nowMs());
    const tagging = fields.get("tagging");
    const tags = tagging === undefined ? undefined : await taggingField(tagging);

    const bucket = await ctx.access.resolveBucketCached(bucketName);
    if (!bucket) throw s3Errors.noSuchBucket(bucketName);
    if (!ctx.access.permissionOf(bucket, accessKeyId).write) throw s3Errors.accessDenied();
    checkUploadSpace(ctx, "PostObject");
    // The form's acl field asks what PutObject's x-amz-acl does.
    checkWriteHeaders((name) => fields.get(name === "x-amz-acl" ? "acl" : name));
    refuseBlockedPublicAcl(
      bucket,
      "PutObject",
      new Headers({ "x-amz-acl": fields.get("acl") ?? "" }),
    );
    const headers = new Headers();
    for (const [name, value] of fields) {
      if (!STORED_FIELDS.includes(name) && !name.startsWith("x-amz-meta-")) continue;
      try {
        headers.set(name, value);
      } catch {
        // Not a valid header value (a line break, a character beyond Latin-1).
        throw s3Errors.invalidArgument(`Invalid value for the form field ${name}`, name, value);
      }
    }
    // A checksum field is checked against the file and kept, as PutObject's header is.
    const checksum = requestedChecksum(
      new Headers([...fields].filter(([name]) => name.startsWith(CHECKSUM_FIELD_PREFIX))),
    );
    const checkChecksum = verifyUpload(undefined, undefined, checksum);
    // Encryption, as PutObject's headers ask it (SSE-C or SSE-S3) or the bucket's default.
    const encryptWith = keyToWrite(
      new Headers(
        [...fields].filter(([name]) =>
          name.startsWith(CUSTOMER_KEY_PREFIX) || name === "x-amz-server-side-encryption"
        ),
      ),
      bucket,
    );
    const { meta } = await putObject(ctx.store, bucket.id, key, file.stream, {
      headers: headersToStore(headers),
      encryptWith,
      lock: lockToWrite((name) => fields.get(name), bucket, ctx.store.nowMs()),
      versioning: versioningOf(bucket),
      tags,
      maxSize: range.max,
      checksumAlgorithm: checksum?.algorithm,
      storedChecksum: (written) =>
        checksum && written.checksum
          ? { algorithm: checksum.algorithm, value: written.checksum, type: "FULL_OBJECT" }
          : undefined,
      verify: (written) => {
        checkChecksum(written);
        if (written.size < range.min) {
          throw new S3Error(
            "EntityTooSmall",
            400,
            "Your proposed upload is smaller than the minimum allowed size",
            { ProposedSize: String(written.size), MinSizeAllowed: String(range.min) },
          );
        }
      },
    }).catch((e) => {
      if (e instanceof FormDataError) throw malformed(e.message);
      throw e;
    });
    return successResponse(req, target, fields, bucketName, key, {
      etag: quotedEtag(meta.etag),
      ...encryptionHeaders(encryptWith),
    });
  } finally {
    await file?.stream.cancel().catch(() => {});
  }
}

/** What the form asked for: a redirect, 200, 201 with a document, or 204; each with `written`'s headers. */
function successResponse(
  req: Request,
  target: RequestTarget,
  fields: Map<string, string>,
  bucket: string,
  key: string,
  written: { etag: string } & Record<string, string>,
): Response {
  const etag = written.etag;
  const location = objectUrl(req, target, bucket, key);
  const redirect = fields.get("success_action_redirect") ?? fields.get("redirect");
  if (redirect !== undefined && URL.canParse(redirect)) {
    const url = new URL(redirect);
    url.searchParams.set("bucket", bucket);
    url.searchParams.set("key", key);
    url.searchParams.set("etag", etag);
    return new Response(null, { status: 303, headers: { ...written, location: url.href } });
  }
  const headers = { ...written, location };
  switch (fields.get("success_action_status")) {
    case "200":
      return new Response(null, { status: 200, headers });
    case "201":
      return xmlResponse(
        "PostResponse",
        { Location: location, Bucket: bucket, Key: key, ETag: etag },
        { status: 201, headers },
      );
    default:
      return new Response(null, { status: 204, headers });
  }
}

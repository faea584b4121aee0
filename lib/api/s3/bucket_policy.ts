/**
 * Bucket policies, of the one kind remise enforces: public read. A policy
 * whose statements all allow anyone (`"Principal": "*"`) to GetObject some
 * keys of the bucket, and perhaps to ListBucket, is accepted (what
 * `mc anonymous set download` and the usual "public bucket" policy write);
 * anything else (Deny, conditions, other principals or actions) is
 * NotImplemented rather than stored and not enforced.
 *
 * PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus,
 * and the check of an anonymous request against the policy.
 */
import {
  type Bucket,
  publicAccessRestricted,
  type PublicReadPolicy,
} from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { xmlResponse } from "./xml.ts";
import { readCheckedBody } from "./request_xml.ts";
import { refuseBlockedPublicPolicy } from "./public_access_block.ts";

/** S3's bound on a bucket policy. */
const POLICY_MAX_BYTES = 20 * 1024;
const ARN_PREFIX = "arn:aws:s3:::";

const malformed = (detail: string) => new S3Error("MalformedPolicy", 400, detail);
const unsupported = (what: string) =>
  s3Errors.notImplemented(`Bucket policies with ${what} (remise enforces public read only)`);

function list(value: unknown, field: string): unknown[] {
  if (value === undefined) throw malformed(`Missing required field ${field}`);
  return Array.isArray(value) ? value : [value];
}

function strings(value: unknown, field: string): string[] {
  const values = list(value, field);
  if (values.some((v) => typeof v !== "string")) throw malformed(`${field} must be strings`);
  return values as string[];
}

function isEveryone(principal: unknown): boolean {
  if (principal === "*") return true;
  if (typeof principal !== "object" || principal === null || Array.isArray(principal)) return false;
  const entries = Object.entries(principal);
  return entries.length === 1 && entries[0][0] === "AWS" &&
    list(entries[0][1], "Principal").every((p) => p === "*");
}

/** The public-read policy a PutBucketPolicy body describes, for `bucketName`. */
export function parseBucketPolicy(text: string, bucketName: string): PublicReadPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw malformed("Policies must be valid JSON and the first byte must be '{'");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw malformed("Policies must be valid JSON and the first byte must be '{'");
  }
  const policy: PublicReadPolicy = { text, readKeys: [], list: false };
  const statements = list((doc as Record<string, unknown>).Statement, "Statement");
  if (statements.length === 0) throw malformed("Missing required field Statement");
  for (const node of statements) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) {
      throw malformed("Statement must be an object");
    }
    const statement = node as Record<string, unknown>;
    if (statement.Effect !== "Allow") {
      if (statement.Effect === "Deny") throw unsupported("Deny statements");
      throw malformed("Invalid effect");
    }
    for (const field of ["Condition", "NotAction", "NotResource", "NotPrincipal"]) {
      if (statement[field] !== undefined) throw unsupported(field);
    }
    if (!isEveryone(statement.Principal)) throw unsupported("a principal other than *");
    const actions = strings(statement.Action, "Action").map((a) => a.toLowerCase());
    const resources = strings(statement.Resource, "Resource").map((resource) => {
      if (!resource.startsWith(ARN_PREFIX)) throw malformed("Policy has invalid resource");
      const path = resource.slice(ARN_PREFIX.length);
      const bucket = path.split("/")[0];
      if (bucket !== bucketName) throw malformed("Policy has invalid resource");
      return path.includes("/") ? { key: path.slice(bucket.length + 1) } : { key: undefined };
    });
    const objects = resources.flatMap((r) => (r.key === undefined ? [] : [r.key]));
    for (const action of actions) {
      if (action === "s3:getobject") {
        if (objects.length === 0) {
          throw malformed("Action does not apply to any resource(s) in statement");
        }
        for (const key of objects) {
          if (key.slice(0, -1).includes("*") || key.includes("?")) {
            throw unsupported("wildcards other than a trailing *");
          }
        }
        policy.readKeys.push(...objects);
      } else if (action === "s3:listbucket") {
        if (!resources.some((r) => r.key === undefined)) {
          throw malformed("Action does not apply to any resource(s) in statement");
        }
        policy.list = true;
      } else if (action !== "s3:getbucketlocation") {
        throw unsupported(`the action ${action}`);
      }
    }
  }
  return policy;
}

/**
 * Whether the bucket's policy lets anyone run `operation` (on `key`): not
 * while its public access block restricts it.
 */
export function publicAccessAllows(
  bucket: Bucket,
  operation: string,
  key: string | undefined,
): boolean {
  const policy = bucket.policy?.v;
  if (!policy || publicAccessRestricted(bucket)) return false;
  if (operation === "ListObjects" || operation === "ListObjectsV2") return policy.list;
  if ((operation !== "GetObject" && operation !== "HeadObject") || key === undefined) return false;
  return policy.readKeys.some((pattern) =>
    pattern.endsWith("*") ? key.startsWith(pattern.slice(0, -1)) : key === pattern
  );
}

export async function handlePutBucketPolicy(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const text = new TextDecoder().decode(await readCheckedBody(r, POLICY_MAX_BYTES));
  const policy = parseBucketPolicy(text, bucket.name.v);
  refuseBlockedPublicPolicy(bucket);
  await r.ctx.access.setSetting(bucket, "policy", policy);
  return new Response(null, { status: 204 });
}

/** The bucket's policy; 404 NoSuchBucketPolicy without one, as S3 answers. */
function requirePolicy(bucket: Bucket): PublicReadPolicy {
  const policy = bucket.policy?.v;
  if (!policy) {
    throw new S3Error("NoSuchBucketPolicy", 404, "The bucket policy does not exist", {
      BucketName: bucket.name.v,
    });
  }
  return policy;
}

export async function handleGetBucketPolicy(r: S3Request): Promise<Response> {
  const policy = requirePolicy(await requireBucket(r, "owner"));
  return new Response(policy.text, { headers: { "content-type": "application/json" } });
}

export const handleDeleteBucketPolicy = deleteBucketSetting("policy");

/** Without a policy, S3 answers NoSuchBucketPolicy (not `IsPublic: false`), as GetBucketPolicy does. */
export async function handleGetBucketPolicyStatus(r: S3Request): Promise<Response> {
  const policy = requirePolicy(await requireBucket(r, "any"));
  return xmlResponse("PolicyStatus", { IsPublic: policy.readKeys.length > 0 || policy.list });
}

/**
 * The authentication of an upload through an HTML form (PostObject): the
 * form's `policy` field (base64 JSON) is signed with the uploader's key,
 * with Signature V4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
 * `x-amz-signature`: the hex HMAC-SHA256 of the policy under the scope's
 * signing key) or V2 (`AWSAccessKeyId`, `signature`: the base64
 * HMAC-SHA1 of the policy).
 */
import { S3Error } from "../s3_error.ts";
import { timingSafeEqualString } from "../../../util/hash.ts";
import {
  S3_SERVICE,
  signatureHex,
  signingKey,
  SIGV4_ALGORITHM,
  SIGV4_TERMINATOR,
} from "./canonical_request.ts";
import { parseAmzDate } from "./signature_params.ts";
import { signatureV2 } from "./signature_v2.ts";
import { invalidAccessKeyId, signatureDoesNotMatch } from "./_auth_errors.ts";
import type { AuthContext } from "./authenticate.ts";

/** Form fields that carry the signature itself (lowercase names). */
export const FORM_SIGNATURE_FIELDS = ["x-amz-signature", "signature", "awsaccesskeyid"];

const missing = (name: string) =>
  new S3Error("InvalidArgument", 400, `Bucket POST must contain a field named '${name}'.`, {
    ArgumentName: name,
  });

function field(fields: Map<string, string>, name: string): string {
  const value = fields.get(name);
  if (value === undefined) throw missing(name);
  return value;
}

/**
 * The access key id that signed the form's policy; throws the S3 error of a
 * missing, malformed or wrong signature. A form without a policy is
 * anonymous, which no bucket of remise accepts.
 */
export async function verifyFormSignature(
  fields: Map<string, string>,
  ctx: AuthContext,
): Promise<string> {
  const policy = fields.get("policy");
  if (policy === undefined) {
    throw new S3Error("AccessDenied", 403, "Anonymous uploads are not allowed: sign a policy");
  }
  if (fields.has("x-amz-signature") || fields.has("x-amz-credential")) {
    const algorithm = field(fields, "x-amz-algorithm");
    if (algorithm !== SIGV4_ALGORITHM) {
      throw new S3Error("InvalidArgument", 400, `Unsupported x-amz-algorithm "${algorithm}"`, {
        ArgumentName: "x-amz-algorithm",
        ArgumentValue: algorithm,
      });
    }
    const credential = field(fields, "x-amz-credential");
    const parts = credential.split("/");
    if (parts.length !== 5 || parts[3] !== S3_SERVICE || parts[4] !== SIGV4_TERMINATOR) {
      throw new S3Error("InvalidArgument", 400, `Malformed x-amz-credential "${credential}"`, {
        ArgumentName: "x-amz-credential",
        ArgumentValue: credential,
      });
    }
    const [accessKeyId, date, region] = parts;
    if (region !== ctx.region) {
      throw new S3Error(
        "InvalidArgument",
        400,
        `The x-amz-credential's region '${region}' is wrong; expecting '${ctx.region}'`,
        { ArgumentName: "x-amz-credential", ArgumentValue: credential, Region: ctx.region },
      );
    }
    const timestamp = field(fields, "x-amz-date");
    if (Number.isNaN(parseAmzDate(timestamp)) || !timestamp.startsWith(date)) {
      throw new S3Error("InvalidArgument", 400, `Invalid x-amz-date "${timestamp}"`, {
        ArgumentName: "x-amz-date",
        ArgumentValue: timestamp,
      });
    }
    const secret = await ctx.getSecret(accessKeyId);
    if (secret === undefined) throw invalidAccessKeyId(accessKeyId);
    const expected = signatureHex(signingKey(secret, date, region), policy);
    const given = field(fields, "x-amz-signature").toLowerCase();
    if (!timingSafeEqualString(expected, given)) {
      throw signatureDoesNotMatch(undefined, { AWSAccessKeyId: accessKeyId });
    }
    return accessKeyId;
  }
  const accessKeyId = field(fields, "awsaccesskeyid");
  const secret = await ctx.getSecret(accessKeyId);
  if (secret === undefined) throw invalidAccessKeyId(accessKeyId);
  if (!timingSafeEqualString(signatureV2(secret, policy), field(fields, "signature"))) {
    throw signatureDoesNotMatch(undefined, { AWSAccessKeyId: accessKeyId });
  }
  return accessKeyId;
}

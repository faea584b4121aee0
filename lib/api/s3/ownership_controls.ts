/**
 * Object ownership (S3's OwnershipControls). remise has no ACLs: the bucket
 * owner owns every object, which is S3's `BucketOwnerEnforced`, its default
 * since 2023. Reading the controls says so; setting `BucketOwnerEnforced`
 * (at CreateBucket or with PutBucketOwnershipControls) succeeds, since it is
 * what holds; the settings that enable ACLs are NotImplemented.
 */
import { readRequestXml } from "./request_xml.ts";
import { requireBucket, type S3Request } from "./context.ts";
import { s3Errors } from "./s3_error.ts";
import { asList, xmlElement, xmlResponse, xmlText } from "./xml.ts";

const ENFORCED = "BucketOwnerEnforced";
const WITH_ACLS = ["BucketOwnerPreferred", "ObjectWriter"];

function refuseUnlessEnforced(ownership: string): void {
  if (ownership === ENFORCED) return;
  if (WITH_ACLS.includes(ownership)) {
    throw s3Errors.notImplemented(
      `Object ownership ${ownership} (remise has no ACLs: ownership is ${ENFORCED})`,
    );
  }
  throw s3Errors.invalidArgument("Invalid object ownership", "ObjectOwnership", ownership);
}

/** CreateBucket's x-amz-object-ownership: only what holds is accepted. */
export function checkCreateBucketOwnership(headers: Headers): void {
  const ownership = headers.get("x-amz-object-ownership");
  if (ownership !== null) refuseUnlessEnforced(ownership);
}

export async function handleGetBucketOwnershipControls(r: S3Request): Promise<Response> {
  await requireBucket(r, "any");
  return xmlResponse("OwnershipControls", { Rule: { ObjectOwnership: ENFORCED } });
}

export async function handlePutBucketOwnershipControls(r: S3Request): Promise<Response> {
  await requireBucket(r, "owner");
  const root = xmlElement((await readRequestXml(r)).OwnershipControls);
  const rules = asList(root?.Rule).map(xmlElement);
  if (rules.length !== 1 || !rules[0]) throw s3Errors.malformedXml();
  const ownership = xmlText(rules[0], "ObjectOwnership");
  if (ownership === undefined) throw s3Errors.malformedXml();
  refuseUnlessEnforced(ownership);
  return new Response(null, { status: 200 });
}

/** Deleting the controls leaves what holds (remise cannot enable ACLs): it succeeds and changes nothing. */
export async function handleDeleteBucketOwnershipControls(r: S3Request): Promise<Response> {
  await requireBucket(r, "owner");
  return new Response(null, { status: 204 });
}

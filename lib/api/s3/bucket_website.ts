/**
 * PutBucketWebsite, GetBucketWebsite, DeleteBucketWebsite: whether a bucket
 * is served as a static website (lib/api/web), with its index suffix and
 * error document, or the host all its requests are redirected to
 * (RedirectAllRequestsTo). Routing rules are not supported.
 */
import type { WebsiteConfig } from "../../model/bucket_table.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { readXmlBody, xmlElement, type XmlNode, xmlResponse, xmlText } from "./xml.ts";

const NOT_CONFIGURED = () =>
  new S3Error(
    "NoSuchWebsiteConfiguration",
    404,
    "The specified bucket does not have a website configuration",
  );

/** The text of `parent.name.child`, if the document has it once. */
function textAt(parent: Record<string, unknown>, name: string, child: string): string | undefined {
  const element = xmlElement(parent[name]);
  if (element === undefined) return undefined;
  const value = xmlText(element, child);
  if (value === undefined) throw s3Errors.malformedXml();
  return value;
}

/** The configuration a PutBucketWebsite body describes (its values unchecked). */
export function parseWebsiteConfiguration(doc: Record<string, unknown>): WebsiteConfig {
  const root = doc.WebsiteConfiguration;
  if (typeof root !== "object" || root === null || Array.isArray(root)) {
    throw s3Errors.malformedXml();
  }
  const conf = root as Record<string, unknown>;
  if (conf.RoutingRules !== undefined) {
    throw s3Errors.notImplemented("Website routing rules (RoutingRules)");
  }
  if (conf.RedirectAllRequestsTo !== undefined) {
    if (conf.IndexDocument !== undefined || conf.ErrorDocument !== undefined) {
      throw s3Errors.invalidArgument(
        "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules.",
      );
    }
    const hostName = textAt(conf, "RedirectAllRequestsTo", "HostName");
    if (hostName === undefined) throw s3Errors.malformedXml();
    const redirect = conf.RedirectAllRequestsTo as Record<string, unknown>;
    const protocol = redirect.Protocol;
    if (protocol !== undefined && protocol !== "http" && protocol !== "https") {
      throw s3Errors.invalidArgument("Invalid protocol, protocol can be http or https.");
    }
    return { redirectAll: protocol === undefined ? { hostName } : { hostName, protocol } };
  }
  const indexSuffix = textAt(conf, "IndexDocument", "Suffix");
  if (indexSuffix === undefined) {
    throw s3Errors.invalidArgument(
      "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
    );
  }
  // The values themselves are checked by Access.setWebsite (InvalidArgument).
  const errorKey = textAt(conf, "ErrorDocument", "Key");
  return errorKey === undefined ? { indexSuffix } : { indexSuffix, errorKey };
}

export async function handlePutBucketWebsite(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const config = parseWebsiteConfiguration(await readXmlBody(r.body));
  await r.ctx.access.setWebsite(bucket, config);
  return new Response(null, { status: 200 });
}

export async function handleGetBucketWebsite(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  const config = bucket.website?.v;
  if (!config) throw NOT_CONFIGURED();
  const body: XmlNode = config.redirectAll
    ? {
      RedirectAllRequestsTo: {
        HostName: config.redirectAll.hostName,
        Protocol: config.redirectAll.protocol,
      },
    }
    : { IndexDocument: { Suffix: config.indexSuffix } };
  if (config.errorKey !== undefined) body.ErrorDocument = { Key: config.errorKey };
  return xmlResponse("WebsiteConfiguration", body);
}

export const handleDeleteBucketWebsite = deleteBucketSetting("website");

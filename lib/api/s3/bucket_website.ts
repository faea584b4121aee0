/**
 * PutBucketWebsite, GetBucketWebsite, DeleteBucketWebsite: whether a bucket
 * is served as a static website (lib/api/web), with its index suffix and
 * error document, or the host all its requests are redirected to
 * (RedirectAllRequestsTo), and its routing rules (see website_routing.ts).
 */
import type { WebsiteConfig } from "../../model/bucket_table.ts";
import type { RoutingRule } from "../../model/website_routing.ts";
import { readRequestXml } from "./request_xml.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, xmlElement, type XmlNode, xmlResponse, xmlText } from "./xml.ts";

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
  if (conf.RedirectAllRequestsTo !== undefined) {
    if (
      conf.IndexDocument !== undefined || conf.ErrorDocument !== undefined ||
      conf.RoutingRules !== undefined
    ) {
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
  const config: WebsiteConfig = errorKey === undefined
    ? { indexSuffix }
    : { indexSuffix, errorKey };
  if (conf.RoutingRules !== undefined) config.routingRules = parseRoutingRules(conf.RoutingRules);
  return config;
}

/** An integer element (a status code), if present. */
function integerAt(parent: Record<string, unknown>, name: string): number | undefined {
  const text = xmlText(parent, name);
  if (text === undefined) return undefined;
  if (!/^\d{1,3}$/.test(text.trim())) {
    throw s3Errors.invalidArgument(`${name} must be an HTTP status code`, name, text);
  }
  return Number(text.trim());
}

function parseRoutingRules(value: unknown): RoutingRule[] {
  const rules = asList(xmlElement(value)?.RoutingRule).map(xmlElement);
  if (rules.length === 0 || rules.some((rule) => rule === undefined)) {
    throw s3Errors.malformedXml();
  }
  return rules.map((rule) => {
    const redirect = xmlElement(rule!.Redirect);
    if (!redirect) throw s3Errors.invalidArgument("A routing rule needs a Redirect");
    const parsed: RoutingRule = { redirect: {} };
    if (rule!.Condition !== undefined) {
      const condition = xmlElement(rule!.Condition);
      const keyPrefixEquals = condition && xmlText(condition, "KeyPrefixEquals");
      const errorCode = condition && integerAt(condition, "HttpErrorCodeReturnedEquals");
      if (keyPrefixEquals === undefined && errorCode === undefined) {
        throw s3Errors.invalidArgument(
          "Condition cannot be empty. To redirect all requests without a condition, leave the Condition element out.",
        );
      }
      if (keyPrefixEquals !== undefined) parsed.keyPrefixEquals = keyPrefixEquals;
      if (errorCode !== undefined) parsed.httpErrorCodeReturnedEquals = errorCode;
    }
    const protocol = xmlText(redirect, "Protocol");
    if (protocol !== undefined) {
      if (protocol !== "http" && protocol !== "https") {
        throw s3Errors.invalidArgument("Invalid protocol, protocol can be http or https.");
      }
      parsed.redirect.protocol = protocol;
    }
    for (const [field, element] of REDIRECT_TEXTS) {
      const text = xmlText(redirect, element);
      if (text !== undefined) parsed.redirect[field] = text;
    }
    const code = integerAt(redirect, "HttpRedirectCode");
    if (code !== undefined) parsed.redirect.httpRedirectCode = code;
    if (Object.keys(parsed.redirect).length === 0) {
      throw s3Errors.invalidArgument("Redirect cannot be empty");
    }
    return parsed;
  });
}

const REDIRECT_TEXTS = [
  ["hostName", "HostName"],
  ["replaceKeyPrefixWith", "ReplaceKeyPrefixWith"],
  ["replaceKeyWith", "ReplaceKeyWith"],
] as const;

function routingRulesXml(rules: RoutingRule[]): XmlNode {
  return {
    RoutingRule: rules.map((rule) => ({
      Condition: rule.keyPrefixEquals === undefined &&
          rule.httpErrorCodeReturnedEquals === undefined
        ? undefined
        : {
          HttpErrorCodeReturnedEquals: rule.httpErrorCodeReturnedEquals,
          KeyPrefixEquals: rule.keyPrefixEquals,
        },
      Redirect: {
        Protocol: rule.redirect.protocol,
        HostName: rule.redirect.hostName,
        ReplaceKeyPrefixWith: rule.redirect.replaceKeyPrefixWith,
        ReplaceKeyWith: rule.redirect.replaceKeyWith,
        HttpRedirectCode: rule.redirect.httpRedirectCode,
      },
    })),
  };
}

export async function handlePutBucketWebsite(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  const config = parseWebsiteConfiguration(await readRequestXml(r));
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
  if (config.routingRules) body.RoutingRules = routingRulesXml(config.routingRules);
  return xmlResponse("WebsiteConfiguration", body);
}

export const handleDeleteBucketWebsite = deleteBucketSetting("website");

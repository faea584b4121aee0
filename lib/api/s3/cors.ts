/**
 * CORS, so that pages of other origins may use a bucket from the browser:
 * PutBucketCors / GetBucketCors / DeleteBucketCors, the answer to a
 * preflight request (OPTIONS, which carries no credentials), and the
 * Access-Control-* headers added to answers of requests with an Origin.
 *
 * As in S3, the first rule that allows the origin, the method and every
 * requested header is the one that applies; an origin or header pattern may
 * hold one "*" wildcard.
 */
import type { Bucket, CorsRule } from "../../model/bucket_table.ts";
import { readRequestXml } from "./request_xml.ts";
import { deleteBucketSetting, requireBucket, type S3Request } from "./context.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { asList, xmlElement, xmlResponse, xmlTexts } from "./xml.ts";

const CORS_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"];
const CORS_RULES_MAX = 100;

// --- configuration ---

/** Origins and header names go back into answers' headers: printable ASCII only. */
function checkPrintable(kind: string, values: string[]): void {
  const bad = values.find((v) => !/^[\x21-\x7e]+$/.test(v));
  if (bad !== undefined) {
    throw s3Errors.invalidRequest(`${kind} "${bad}" is not a valid header value.`);
  }
}

function checkOneWildcard(kind: string, values: string[]): void {
  const bad = values.find((v) => v.indexOf("*") !== v.lastIndexOf("*"));
  if (bad !== undefined) {
    throw s3Errors.invalidRequest(`${kind} "${bad}" can not have more than one wildcard.`);
  }
}

/** The rules a PutBucketCors body describes. */
export function parseCorsConfiguration(doc: Record<string, unknown>): CorsRule[] {
  const rules = asList(xmlElement(doc.CORSConfiguration)?.CORSRule);
  if (rules.length === 0) throw s3Errors.malformedXml();
  if (rules.length > CORS_RULES_MAX) {
    throw s3Errors.invalidRequest(`A CORS configuration holds at most ${CORS_RULES_MAX} rules.`);
  }
  return rules.map((node) => {
    const rule = xmlElement(node);
    if (!rule) throw s3Errors.malformedXml();
    const allowedOrigins = xmlTexts(rule, "AllowedOrigin");
    const allowedMethods = xmlTexts(rule, "AllowedMethod");
    if (allowedOrigins.length === 0 || allowedMethods.length === 0) throw s3Errors.malformedXml();
    const unsupported = allowedMethods.find((m) => !CORS_METHODS.includes(m));
    if (unsupported !== undefined) {
      throw s3Errors.invalidRequest(
        `Found unsupported HTTP method in CORS config. Unsupported method is ${unsupported}`,
      );
    }
    const allowedHeaders = xmlTexts(rule, "AllowedHeader").map((h) => h.toLowerCase());
    checkOneWildcard("AllowedOrigin", allowedOrigins);
    checkOneWildcard("AllowedHeader", allowedHeaders);
    const exposeHeaders = xmlTexts(rule, "ExposeHeader");
    checkPrintable("AllowedOrigin", allowedOrigins);
    checkPrintable("AllowedHeader", allowedHeaders);
    checkPrintable("ExposeHeader", exposeHeaders);
    const parsed: CorsRule = {
      allowedOrigins,
      allowedMethods,
      allowedHeaders,
      exposeHeaders,
    };
    const [id] = xmlTexts(rule, "ID");
    if (id !== undefined) {
      if (id.length > 255) {
        throw s3Errors.invalidArgument("A CORS rule ID is at most 255 characters");
      }
      parsed.id = id;
    }
    const [maxAge] = xmlTexts(rule, "MaxAgeSeconds");
    if (maxAge !== undefined) {
      if (!/^\d{1,9}$/.test(maxAge.trim())) throw s3Errors.malformedXml();
      parsed.maxAgeSeconds = Number(maxAge);
    }
    return parsed;
  });
}

export async function handlePutBucketCors(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "owner");
  await r.ctx.access.setSetting(bucket, "cors", parseCorsConfiguration(await readRequestXml(r)));
  return new Response(null, { status: 200 });
}

export async function handleGetBucketCors(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "any");
  const rules = bucket.cors?.v;
  if (!rules) {
    throw new S3Error("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist", {
      BucketName: bucket.name.v,
    });
  }
  return xmlResponse("CORSConfiguration", {
    CORSRule: rules.map((rule) => ({
      ID: rule.id,
      AllowedHeader: rule.allowedHeaders,
      AllowedMethod: rule.allowedMethods,
      AllowedOrigin: rule.allowedOrigins,
      ExposeHeader: rule.exposeHeaders,
      MaxAgeSeconds: rule.maxAgeSeconds,
    })),
  });
}

export const handleDeleteBucketCors = deleteBucketSetting("cors");

// --- answering browsers ---

/** Whether `value` matches `pattern`, where one "*" stands for any text. */
function matches(pattern: string, value: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === value;
  const prefix = pattern.slice(0, star);
  const suffix = pattern.slice(star + 1);
  return value.length >= prefix.length + suffix.length && value.startsWith(prefix) &&
    value.endsWith(suffix);
}

/** The first rule allowing this origin, method and (lowercase) headers. */
export function matchingCorsRule(
  rules: CorsRule[],
  origin: string,
  method: string,
  headers: string[],
): CorsRule | undefined {
  return rules.find((rule) =>
    rule.allowedMethods.includes(method) &&
    rule.allowedOrigins.some((o) => matches(o, origin)) &&
    headers.every((h) => rule.allowedHeaders.some((p) => matches(p, h)))
  );
}

/** The headers a matching rule gives, on preflights and (as S3 answers) on actual requests. */
function setRuleHeaders(headers: Headers, rule: CorsRule, origin: string): void {
  if (rule.allowedOrigins.includes("*")) {
    headers.set("access-control-allow-origin", "*");
  } else {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-allow-credentials", "true");
  }
  headers.set("access-control-allow-methods", rule.allowedMethods.join(", "));
  if (rule.exposeHeaders.length > 0) {
    headers.set("access-control-expose-headers", rule.exposeHeaders.join(", "));
  }
  if (rule.maxAgeSeconds !== undefined) {
    headers.set("access-control-max-age", String(rule.maxAgeSeconds));
  }
}

const forbidden = (message: string) => new S3Error("AccessForbidden", 403, message);

/**
 * The answer to a preflight request for `bucket` (undefined when it does not
 * exist); an S3Error when the request is not allowed.
 */
export function preflightResponse(bucket: Bucket | undefined, req: Request): Response {
  const origin = req.headers.get("origin");
  const method = req.headers.get("access-control-request-method");
  if (origin === null || method === null) {
    throw s3Errors.invalidRequest(
      "Insufficient information. Origin request header and Access-Control-Request-Method are needed.",
    );
  }
  const rules = bucket?.cors?.v;
  if (!rules) throw forbidden("CORSResponse: CORS is not enabled for this bucket.");
  const requested = (req.headers.get("access-control-request-headers") ?? "")
    .split(",").map((h) => h.trim().toLowerCase()).filter((h) => h !== "");
  const rule = matchingCorsRule(rules, origin, method, requested);
  if (!rule) {
    throw forbidden(
      "CORSResponse: This CORS request is not allowed: no rule allows its origin, method and headers.",
    );
  }
  const headers = new Headers({
    vary: "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
  });
  setRuleHeaders(headers, rule, origin);
  if (requested.length > 0) headers.set("access-control-allow-headers", requested.join(", "));
  return new Response(null, { status: 200, headers });
}

/** Adds the Access-Control-* headers a request with an Origin gets from the bucket's rules. */
export function addCorsHeaders(response: Response, bucket: Bucket | undefined, req: Request): void {
  const origin = req.headers.get("origin");
  const rules = bucket?.cors?.v;
  if (origin === null || !rules) return;
  response.headers.append("vary", "Origin");
  const rule = matchingCorsRule(rules, origin, req.method, []);
  if (!rule) return;
  setRuleHeaders(response.headers, rule, origin);
}

/**
 * Static websites on `web_bind_addr`: the Host header names the bucket
 * (`<bucket>.<web_root_domain>`, or the whole host name, as with a bucket
 * named "example.org"), and a bucket is served only while it has a website
 * configuration (PutBucketWebsite) and its public access block does not
 * restrict public access. Its objects are then public: GET and HEAD need no
 * credentials.
 *
 * As S3's website endpoints do: a path that names a "directory" (empty, or
 * ending in "/") serves its index document; a path without the slash whose
 * index exists is redirected to the path with it; a missing object serves
 * the error document with status 404, or an HTML error page; an object
 * stored with `x-amz-website-redirect-location` redirects there (301), and
 * so does every path of a website configured to redirect all requests, and
 * every path a routing rule redirects (by key prefix, or when the page is
 * missing). The bucket's CORS rules (PutBucketCors) answer preflights and
 * apply to its pages.
 */
import type { RequestMetrics } from "../util/request_metrics.ts";
import type { Access } from "../model/access.ts";
import { type Bucket, publicAccessRestricted, type WebsiteConfig } from "../model/bucket_table.ts";
import { getCurrent } from "../model/objects.ts";
import { matchingRoutingRule, routingRedirect } from "../model/website_routing.ts";
import type { Store } from "../model/store.ts";
import { objectResponse } from "../api/s3/get_object.ts";
import { S3Error, s3Errors } from "../api/s3/s3_error.ts";
import { addCorsHeaders, preflightResponse } from "../api/s3/cors.ts";
import { toS3Error } from "../api/s3/s3_api.ts";
import { objectKeyTooLong } from "../util/utf8_order.ts";
import { splitRawUrl } from "../api/s3/auth/canonical_request.ts";

export interface WebContext {
  store: Store;
  access: Access;
  /** `web_root_domain`: buckets are served at `<bucket>.<root>` besides their own name. */
  rootDomain?: string;
  /** Counts the requests answered (by HTTP method), for the admin API's /metrics. */
  metrics?: RequestMetrics;
}

const NO_QUERY = new URLSearchParams();
/** Methods counted under their own name; any other is "other", so that labels stay few. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"]);
const REDIRECT_HEADER = "x-amz-website-redirect-location";

export function createWebHandler(ctx: WebContext): (req: Request) => Promise<Response> {
  return async (req) => {
    const started = performance.now();
    const head = req.method === "HEAD";
    let bucket: Bucket | undefined;
    let response: Response;
    try {
      const name = bucketNameOfHost(req.headers.get("host"), ctx.rootDomain);
      bucket = name === undefined ? undefined : await ctx.access.resolveBucketCached(name);
      if (req.method === "OPTIONS") {
        response = preflightResponse(bucket?.website?.v ? bucket : undefined, req);
      } else if (req.method === "GET" || head) {
        response = await serve(ctx, req, name, bucket, head);
      } else {
        await req.body?.cancel().catch(() => {});
        throw new S3Error("MethodNotAllowed", 405, "The specified method is not allowed.");
      }
    } catch (e) {
      // Failures of the layers below answer as on the S3 port (503 without a quorum, ...).
      response = errorPage(toS3Error(e, `web ${req.method} ${req.url}`), head);
      if (response.status === 405) response.headers.set("allow", "GET, HEAD, OPTIONS");
    }
    // A bucket's CORS rules apply to its pages once it is a website.
    if (req.method !== "OPTIONS" && bucket?.website?.v) addCorsHeaders(response, bucket, req);
    ctx.metrics?.record(
      KNOWN_METHODS.has(req.method) ? req.method : "other",
      response.status,
      (performance.now() - started) / 1000,
    );
    return response;
  };
}

/** The bucket name a Host header designates, if any. */
export function bucketNameOfHost(host: string | null, rootDomain?: string): string | undefined {
  if (!host || host.startsWith("[")) return undefined; // an IPv6 literal names no bucket
  const name = host.replace(/:\d+$/, "").replace(/\.$/, "").toLowerCase();
  if (rootDomain !== undefined) {
    if (name === rootDomain) return undefined;
    if (name.endsWith(`.${rootDomain}`)) return name.slice(0, -rootDomain.length - 1);
  }
  return name === "" ? undefined : name;
}

async function serve(
  ctx: WebContext,
  req: Request,
  name: string | undefined,
  bucket: Bucket | undefined,
  head: boolean,
): Promise<Response> {
  if (!bucket) {
    throw new S3Error("NoSuchBucket", 404, "The specified bucket does not exist", {
      BucketName: name ?? "",
    });
  }
  const config = bucket.website?.v;
  if (!config) {
    throw new S3Error(
      "NoSuchWebsiteConfiguration",
      404,
      "The specified bucket does not have a website configuration",
      { BucketName: bucket.name.v },
    );
  }
  // The owner's public access block withholds the bucket from anyone without credentials.
  if (publicAccessRestricted(bucket)) throw s3Errors.accessDenied();
  const url = new URL(req.url);
  // As sent: URL's pathname would resolve `..`, `.` and `\`, which keys may hold (as S3's do).
  const path = splitRawUrl(req.url).path;
  const redirectAll = config.redirectAll;
  if (redirectAll) {
    // The whole site moved (a bare domain to its www. name, say): same path, other host.
    const protocol = redirectAll.protocol ?? url.protocol.slice(0, -1);
    const location = `${protocol}://${redirectAll.hostName}${path}${url.search}`;
    return new Response(null, { status: 301, headers: { location } });
  }
  const indexSuffix = config.indexSuffix!;
  let key: string;
  try {
    key = decodeURIComponent(path).slice(1);
  } catch {
    throw new S3Error("InvalidURI", 400, "Couldn't parse the specified URI.");
  }
  const routed = routingResponse(config, key, undefined, url, req);
  if (routed) return routed;
  const isDirectory = key === "" || key.endsWith("/");
  const wanted = isDirectory ? key + indexSuffix : key;
  const found = await findObject(ctx.store, bucket, wanted);
  if (found) {
    // An object stored with x-amz-website-redirect-location is a redirect.
    const redirect = found.data.meta.headers.find(([n]) => n === REDIRECT_HEADER)?.[1];
    if (redirect !== undefined) {
      return new Response(null, { status: 301, headers: { location: redirect } });
    }
    return await objectResponse(ctx.store, found, req.headers, NO_QUERY, head);
  }
  if (!isDirectory && await findObject(ctx.store, bucket, `${key}/${indexSuffix}`)) {
    return new Response(null, { status: 302, headers: { location: `${path}/` } });
  }
  return routingResponse(config, key, 404, url, req) ??
    await notFound(ctx.store, bucket, config, wanted, head);
}

/** The redirect of the first routing rule that applies, if one does. */
function routingResponse(
  config: WebsiteConfig,
  key: string,
  errorStatus: number | undefined,
  url: URL,
  req: Request,
): Response | undefined {
  const rule = matchingRoutingRule(config.routingRules, key, errorStatus);
  if (!rule) return undefined;
  const { status, location } = routingRedirect(rule, key, {
    protocol: url.protocol.slice(0, -1),
    host: req.headers.get("host") ?? url.host,
  });
  return new Response(null, { status, headers: { location } });
}

async function findObject(store: Store, bucket: Bucket, key: string) {
  if (objectKeyTooLong(key)) return undefined;
  return await getCurrent(store, bucket.id, key);
}

/** The error document with status 404, or an error page when there is none. */
async function notFound(
  store: Store,
  bucket: Bucket,
  config: WebsiteConfig,
  key: string,
  head: boolean,
): Promise<Response> {
  const document = config.errorKey === undefined
    ? undefined
    : await findObject(store, bucket, config.errorKey);
  if (document) {
    const page = await objectResponse(store, document, new Headers(), NO_QUERY, head);
    return new Response(page.body, { status: 404, headers: page.headers });
  }
  return errorPage(
    new S3Error("NoSuchKey", 404, "The specified key does not exist.", { Key: key }),
    head,
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function errorPage(error: S3Error, head: boolean): Response {
  const title = `${error.status} ${STATUS_TEXT[error.status] ?? "Error"}`;
  const items = [["Code", error.code], ["Message", error.message], ...Object.entries(error.extra)]
    .map(([k, v]) => `<li>${escapeHtml(k)}: ${escapeHtml(v)}</li>`).join("");
  const body =
    `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1>${title}</h1><ul>${items}</ul></body></html>\n`;
  return new Response(head ? null : body, {
    status: error.status,
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  412: "Precondition Failed",
  416: "Range Not Satisfiable",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

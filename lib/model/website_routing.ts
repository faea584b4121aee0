/**
 * A website's routing rules (S3's RoutingRules): redirects chosen by the
 * requested key's prefix, or by the error a request would get (a missing
 * page, say), tried in order, the first that matches wins. A rule without an
 * error code redirects before the object is looked up; one with an error
 * code, only when the request would end in that error.
 */

export interface RoutingRule {
  /** Condition: the requested key starts with this. */
  keyPrefixEquals?: string;
  /** Condition: the request would get this HTTP error (4XX or 5XX). */
  httpErrorCodeReturnedEquals?: number;
  redirect: {
    /** http or https; by default the request's. */
    protocol?: "http" | "https";
    /** By default the request's host. */
    hostName?: string;
    /** Replaces the matched prefix of the key (the whole key is kept otherwise). */
    replaceKeyPrefixWith?: string;
    /** Replaces the whole key. */
    replaceKeyWith?: string;
    /** 3XX, 301 by default. */
    httpRedirectCode?: number;
  };
}

/** S3's bound on a website's routing rules. */
export const ROUTING_RULES_MAX = 50;

/** Why a routing rule cannot be kept; undefined when it can. */
export function routingRuleProblem(rule: RoutingRule): string | undefined {
  const { redirect } = rule;
  if (redirect.replaceKeyPrefixWith !== undefined && redirect.replaceKeyWith !== undefined) {
    return "a redirect replaces either the key or its prefix, not both";
  }
  const code = redirect.httpRedirectCode;
  if (code !== undefined && (!Number.isInteger(code) || code < 301 || code > 399)) {
    return `the redirect code ${code} is not a 3XX code other than 300`;
  }
  const error = rule.httpErrorCodeReturnedEquals;
  if (error !== undefined && (!Number.isInteger(error) || error < 400 || error > 599)) {
    return `the error code ${error} is not a 4XX or 5XX code`;
  }
  if (redirect.hostName !== undefined && !/^[a-z0-9.-]+(:\d+)?$/i.test(redirect.hostName)) {
    return "a redirect's host name must be a host name, with a port or not";
  }
  return undefined;
}

/** The first rule that applies to `key`, before its lookup (no error) or after `errorStatus`. */
export function matchingRoutingRule(
  rules: RoutingRule[] | undefined,
  key: string,
  errorStatus?: number,
): RoutingRule | undefined {
  return rules?.find((rule) =>
    key.startsWith(rule.keyPrefixEquals ?? "") &&
    rule.httpErrorCodeReturnedEquals === errorStatus
  );
}

/**
 * Where a rule redirects a request for `key`, and with which status; the
 * protocol and host default to the request's.
 */
export function routingRedirect(
  rule: RoutingRule,
  key: string,
  request: { protocol: string; host: string },
): { status: number; location: string } {
  const { redirect } = rule;
  const prefix = rule.keyPrefixEquals ?? "";
  const newKey = redirect.replaceKeyWith ??
    (redirect.replaceKeyPrefixWith === undefined
      ? key
      : redirect.replaceKeyPrefixWith + key.slice(prefix.length));
  const path = newKey.split("/").map(encodeURIComponent).join("/");
  const protocol = redirect.protocol ?? request.protocol;
  return {
    status: redirect.httpRedirectCode ?? 301,
    location: `${protocol}://${redirect.hostName ?? request.host}/${path}`,
  };
}

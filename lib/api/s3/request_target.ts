/** Which bucket and key a request addresses: path style or virtual-hosted style. */
import { S3Error } from "./s3_error.ts";
import { splitRawUrl } from "./auth/canonical_request.ts";

export interface RequestTarget {
  bucket?: string;
  key?: string;
  query: URLSearchParams;
  /** The raw path, for error documents. */
  path: string;
  /** The bucket came in the Host header (virtual-hosted style). */
  bucketInHost?: boolean;
}

function decodePath(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new S3Error("InvalidURI", 400, "Couldn't parse the specified URI.");
  }
}

/** The hostname of a Host header, lowercased, without port. */
function hostnameOf(host: string | null): string {
  if (!host) return "";
  const h = host.toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

export function resolveTarget(req: Request, rootDomain: string | undefined): RequestTarget {
  const { path, query } = splitRawUrl(req.url);
  const params = new URLSearchParams(query);
  const host = hostnameOf(req.headers.get("host"));
  if (rootDomain && host.endsWith(`.${rootDomain}`)) {
    const bucket = host.slice(0, -rootDomain.length - 1);
    const key = path.length > 1 ? decodePath(path.slice(1)) : undefined;
    return { bucket, key, query: params, path, bucketInHost: true };
  }
  const withoutSlash = path.slice(1);
  if (withoutSlash === "") return { query: params, path };
  const slash = withoutSlash.indexOf("/");
  if (slash < 0) return { bucket: decodePath(withoutSlash), query: params, path };
  const bucket = decodePath(withoutSlash.slice(0, slash));
  const keyPart = withoutSlash.slice(slash + 1);
  return { bucket, key: keyPart === "" ? undefined : decodePath(keyPart), query: params, path };
}

/**
 * The URL of an object as the request reached it (scheme and Host), for the
 * Location of an upload's answer: the bucket in the path, or in the host
 * for a virtual-hosted request.
 */
export function objectUrl(
  req: Request,
  target: RequestTarget,
  bucket: string,
  key: string,
): string {
  const url = new URL(req.url);
  const path = key.split("/").map(encodeURIComponent).join("/");
  const bucketPath = target.bucketInHost ? "" : `/${encodeURIComponent(bucket)}`;
  return `${url.protocol}//${req.headers.get("host") ?? url.host}${bucketPath}/${path}`;
}

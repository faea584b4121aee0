/**
 * The S3 front end as a Request -> Response function: resolves the target,
 * authenticates, picks the operation from method and sub-resources, and turns
 * every failure into an S3 XML error.
 */
import { ModelError } from "../../model/access.ts";
import { DataTooLargeError, IncompleteDataError } from "../../model/object_data.ts";
import { QuorumError } from "../../rpc/quorum.ts";
import { SpoolTooLargeError } from "../../block/spool.ts";
import { MissingBlockError } from "../../block/block_manager.ts";
import { CorruptBlockError } from "../../block/block_store.ts";
import { log, logEnabled, SampledLog } from "../../util/log.ts";
import { errorMessage } from "../../util/errors.ts";
import { type AuthContext, authenticateRequest } from "./auth/authenticate.ts";
import { parseRawQuery, splitRawUrl } from "./auth/canonical_request.ts";
import { withQueryHeaders } from "./auth/presigned_headers.ts";
import {
  handleCreateBucket,
  handleDeleteBucket,
  handleGetBucketLocation,
  handleHeadBucket,
  handleListBuckets,
} from "./bucket_handlers.ts";
import type { S3Context, S3Request } from "./context.ts";
import {
  handleDeleteBucketWebsite,
  handleGetBucketWebsite,
  handlePutBucketWebsite,
} from "./bucket_website.ts";
import {
  addCorsHeaders,
  handleDeleteBucketCors,
  handleGetBucketCors,
  handlePutBucketCors,
  preflightResponse,
} from "./cors.ts";
import type { Bucket } from "../../model/bucket_table.ts";
import { handleDeleteObject } from "./delete_object.ts";
import {
  handleDeleteBucketPolicy,
  handleGetBucketPolicy,
  handleGetBucketPolicyStatus,
  handlePutBucketPolicy,
  publicAccessAllows,
} from "./bucket_policy.ts";
import {
  handleDeleteBucketLifecycle,
  handleGetBucketLifecycle,
  handlePutBucketLifecycle,
} from "./bucket_lifecycle.ts";
import { handleGetObjectAttributes } from "./object_attributes.ts";
import {
  handleDeleteBucketTagging,
  handleDeleteObjectTagging,
  handleGetBucketTagging,
  handleGetObjectTagging,
  handlePutBucketTagging,
  handlePutObjectTagging,
} from "./object_tagging.ts";
import { refuseUnsupportedEncryption } from "./encryption.ts";
import {
  handleDeleteBucketEncryption,
  handleGetBucketEncryption,
  handlePutBucketEncryption,
} from "./bucket_encryption.ts";
import { handleGetObject } from "./get_object.ts";
import {
  handleListObjects,
  handleListObjectsV2,
  handleListObjectVersions,
} from "./list_objects.ts";
import { handlePutObject } from "./put_object.ts";
import { handlePostObject, isFormUpload } from "./post_object.ts";
import { handleCopyObject } from "./copy_object.ts";
import { handleDeleteObjects } from "./delete_objects.ts";
import { ConditionalConflictError } from "../../model/objects.ts";
import {
  handleAbortMultipartUpload,
  handleCompleteMultipartUpload,
  handleCreateMultipartUpload,
  handleListMultipartUploads,
  handleListParts,
  handleUploadPart,
  handleUploadPartCopy,
} from "./multipart_handlers.ts";
import { type RequestTarget, resolveTarget } from "./request_target.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { errorResponse } from "./xml.ts";
import { drainUnreadBody } from "./unread_body.ts";
import { checkUploadSpace, outOfSpaceError } from "./upload_space.ts";
import {
  handleGetObjectLegalHold,
  handleGetObjectLockConfiguration,
  handleGetObjectRetention,
  handlePutObjectLegalHold,
  handlePutObjectLockConfiguration,
  handlePutObjectRetention,
} from "./object_lock.ts";
import { handleGetBucketVersioning, handlePutBucketVersioning } from "./bucket_versioning.ts";
import {
  handleGetBucketAcl,
  handleGetObjectAcl,
  handlePutBucketNotification,
  setAclPrivate,
  unsetBucketConfiguration,
} from "./unset_configuration.ts";
import {
  handleDeleteBucketOwnershipControls,
  handleGetBucketOwnershipControls,
  handlePutBucketOwnershipControls,
} from "./ownership_controls.ts";
import {
  handleDeletePublicAccessBlock,
  handleGetPublicAccessBlock,
  handlePutPublicAccessBlock,
  refuseBlockedPublicAcl,
} from "./public_access_block.ts";

type Handler = (r: S3Request) => Promise<Response>;

/**
 * Bucket sub-resources remise does not implement: never taken for a plain
 * GET; reading some answers "not configured" (see unset_configuration.ts),
 * the rest is NotImplemented.
 */
const UNIMPLEMENTED_BUCKET_SUBRESOURCES = new Set([
  "accelerate",
  "acl",
  "analytics",
  "intelligent-tiering",
  "inventory",
  "logging",
  "metrics",
  "notification",
  "replication",
  "requestPayment",
  "versions",
  "session",
]);
const UNIMPLEMENTED_OBJECT_SUBRESOURCES = new Set([
  "acl",
  "torrent",
  "restore",
  "select",
]);

/**
 * Every sub-resource S3 has, implemented or not: a request naming one that
 * its method does not serve is refused, never taken for the plain operation
 * (a DELETE ?versioning deleting the bucket, a PUT ?versioning storing the
 * XML as the object).
 */
const KNOWN_SUBRESOURCES = new Set([
  ...UNIMPLEMENTED_BUCKET_SUBRESOURCES,
  ...UNIMPLEMENTED_OBJECT_SUBRESOURCES,
  "attributes",
  "cors",
  "delete",
  "encryption",
  "legal-hold",
  "lifecycle",
  "location",
  "object-lock",
  "ownershipControls",
  "policy",
  "policyStatus",
  "publicAccessBlock",
  "retention",
  "tagging",
  "uploads",
  "versioning",
  "website",
]);

/** The first of the query's parameters that is one of `names` (a query has few: walk them). */
function subresource(query: URLSearchParams, names: ReadonlySet<string>): string | undefined {
  // Most requests have no query; an iterator over an empty one still costs a few µs.
  if (query.size === 0) return undefined;
  for (const name of query.keys()) if (names.has(name)) return name;
  return undefined;
}

function notImplemented(name: string): Handler {
  return () => Promise.reject(s3Errors.notImplemented(name));
}

const route = (name: string, handler: Handler) => ({ name, handler });
const unsupported = (what: string, sub: string | undefined) =>
  sub
    ? route(`${what}(${sub})`, notImplemented(`${what} ?${sub}`))
    : route(what, notImplemented(what));

/** The handler for a request, named after the AWS operation. */
export function routeOperation(
  method: string,
  target: RequestTarget,
  headers: Headers,
): { name: string; handler: Handler } {
  const q = target.query;
  const resourceType = target.key !== undefined ? "OBJECT" : target.bucket ? "BUCKET" : "SERVICE";
  const notAllowed = route(
    "Unknown",
    () => Promise.reject(methodNotAllowed(method, resourceType)),
  );
  if (target.bucket === undefined) {
    return method === "GET" ? route("ListBuckets", handleListBuckets) : notAllowed;
  }
  if (target.key === undefined) {
    const sub = subresource(q, UNIMPLEMENTED_BUCKET_SUBRESOURCES);
    const known = subresource(q, KNOWN_SUBRESOURCES);
    switch (method) {
      case "GET":
        if (q.has("location")) return route("GetBucketLocation", handleGetBucketLocation);
        if (q.has("versioning")) return route("GetBucketVersioning", handleGetBucketVersioning);
        if (q.has("uploads")) return route("ListMultipartUploads", handleListMultipartUploads);
        if (q.has("acl")) return route("GetBucketAcl", handleGetBucketAcl);
        if (q.has("versions")) return route("ListObjectVersions", handleListObjectVersions);
        if (q.has("website")) return route("GetBucketWebsite", handleGetBucketWebsite);
        if (q.has("cors")) return route("GetBucketCors", handleGetBucketCors);
        if (q.has("policy")) return route("GetBucketPolicy", handleGetBucketPolicy);
        if (q.has("tagging")) return route("GetBucketTagging", handleGetBucketTagging);
        if (q.has("policyStatus")) {
          return route("GetBucketPolicyStatus", handleGetBucketPolicyStatus);
        }
        if (q.has("lifecycle")) {
          return route("GetBucketLifecycleConfiguration", handleGetBucketLifecycle);
        }
        if (q.has("ownershipControls")) {
          return route("GetBucketOwnershipControls", handleGetBucketOwnershipControls);
        }
        if (q.has("publicAccessBlock")) {
          return route("GetPublicAccessBlock", handleGetPublicAccessBlock);
        }
        if (q.has("encryption")) return route("GetBucketEncryption", handleGetBucketEncryption);
        if (q.has("object-lock")) {
          return route("GetObjectLockConfiguration", handleGetObjectLockConfiguration);
        }
        if (sub) return unsetBucketConfiguration(q) ?? unsupported("GetBucket", sub);
        if (known) return notAllowed;
        if (q.get("list-type") === "2") return route("ListObjectsV2", handleListObjectsV2);
        return route("ListObjects", handleListObjects);
      case "HEAD":
        if (known) return notAllowed;
        return route("HeadBucket", handleHeadBucket);
      case "PUT":
        if (q.has("acl")) return route("PutBucketAcl", setAclPrivate("PutBucketAcl"));
        if (q.has("website")) return route("PutBucketWebsite", handlePutBucketWebsite);
        if (q.has("cors")) return route("PutBucketCors", handlePutBucketCors);
        if (q.has("policy")) return route("PutBucketPolicy", handlePutBucketPolicy);
        if (q.has("tagging")) return route("PutBucketTagging", handlePutBucketTagging);
        if (q.has("lifecycle")) {
          return route("PutBucketLifecycleConfiguration", handlePutBucketLifecycle);
        }
        if (q.has("versioning")) return route("PutBucketVersioning", handlePutBucketVersioning);
        if (q.has("ownershipControls")) {
          return route("PutBucketOwnershipControls", handlePutBucketOwnershipControls);
        }
        if (q.has("publicAccessBlock")) {
          return route("PutPublicAccessBlock", handlePutPublicAccessBlock);
        }
        if (q.has("encryption")) return route("PutBucketEncryption", handlePutBucketEncryption);
        if (q.has("object-lock")) {
          return route("PutObjectLockConfiguration", handlePutObjectLockConfiguration);
        }
        if (q.has("notification")) {
          return route("PutBucketNotificationConfiguration", handlePutBucketNotification);
        }
        if (sub) return unsupported("PutBucket", sub);
        if (known) return notAllowed;
        return route("CreateBucket", handleCreateBucket);
      case "DELETE":
        if (q.has("website")) return route("DeleteBucketWebsite", handleDeleteBucketWebsite);
        if (q.has("cors")) return route("DeleteBucketCors", handleDeleteBucketCors);
        if (q.has("policy")) return route("DeleteBucketPolicy", handleDeleteBucketPolicy);
        if (q.has("tagging")) return route("DeleteBucketTagging", handleDeleteBucketTagging);
        if (q.has("lifecycle")) return route("DeleteBucketLifecycle", handleDeleteBucketLifecycle);
        if (q.has("ownershipControls")) {
          return route("DeleteBucketOwnershipControls", handleDeleteBucketOwnershipControls);
        }
        if (q.has("publicAccessBlock")) {
          return route("DeletePublicAccessBlock", handleDeletePublicAccessBlock);
        }
        if (q.has("encryption")) {
          return route("DeleteBucketEncryption", handleDeleteBucketEncryption);
        }
        if (sub) return unsupported("DeleteBucket", sub);
        if (known) return notAllowed;
        return route("DeleteBucket", handleDeleteBucket);
      case "POST":
        if (q.has("delete")) return route("DeleteObjects", handleDeleteObjects);
        return unsupported("PostBucket", sub);
    }
    return notAllowed;
  }
  // A version id names a version that exists: there is no writing one.
  if (
    q.has("versionId") &&
    (method === "POST" ||
      method === "PUT" && !["tagging", "acl", "retention", "legal-hold"].some((s) => q.has(s)))
  ) {
    return unsupported(`${method}Object`, "versionId");
  }
  const sub = subresource(q, UNIMPLEMENTED_OBJECT_SUBRESOURCES);
  const known = subresource(q, KNOWN_SUBRESOURCES);
  switch (method) {
    case "GET":
      if (q.has("uploadId")) return route("ListParts", handleListParts);
      if (q.has("acl")) return route("GetObjectAcl", handleGetObjectAcl);
      if (q.has("tagging")) return route("GetObjectTagging", handleGetObjectTagging);
      if (q.has("attributes")) return route("GetObjectAttributes", handleGetObjectAttributes);
      if (q.has("retention")) return route("GetObjectRetention", handleGetObjectRetention);
      if (q.has("legal-hold")) return route("GetObjectLegalHold", handleGetObjectLegalHold);
      if (sub) return unsupported("GetObject", sub);
      if (known) return notAllowed;
      return route("GetObject", (r) => handleGetObject(r, false));
    case "HEAD":
      if (sub) return unsupported("HeadObject", sub);
      if (known) return notAllowed;
      return route("HeadObject", (r) => handleGetObject(r, true));
    case "PUT":
      if (q.has("partNumber") && !q.has("uploadId")) {
        // Not a PutObject that would store a part's bytes as the whole object.
        return route("UploadPart", () => Promise.reject(partWithoutUpload()));
      }
      if (q.has("uploadId")) {
        return headers.has("x-amz-copy-source")
          ? route("UploadPartCopy", handleUploadPartCopy)
          : route("UploadPart", handleUploadPart);
      }
      if (q.has("acl")) return route("PutObjectAcl", setAclPrivate("PutObjectAcl"));
      if (q.has("tagging")) return route("PutObjectTagging", handlePutObjectTagging);
      if (q.has("retention")) return route("PutObjectRetention", handlePutObjectRetention);
      if (q.has("legal-hold")) return route("PutObjectLegalHold", handlePutObjectLegalHold);
      if (sub) return unsupported("PutObject", sub);
      if (known) return notAllowed;
      if (headers.has("x-amz-copy-source")) return route("CopyObject", handleCopyObject);
      return route("PutObject", handlePutObject);
    case "DELETE":
      if (q.has("uploadId")) return route("AbortMultipartUpload", handleAbortMultipartUpload);
      if (q.has("tagging")) return route("DeleteObjectTagging", handleDeleteObjectTagging);
      if (sub) return unsupported("DeleteObject", sub);
      if (known) return notAllowed;
      return route("DeleteObject", handleDeleteObject);
    case "POST":
      if (q.has("uploads")) return route("CreateMultipartUpload", handleCreateMultipartUpload);
      if (q.has("uploadId")) return route("CompleteMultipartUpload", handleCompleteMultipartUpload);
      return unsupported("PostObject", sub);
  }
  return notAllowed;
}

/**
 * The request's body as its handler was given it: what authentication made of
 * it, else the request's own; undefined when something else read it (how far
 * is unknown).
 */
function bodyLeft(
  req: Request,
  authorized: S3Request | undefined,
): ReadableStream<Uint8Array> | null | undefined {
  if (authorized) return authorized.body;
  return req.bodyUsed ? undefined : req.body;
}

function partWithoutUpload(): S3Error {
  return s3Errors.invalidArgument(
    "A part is uploaded with both partNumber and uploadId",
    "uploadId",
    "",
  );
}

function methodNotAllowed(method: string, resourceType: string): S3Error {
  return new S3Error(
    "MethodNotAllowed",
    405,
    "The specified method is not allowed against this resource.",
    { Method: method, ResourceType: resourceType },
  );
}

/** Authenticates a request: signed by a key, or anonymous (see `checkPublicAccess`). */
async function authenticate(
  r: Omit<S3Request, "accessKeyId" | "body" | "contentLength" | "trailerChecksum"> & {
    auth: AuthContext;
  },
): Promise<S3Request> {
  const { auth: authContext, ...request } = r;
  // Before authentication wraps the body, which a refusal then reads and drops.
  refuseUnsupportedEncryption((name) => r.req.headers.get(name), r.req.method);
  const auth = await authenticateRequest(r.req, authContext);
  return auth.kind === "signed"
    ? {
      ...request,
      accessKeyId: auth.accessKeyId,
      body: auth.body,
      contentLength: auth.contentLength,
      trailerChecksum: auth.trailerChecksum,
    }
    : {
      ...request,
      accessKeyId: "",
      anonymous: true,
      body: auth.body,
      contentLength: undefined,
      trailerChecksum: () => undefined,
    };
}

/**
 * Notes whether the bucket's policy makes `operation` public; a request
 * without credentials passes only then. Refuses a public ACL the bucket's
 * public access block forbids.
 */
async function checkPublicAccess(r: S3Request, operation: string): Promise<void> {
  if (!r.anonymous) {
    const bucket = await r.bucket?.catch(() => undefined);
    refuseBlockedPublicAcl(bucket, operation, r.req.headers);
    r.publicRead = bucket !== undefined && publicAccessAllows(bucket, operation, r.target.key);
    return;
  }
  // As S3 does: a bucket that does not exist is NoSuchBucket, whoever asks
  // (but creating one takes credentials).
  const bucket = await r.bucket;
  if (r.target.bucket !== undefined && !bucket && operation !== "CreateBucket") {
    throw s3Errors.noSuchBucket(r.target.bucket);
  }
  if (!bucket || !publicAccessAllows(bucket, operation, r.target.key)) {
    throw s3Errors.accessDenied();
  }
  r.publicRead = true;
}

/** During an outage every request fails alike: one line every 10 s, with the count left out. */
const quorumWarnings = new SampledLog("remise::api::s3", "warn", 10_000);
const outOfSpaceWarnings = new SampledLog("remise::api::s3", "warn", 10_000);

/** Maps errors from lower layers to S3 errors; unknown errors are InternalError and logged. */
export function toS3Error(e: unknown, requestId: string): S3Error {
  if (e instanceof S3Error) return e;
  if (e instanceof ModelError) {
    switch (e.code) {
      case "NoSuchBucket":
        return new S3Error("NoSuchBucket", 404, e.message);
      case "BucketNotEmpty":
        return new S3Error("BucketNotEmpty", 409, e.message);
      case "BucketAlreadyExists":
        return new S3Error("BucketAlreadyExists", 409, e.message);
      case "InvalidBucketName":
        return new S3Error("InvalidBucketName", 400, e.message);
      default:
        return new S3Error("InvalidArgument", 400, e.message);
    }
  }
  const full = outOfSpaceError(e);
  if (full) {
    outOfSpaceWarnings.log(`request ${requestId}: ${errorMessage(e)}`);
    return full;
  }
  if (e instanceof ConditionalConflictError) {
    return new S3Error("ConditionalRequestConflict", 409, e.message);
  }
  if (e instanceof QuorumError) {
    // Which nodes failed, and their addresses, are for the node's log, not for clients.
    quorumWarnings.log(`request ${requestId}: ${e.message}`);
    return new S3Error(
      "ServiceUnavailable",
      503,
      // One node's disk refusing writes, or nodes down: `remise status` names which.
      "Too few of the data's replicas could be read or written (see remise status): retry later.",
    );
  }
  if (e instanceof DataTooLargeError || e instanceof SpoolTooLargeError) {
    return new S3Error(
      "EntityTooLarge",
      400,
      "Your proposed upload exceeds the maximum allowed object size.",
    );
  }
  if (
    e instanceof MissingBlockError || e instanceof CorruptBlockError ||
    e instanceof IncompleteDataError
  ) {
    log("remise::api::s3", "error", `request ${requestId}: ${e.message}`);
    return s3Errors.internal("Some of the object's data cannot be read on this node");
  }
  log("remise::api::s3", "error", `request ${requestId} failed: ${errorMessage(e)}`);
  if (e instanceof Error && e.stack && logEnabled("remise::api::s3", "debug")) {
    console.error(e.stack);
  }
  return s3Errors.internal();
}

let requestCounter = 0;

/**
 * The request with the headers its URL stands for. An HTTP/2 request (an
 * HTTPS client may choose HTTP/2) has no Host header: its authority is the
 * URL's. SigV4 signs it as "host", and virtual-hosted requests name their
 * bucket in it, so it is put back. A presigned URL's query holds headers
 * (see presigned_headers.ts), which decide the operation (a copy source)
 * and what is stored.
 */
function withHeadersOfUrl(req: Request): Request {
  let headers: Headers | undefined;
  if (!req.headers.has("host")) {
    headers = new Headers(req.headers);
    headers.set("host", new URL(req.url).host);
  }
  if (req.url.includes("Signature=") && !req.headers.has("authorization")) {
    const params = parseRawQuery(splitRawUrl(req.url).query);
    headers = withQueryHeaders(headers ?? req.headers, params) ?? headers;
  }
  if (headers === undefined) return req;
  // Not `new Request(req, ...)`, which would follow (and make Deno warn about) its signal.
  return new Request(req.url, { method: req.method, headers, body: req.body });
}

export function createS3Handler(
  ctx: S3Context,
  nowMs: () => number = Date.now,
): (req: Request) => Promise<Response> {
  const nodeTag = crypto.randomUUID().slice(0, 8).toUpperCase();
  const authBase = {
    region: ctx.region,
    nowMs,
    getSecret: async (id: string) => (await ctx.access.getKeyCached(id))?.secret,
    bodyIdleMs: ctx.bodyIdleMs,
  };
  return async (incoming: Request): Promise<Response> => {
    let req = incoming;
    const started = performance.now();
    const requestId = `${nodeTag}${(++requestCounter).toString(16).toUpperCase().padStart(8, "0")}`;
    let target: RequestTarget | undefined;
    let name = "Unknown";
    let response: Response;
    let bucket: Promise<Bucket | undefined> | undefined;
    let authorized: S3Request | undefined;
    let error: S3Error | undefined;
    try {
      req = withHeadersOfUrl(incoming);
      target = resolveTarget(req, ctx.rootDomain);
      bucket = target.bucket === undefined
        ? undefined
        : ctx.access.resolveBucketCached(target.bucket);
      bucket?.catch(() => {}); // awaited, and its error reported, by the handler
      const auth: AuthContext = {
        ...authBase,
        hostBucket: target.bucketInHost ? target.bucket : undefined,
      };
      if (req.method === "OPTIONS") {
        // A browser's CORS preflight: it carries no credentials.
        name = "PreflightRequest";
        response = preflightResponse(await bucket, req);
      } else if (isFormUpload(req, target)) {
        // An HTML form's upload: the form carries its own signature.
        name = "PostObject";
        response = await handlePostObject(ctx, auth, req, target);
      } else {
        const route = routeOperation(req.method, target, req.headers);
        name = route.name;
        authorized = await authenticate({ ctx, req, requestId, target, bucket, auth });
        await checkPublicAccess(authorized, route.name);
        checkUploadSpace(ctx, route.name);
        response = await route.handler(authorized);
      }
      response.headers.set("x-amz-request-id", requestId);
      // A handler that answers without reading the body (CreateMultipartUpload given one, a
      // DELETE) leaves it unread; a locked one was read.
      const unread = bodyLeft(req, authorized);
      if (unread && !unread.locked && !(await drainUnreadBody(unread, req.headers))) {
        response.headers.set("connection", "close");
      }
    } catch (e) {
      error = toS3Error(e, requestId);
      if (error.code === "IncompleteBody" && ctx.stopping?.()) {
        // The node cut the upload off as it stopped: another node, or this one later, takes it.
        error = new S3Error("ServiceUnavailable", 503, "The node is shutting down; please retry.");
      }
      response = errorResponse(error, target?.path ?? "/", requestId, req.method === "HEAD");
      // The client reads this answer once its body is sent: read the rest of it, if not too large.
      const body = bodyLeft(req, authorized);
      if (body === undefined || !(await drainUnreadBody(body, req.headers))) {
        response.headers.set("connection", "close");
      }
    }
    if (bucket && req.method !== "OPTIONS" && req.headers.has("origin")) {
      addCorsHeaders(response, await bucket.catch(() => undefined), req);
    }
    if (
      req.headers.get("expect")?.toLowerCase() === "100-continue" &&
      (!req.bodyUsed || req.headers.get("content-length") === "0")
    ) {
      // Deno.serve sends no "100 Continue" for a body it never reads (a
      // refused request) nor for an empty one, read or not; botocore then
      // misreads the next response on the connection and waits for its read
      // timeout (60 s), so this response is the connection's last.
      response.headers.set("connection", "close");
    }
    ctx.metrics?.record(name, response.status, (performance.now() - started) / 1000);
    if (logEnabled("remise::api::s3", "debug")) {
      const ms = (performance.now() - started).toFixed(1);
      const key = authorized
        ? ` by ${authorized.anonymous ? "anonymous" : authorized.accessKeyId}`
        : "";
      const why = error ? ` ${error.code}${error.detail ? `: ${error.detail}` : ""}` : "";
      log(
        "remise::api::s3",
        "debug",
        `${req.method} ${
          target?.path ?? req.url
        } ${name}${key} -> ${response.status}${why} (${ms} ms)`,
      );
    }
    return response;
  };
}

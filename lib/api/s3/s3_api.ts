/**
 * The S3 front end as a Request -> Response function: resolves the target,
 * authenticates, picks the operation from method and sub-resources, and turns
 * every failure into an S3 XML error.
 */
import { ModelError } from "../../model/access.ts";
import { DataTooLargeError } from "../../model/object_data.ts";
import { MissingBlockError } from "../../block/block_manager.ts";
import { CorruptBlockError } from "../../block/block_store.ts";
import { log, logEnabled } from "../../util/log.ts";
import { errorMessage } from "../../util/errors.ts";
import { authenticateRequest } from "./auth/authenticate.ts";
import {
  handleCreateBucket,
  handleDeleteBucket,
  handleGetBucketLocation,
  handleGetBucketVersioning,
  handleHeadBucket,
  handleListBuckets,
} from "./bucket_handlers.ts";
import type { S3Context, S3Request } from "./context.ts";
import { handleDeleteObject } from "./delete_object.ts";
import { handleGetObject } from "./get_object.ts";
import { handleListObjects, handleListObjectsV2 } from "./list_objects.ts";
import { handlePutObject } from "./put_object.ts";
import { type RequestTarget, resolveTarget } from "./request_target.ts";
import { S3Error, s3Errors } from "./s3_error.ts";
import { errorResponse } from "./xml.ts";

type Handler = (r: S3Request) => Promise<Response>;

/** Bucket sub-resources remise does not implement yet: answered NotImplemented, never as a plain GET. */
const UNIMPLEMENTED_BUCKET_SUBRESOURCES = [
  "accelerate",
  "acl",
  "analytics",
  "cors",
  "encryption",
  "intelligent-tiering",
  "inventory",
  "lifecycle",
  "logging",
  "metrics",
  "notification",
  "object-lock",
  "ownershipControls",
  "policy",
  "policyStatus",
  "publicAccessBlock",
  "replication",
  "requestPayment",
  "tagging",
  "versions",
  "website",
  "uploads",
  "delete",
  "session",
];
const UNIMPLEMENTED_OBJECT_SUBRESOURCES = [
  "acl",
  "tagging",
  "retention",
  "legal-hold",
  "torrent",
  "restore",
  "select",
  "attributes",
  "uploads",
  "uploadId",
  "versionId",
];

function subresource(query: URLSearchParams, names: string[]): string | undefined {
  return names.find((n) => query.has(n));
}

function notImplemented(name: string): Handler {
  return () => Promise.reject(s3Errors.notImplemented(name));
}

/** The handler for a request, named after the AWS operation. */
export function routeOperation(
  method: string,
  target: RequestTarget,
  headers: Headers,
): { name: string; handler: Handler } {
  const q = target.query;
  if (target.bucket === undefined) {
    if (method === "GET") return { name: "ListBuckets", handler: handleListBuckets };
    return { name: "Unknown", handler: () => Promise.reject(methodNotAllowed(method)) };
  }
  if (target.key === undefined) {
    const sub = subresource(q, UNIMPLEMENTED_BUCKET_SUBRESOURCES);
    switch (method) {
      case "GET":
        if (q.has("location")) {
          return { name: "GetBucketLocation", handler: handleGetBucketLocation };
        }
        if (q.has("versioning")) {
          return { name: "GetBucketVersioning", handler: handleGetBucketVersioning };
        }
        if (sub) {
          return { name: `GetBucket(${sub})`, handler: notImplemented(`GET ?${sub} on a bucket`) };
        }
        if (q.get("list-type") === "2") {
          return { name: "ListObjectsV2", handler: handleListObjectsV2 };
        }
        return { name: "ListObjects", handler: handleListObjects };
      case "HEAD":
        return { name: "HeadBucket", handler: handleHeadBucket };
      case "PUT":
        if (sub || q.has("versioning")) {
          const s = sub ?? "versioning";
          return { name: `PutBucket(${s})`, handler: notImplemented(`PUT ?${s} on a bucket`) };
        }
        return { name: "CreateBucket", handler: handleCreateBucket };
      case "DELETE":
        if (sub) {
          return {
            name: `DeleteBucket(${sub})`,
            handler: notImplemented(`DELETE ?${sub} on a bucket`),
          };
        }
        return { name: "DeleteBucket", handler: handleDeleteBucket };
      case "POST":
        return {
          name: "PostBucket",
          handler: notImplemented(sub ? `POST ?${sub} on a bucket` : "POST on a bucket"),
        };
    }
    return { name: "Unknown", handler: () => Promise.reject(methodNotAllowed(method)) };
  }
  const sub = subresource(q, UNIMPLEMENTED_OBJECT_SUBRESOURCES);
  switch (method) {
    case "GET":
      if (sub) {
        return { name: `GetObject(${sub})`, handler: notImplemented(`GET ?${sub} on an object`) };
      }
      return { name: "GetObject", handler: (r) => handleGetObject(r, false) };
    case "HEAD":
      if (sub) {
        return { name: `HeadObject(${sub})`, handler: notImplemented(`HEAD ?${sub} on an object`) };
      }
      return { name: "HeadObject", handler: (r) => handleGetObject(r, true) };
    case "PUT":
      if (sub || q.has("partNumber")) {
        return {
          name: "PutObject(sub)",
          handler: notImplemented(`PUT ?${sub ?? "partNumber"} on an object`),
        };
      }
      if (headers.has("x-amz-copy-source")) {
        return { name: "CopyObject", handler: notImplemented("CopyObject") };
      }
      return { name: "PutObject", handler: handlePutObject };
    case "DELETE":
      if (sub) {
        return {
          name: `DeleteObject(${sub})`,
          handler: notImplemented(`DELETE ?${sub} on an object`),
        };
      }
      return { name: "DeleteObject", handler: handleDeleteObject };
    case "POST":
      return {
        name: "PostObject",
        handler: notImplemented(sub ? `POST ?${sub} on an object` : "POST on an object"),
      };
  }
  return { name: "Unknown", handler: () => Promise.reject(methodNotAllowed(method)) };
}

function methodNotAllowed(method: string): S3Error {
  return new S3Error(
    "MethodNotAllowed",
    405,
    "The specified method is not allowed against this resource.",
    {
      Method: method,
      ResourceType: "OBJECT",
    },
  );
}

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
  if (e instanceof DataTooLargeError) {
    return new S3Error(
      "EntityTooLarge",
      400,
      "Your proposed upload exceeds the maximum allowed object size.",
    );
  }
  if (e instanceof MissingBlockError || e instanceof CorruptBlockError) {
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

export function createS3Handler(
  ctx: S3Context,
  nowMs: () => number = Date.now,
): (req: Request) => Promise<Response> {
  const nodeTag = crypto.randomUUID().slice(0, 8).toUpperCase();
  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    const requestId = `${nodeTag}${(++requestCounter).toString(16).toUpperCase().padStart(8, "0")}`;
    let target: RequestTarget | undefined;
    let name = "Unknown";
    let response: Response;
    try {
      target = resolveTarget(req, ctx.rootDomain);
      const route = routeOperation(req.method, target, req.headers);
      name = route.name;
      const auth = await authenticateRequest(req, {
        region: ctx.region,
        nowMs,
        getSecret: async (id) => (await ctx.access.getKey(id))?.secret,
      });
      if (auth.kind === "anonymous") throw s3Errors.accessDenied();
      response = await route.handler({
        ctx,
        req,
        requestId,
        target,
        accessKeyId: auth.accessKeyId,
        body: auth.body,
        contentLength: auth.contentLength,
        trailerChecksum: auth.trailerChecksum,
      });
      response.headers.set("x-amz-request-id", requestId);
    } catch (e) {
      const error = toS3Error(e, requestId);
      response = errorResponse(error, target?.path ?? "/", requestId, req.method === "HEAD");
      // Drain what is left of a refused upload only when small; otherwise close the connection.
      if (req.body && !req.bodyUsed) req.body.cancel().catch(() => {});
    }
    if (logEnabled("remise::api::s3", "debug")) {
      const ms = (performance.now() - started).toFixed(1);
      log(
        "remise::api::s3",
        "debug",
        `${req.method} ${target?.path ?? req.url} ${name} -> ${response.status} (${ms} ms)`,
      );
    }
    return response;
  };
}

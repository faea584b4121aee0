/**
 * The admin API: access keys, buckets and rights over HTTP, JSON in and out.
 * A `Request -> Response` function, testable without a port; the server
 * serves it on `admin_bind_addr`.
 *
 * - `GET /health` answers without authentication; every other route needs
 *   `Authorization: Bearer <admin token>` (missing: 401, wrong: 403), checked
 *   before anything else so that nothing changes and nothing leaks.
 * - Errors are `{"error": message, "code": code}` with the HTTP status the
 *   model error's code maps to.
 * - Names in paths are percent-decoded; access keys in paths and bodies are
 *   patterns: an id, an unambiguous id prefix or an exact name.
 *
 * @module
 */
import { jsonResponse } from "./_json.ts";
import { handleMaintenanceRoute, type Maintenance } from "./maintenance_routes.ts";
import { handleClusterRoute } from "./cluster_routes.ts";
import { metricsResponse, type MetricsSources } from "./metrics_route.ts";
import { readinessResponse } from "./readiness.ts";
import { type ConsistencyMode, DEFAULT_CONSISTENCY_MODE } from "../../util/config.ts";
import type { System } from "../../rpc/system.ts";
import { QuorumError } from "../../rpc/quorum.ts";
import { isOutOfSpace, isOutOfSpaceMessage } from "../../util/free_space.ts";
import type { Access, BucketInfo, KeyInfo, ModelErrorCode } from "../../model/access.ts";
import { ModelError } from "../../model/access.ts";
import type { AccessKey } from "../../model/key_table.ts";
import {
  type Bucket,
  type BucketPermission,
  type ObjectLockConfig,
  PUBLIC_ACCESS_BLOCK_SETTINGS,
  type PublicAccessBlock,
} from "../../model/bucket_table.ts";
import { errorMessage } from "../../util/errors.ts";
import { sha256Hex, timingSafeEqualString } from "../../util/hash.ts";
import { log } from "../../util/log.ts";
import { readBounded } from "../../util/read_bounded.ts";

/** Largest request body: the admin API takes small JSON documents only. */
export const ADMIN_BODY_MAX_BYTES = 64 * 1024;
/** Longest access key name: a label for people, not a document. */
export const KEY_NAME_MAX_CHARS = 256;

const LOG_MODULE = "remise::admin";

/** What the admin handler needs: the model, the token, and the node's status. */
export interface AdminContext {
  access: Access;
  /** The bearer token every route but /health requires. */
  token: string;
  /** What `GET /v1/status` answers. */
  nodeInfo: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** The cluster membership and layout, when the node runs with certificates. */
  system?: System;
  /** Background workers and repairs. */
  maintenance?: Maintenance;
  /** What GET /metrics reports besides the cluster and the workers. */
  metrics?: MetricsSources;
  /** A token that opens GET /metrics only (for Prometheus), besides the admin token. */
  metricsToken?: string;
  /** The quorums GET /ready checks the cluster against ("consistent" by default). */
  consistencyMode?: ConsistencyMode;
}

// --- The JSON documents of the API (the CLI's client uses these types). ---

/** An item of `GET /v1/keys`. */
export interface KeySummaryJson {
  accessKeyId: string;
  name: string;
  createdAt: string;
}

/** The answer to `POST /v1/keys`. */
export interface CreatedKeyJson {
  accessKeyId: string;
  secretAccessKey: string;
  name: string;
}

/** Rights of one key on one bucket. */
export interface RightsJson {
  read: boolean;
  write: boolean;
  owner: boolean;
}

/** The answer to `GET /v1/keys/{pattern}`. */
export interface KeyInfoJson {
  accessKeyId: string;
  name: string;
  secretAccessKey: string;
  createdAt: string;
  /** May create buckets (S3 CreateBucket), becoming their owner. */
  allowCreateBucket: boolean;
  buckets: ({ name: string; id: string } & RightsJson)[];
}

/** An item of `GET /v1/buckets`. */
export interface BucketSummaryJson {
  name: string;
  id: string;
  createdAt: string;
}

/** The answer to `GET /v1/buckets/{name}`, and to allow and deny. */
export interface BucketInfoJson {
  name: string;
  id: string;
  createdAt: string;
  objects: number;
  bytes: number;
  keys: ({ accessKeyId: string; name: string } & RightsJson)[];
  /** Set while the bucket is served as a website on `web_bind_addr`. */
  website: WebsiteJson | null;
  /** Rules of its CORS and lifecycle configurations (set through S3). */
  corsRules: number;
  lifecycleRules: number;
  /** A bucket policy lets anyone read some of its objects (and the public access block allows it). */
  publicRead: boolean;
  /** The settings of S3's public access block that are on; null while it was never set (set through S3). */
  publicAccessBlock: string[] | null;
  /** "Enabled" or "Suspended"; null while versioning was never set (set through S3). */
  versioning: "Enabled" | "Suspended" | null;
  /** The default encryption (set through S3): its algorithm, and whether SSE-C uploads are blocked; null while never set. */
  defaultEncryption: { algorithm: string | null; sseCBlocked: boolean } | null;
  /** Object lock (set through S3): the default retention ("GOVERNANCE 30 days"), if any; null while off. */
  objectLock: { defaultRetention: string | null } | null;
  /** Older versions kept beside the current objects, and their bytes. */
  noncurrentVersions: number;
  noncurrentBytes: number;
}

/** A bucket's website: the body of `PUT /v1/buckets/{name}/website`, and part of its info. */
export interface WebsiteJson {
  indexDocument: string;
  errorDocument?: string;
  /** The host every request is redirected to (set through S3's PutBucketWebsite); info only. */
  redirectAllTo?: string;
  /** How many routing rules redirect some requests (set through S3's PutBucketWebsite); info only. */
  routingRules?: number;
}

/** The body of every error answer. */
export interface ErrorJson {
  error: string;
  code: string;
}

/** An answer other than success, with its status and error code. */
class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "AdminError";
  }
}

/** The index document of a website when none is named. */
const DEFAULT_INDEX_DOCUMENT = "index.html";

const badRequest = (message: string) => new AdminError(400, "InvalidRequest", message);

const MODEL_ERROR_STATUS: Record<ModelErrorCode, number> = {
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchAccessKey: 404,
  BucketAlreadyExists: 409,
  BucketNotEmpty: 409,
  AmbiguousAccessKey: 409,
  InvalidBucketName: 400,
  InvalidArgument: 400,
};

type Handler = (ctx: AdminContext, params: string[], req: Request) => Promise<Response>;

interface Route {
  /** Path segments; ":" stands for a percent-decoded parameter. */
  path: string[];
  methods: Record<string, Handler>;
}

const ROUTES: Route[] = [
  { path: ["v1", "status"], methods: { GET: status } },
  { path: ["v1", "keys"], methods: { GET: listKeys, POST: createKey } },
  { path: ["v1", "keys", ":"], methods: { GET: keyInfo, DELETE: deleteKey } },
  {
    path: ["v1", "keys", ":", "allow"],
    methods: { POST: (c, p, r) => changeKeyRights(c, p, r, true) },
  },
  {
    path: ["v1", "keys", ":", "deny"],
    methods: { POST: (c, p, r) => changeKeyRights(c, p, r, false) },
  },
  { path: ["v1", "buckets"], methods: { GET: listBuckets, POST: createBucket } },
  { path: ["v1", "buckets", ":"], methods: { GET: bucketInfo, DELETE: deleteBucket } },
  {
    path: ["v1", "buckets", ":", "allow"],
    methods: { POST: (c, p, r) => changeRights(c, p, r, true) },
  },
  {
    path: ["v1", "buckets", ":", "deny"],
    methods: { POST: (c, p, r) => changeRights(c, p, r, false) },
  },
  {
    path: ["v1", "buckets", ":", "website"],
    methods: { PUT: setWebsite, DELETE: (c, p) => removeWebsite(c, p) },
  },
];

/** Creates the admin API's request handler. Throws if `token` is empty. */
export function createAdminHandler(ctx: AdminContext): (req: Request) => Promise<Response> {
  if (ctx.token === "") throw new Error("The admin API needs a non-empty admin token");
  const tokenDigest = sha256Hex(ctx.token);
  const metricsTokenDigest = ctx.metricsToken ? sha256Hex(ctx.metricsToken) : undefined;
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/health") {
        if (req.method !== "GET") throw methodNotAllowed(["GET"]);
        return json(200, { status: "ok" });
      }
      if (url.pathname === "/ready") {
        if (req.method !== "GET") throw methodNotAllowed(["GET"]);
        return readinessResponse(ctx.system, ctx.consistencyMode ?? DEFAULT_CONSISTENCY_MODE);
      }
      if (url.pathname === "/metrics") {
        if (req.method !== "GET") throw methodNotAllowed(["GET"]);
        authenticate(req, tokenDigest, metricsTokenDigest);
        return await metricsResponse(
          ctx.metrics,
          ctx.system,
          ctx.maintenance,
          ctx.consistencyMode ?? DEFAULT_CONSISTENCY_MODE,
        );
      }
      authenticate(req, tokenDigest);
      const segments = url.pathname.split("/").slice(1);
      const maintenance = await handleMaintenanceRoute(
        ctx.maintenance,
        req.method,
        segments.join("/"),
        req,
      );
      if (maintenance) return maintenance;
      if (segments[0] === "v1" && (segments[1] === "cluster" || segments[1] === "layout")) {
        return await handleClusterRoute(
          ctx.system,
          req.method,
          segments,
          req,
          ctx.nodeInfo,
          ctx.consistencyMode,
        );
      }
      const { handler, params } = route(req.method, url.pathname);
      return await handler(ctx, params, req);
    } catch (e) {
      return errorResponse(req, url, e);
    }
  };
}

/** Throws a 401 or 403 unless the request carries the admin token (or the other token accepted here). */
function authenticate(req: Request, tokenDigest: string, otherDigest?: string): void {
  const header = req.headers.get("authorization");
  const match = header === null ? null : /^Bearer[ \t]+(.*)$/i.exec(header.trim());
  if (!match) {
    // An S3 client pointed at this port by mistake signs with its access key.
    const s3 = /^AWS/.test(header ?? "") || new URL(req.url).searchParams.has("X-Amz-Signature")
      ? " This is remise's admin API: S3 clients go to api_bind_addr (port 3900 by default)."
      : "";
    throw new AdminError(
      401,
      "Unauthorized",
      `This route needs the admin token in the header "Authorization: Bearer <token>".${s3}`,
      { "www-authenticate": 'Bearer realm="remise admin"' },
    );
  }
  // Comparing digests takes the same time whatever the token's length and content.
  const given = sha256Hex(match[1].trim());
  const accepted = timingSafeEqualString(given, tokenDigest) ||
    otherDigest !== undefined && timingSafeEqualString(given, otherDigest);
  if (!accepted) {
    throw new AdminError(403, "Forbidden", "Invalid admin token");
  }
}

function route(method: string, pathname: string): { handler: Handler; params: string[] } {
  const segments = pathname.split("/").slice(1);
  for (const r of ROUTES) {
    if (r.path.length !== segments.length) continue;
    if (!r.path.every((p, i) => p === ":" || p === segments[i])) continue;
    const params = segments.filter((_, i) => r.path[i] === ":").map(decodeSegment);
    const handler = r.methods[method];
    if (!handler) throw methodNotAllowed(Object.keys(r.methods));
    return { handler, params };
  }
  throw new AdminError(404, "NoSuchRoute", `No admin API route ${pathname}`);
}

function methodNotAllowed(allowed: string[]): AdminError {
  const list = allowed.join(", ");
  return new AdminError(405, "MethodNotAllowed", `Method not allowed here (allowed: ${list})`, {
    allow: list,
  });
}

function decodeSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw badRequest(`Malformed percent-encoding in the path segment "${segment}"`);
  }
  if (decoded === "") throw badRequest("Empty name in the path");
  return decoded;
}

const json = jsonResponse;

function errorResponse(req: Request, url: URL, e: unknown): Response {
  let status: number;
  let code: string;
  let message = errorMessage(e);
  let headers: Record<string, string> = {};
  if (e instanceof AdminError) {
    status = e.status;
    code = e.code;
    headers = e.headers;
  } else if (e instanceof ModelError) {
    status = MODEL_ERROR_STATUS[e.code] ?? 400;
    code = e.code;
  } else if (
    isOutOfSpace(e) ||
    e instanceof QuorumError && e.causes.some((c) => isOutOfSpaceMessage(c.error))
  ) {
    status = 507;
    code = "InsufficientCapacity";
    message = `A disk is full (see \`remise status\`): ${message}`;
    log(LOG_MODULE, "warn", `${req.method} ${url.pathname}: ${errorMessage(e)}`);
  } else if (e instanceof QuorumError) {
    // Nodes down, not a fault of remise's: the change can be made again once they are back.
    status = 503;
    code = "ServiceUnavailable";
    message = `Not enough nodes are up (see \`remise status\`): ${message}`;
    log(LOG_MODULE, "warn", `${req.method} ${url.pathname}: ${errorMessage(e)}`);
  } else {
    status = 500;
    code = "InternalError";
    message = `Internal error: ${message}`;
    log(LOG_MODULE, "error", `${req.method} ${url.pathname}: ${errorMessage(e)}`);
  }
  log(LOG_MODULE, "debug", `${req.method} ${url.pathname}: ${status} ${message}`);
  const response = json(status, { error: message, code } satisfies ErrorJson);
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  return response;
}

// --- Request bodies ---

/** Reads the body as a JSON object with only the `allowed` fields. */
async function readJsonObject(req: Request, allowed: string[]): Promise<Record<string, unknown>> {
  const text = await readBodyText(req);
  if (text.trim() === "") throw badRequest("The request body must be a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`The request body is not valid JSON: ${errorMessage(e)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("The request body must be a JSON object");
  }
  const body = value as Record<string, unknown>;
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) {
      throw badRequest(`Unknown field "${field}" (expected: ${allowed.join(", ")})`);
    }
  }
  return body;
}

async function readBodyText(req: Request): Promise<string> {
  if (!req.body) return "";
  const bytes = await readBounded(
    req.body,
    ADMIN_BODY_MAX_BYTES,
    () =>
      new AdminError(
        413,
        "RequestTooLarge",
        `The request body is larger than ${ADMIN_BODY_MAX_BYTES} bytes`,
      ),
  );
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("The request body is not valid UTF-8");
  }
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw badRequest(`Field "${field}" must be a non-empty string (got ${JSON.stringify(value)})`);
  }
  return value;
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const value = optionalString(body, field);
  if (value === undefined) throw badRequest(`Missing field "${field}" (a non-empty string)`);
  return value;
}

function optionalBoolean(body: Record<string, unknown>, field: string): boolean {
  const value = body[field];
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw badRequest(`Field "${field}" must be true or false (got ${JSON.stringify(value)})`);
  }
  return value;
}

// --- Documents ---

const iso = (ms: number) => new Date(ms).toISOString();
const rights = (p: BucketPermission): RightsJson => ({
  read: p.read,
  write: p.write,
  owner: p.owner,
});

function keySummaryJson(key: AccessKey): KeySummaryJson {
  return { accessKeyId: key.id, name: key.name.v, createdAt: iso(key.createdMs) };
}

function keyInfoJson(info: KeyInfo): KeyInfoJson {
  return {
    accessKeyId: info.id,
    name: info.name,
    secretAccessKey: info.secret,
    createdAt: iso(info.createdMs),
    allowCreateBucket: info.allowCreateBucket,
    buckets: info.buckets.map((b) => ({ name: b.name, id: b.id, ...rights(b.permission) })),
  };
}

function bucketSummaryJson(bucket: Bucket): BucketSummaryJson {
  return { name: bucket.name.v, id: bucket.id, createdAt: iso(bucket.createdMs) };
}

function bucketInfoJson(info: BucketInfo): BucketInfoJson {
  return {
    name: info.name,
    id: info.id,
    createdAt: iso(info.createdMs),
    objects: info.objectCount,
    bytes: info.bytes,
    keys: info.keys.map((k) => ({ accessKeyId: k.id, name: k.name, ...rights(k.permission) })),
    website: info.website && {
      indexDocument: info.website.indexSuffix ?? "",
      ...(info.website.errorKey === undefined ? {} : { errorDocument: info.website.errorKey }),
      ...(info.website.redirectAll ? { redirectAllTo: info.website.redirectAll.hostName } : {}),
      ...(info.website.routingRules ? { routingRules: info.website.routingRules.length } : {}),
    },
    corsRules: info.corsRules,
    lifecycleRules: info.lifecycleRules,
    publicRead: info.publicRead,
    publicAccessBlock: info.publicAccessBlock && publicAccessBlockSettings(info.publicAccessBlock),
    versioning: info.versioning,
    defaultEncryption: info.defaultEncryption && {
      algorithm: info.defaultEncryption.algorithm ?? null,
      sseCBlocked: info.defaultEncryption.blockedTypes.includes("SSE-C"),
    },
    objectLock: info.objectLock && { defaultRetention: defaultRetentionText(info.objectLock) },
    noncurrentVersions: info.noncurrentVersions,
    noncurrentBytes: info.noncurrentBytes,
  };
}

// --- Handlers ---

async function status(ctx: AdminContext): Promise<Response> {
  return json(200, await ctx.nodeInfo());
}

async function listKeys(ctx: AdminContext): Promise<Response> {
  return json(200, (await ctx.access.listKeys()).map(keySummaryJson));
}

/** AWS's bounds for an access key id; the secret must be as hard to guess as an admin token. */
const IMPORTED_KEY_ID = /^[A-Za-z0-9]{16,128}$/;
const IMPORTED_SECRET = /^[\x21-\x7e]{16,128}$/;

async function createKey(ctx: AdminContext, _: string[], req: Request): Promise<Response> {
  const body = await readJsonObject(req, ["name", "accessKeyId", "secretAccessKey"]);
  const name = requiredString(body, "name");
  if (name.length > KEY_NAME_MAX_CHARS) {
    throw badRequest(`Field "name" must be at most ${KEY_NAME_MAX_CHARS} characters long`);
  }
  const id = optionalString(body, "accessKeyId");
  const secret = optionalString(body, "secretAccessKey");
  if ((id === undefined) !== (secret === undefined)) {
    throw badRequest(
      'Fields "accessKeyId" and "secretAccessKey" go together: give both to import a key, or neither',
    );
  }
  if (id !== undefined && !IMPORTED_KEY_ID.test(id)) {
    throw badRequest('Field "accessKeyId" must be 16 to 128 letters and digits');
  }
  if (secret !== undefined && !IMPORTED_SECRET.test(secret)) {
    throw badRequest(
      'Field "secretAccessKey" must be 16 to 128 printable ASCII characters without spaces',
    );
  }
  if (id !== undefined && await ctx.access.getKey(id)) {
    throw new AdminError(409, "AccessKeyAlreadyExists", `Access key ${id} already exists`);
  }
  // Names pick keys in every other command: a second "alice" would make them all ambiguous.
  const namesake = (await ctx.access.listKeys()).find((k) => k.name.v === name);
  if (namesake) {
    throw new AdminError(
      409,
      "KeyNameInUse",
      `An access key named "${name}" exists already (${namesake.id}): give this one another name`,
    );
  }
  const key = await ctx.access.createKey(name, { id, secret });
  log(LOG_MODULE, "info", `created access key ${key.id} ("${name}")`);
  return json(
    201,
    {
      accessKeyId: key.id,
      secretAccessKey: key.secret,
      name: key.name.v,
    } satisfies CreatedKeyJson,
  );
}

async function keyInfo(ctx: AdminContext, [pattern]: string[]): Promise<Response> {
  const key = await ctx.access.findKey(pattern);
  return json(200, keyInfoJson(await ctx.access.keyInfo(key)));
}

async function deleteKey(ctx: AdminContext, [idOrName]: string[]): Promise<Response> {
  // The whole id or name, not a prefix: a script's id cut short ("GK") must not delete a key.
  const key = await ctx.access.findKey(idOrName, { prefix: false });
  await ctx.access.deleteKey(key);
  log(LOG_MODULE, "info", `deleted access key ${key.id} ("${key.name.v}")`);
  return new Response(null, { status: 204 });
}

async function listBuckets(ctx: AdminContext): Promise<Response> {
  return json(200, (await ctx.access.listAllBuckets()).map(bucketSummaryJson));
}

async function createBucket(ctx: AdminContext, _: string[], req: Request): Promise<Response> {
  const body = await readJsonObject(req, ["name"]);
  const bucket = await ctx.access.createBucket(requiredString(body, "name"));
  log(LOG_MODULE, "info", `created bucket "${bucket.name.v}" (${bucket.id})`);
  return json(201, { name: bucket.name.v, id: bucket.id });
}

async function bucketInfo(ctx: AdminContext, [name]: string[]): Promise<Response> {
  const bucket = await ctx.access.getBucket(name);
  return json(200, bucketInfoJson(await ctx.access.bucketInfo(bucket)));
}

async function deleteBucket(ctx: AdminContext, [name]: string[]): Promise<Response> {
  await ctx.access.deleteBucket(await ctx.access.getBucket(name));
  log(LOG_MODULE, "info", `deleted bucket "${name}"`);
  return new Response(null, { status: 204 });
}

/** A key's rights of its own (not on a bucket): creating buckets. */
async function changeKeyRights(
  ctx: AdminContext,
  [pattern]: string[],
  req: Request,
  allow: boolean,
): Promise<Response> {
  const body = await readJsonObject(req, ["createBucket"]);
  if (!optionalBoolean(body, "createBucket")) throw badRequest('Give "createBucket" as true');
  const key = await ctx.access.findKey(pattern, { prefix: false });
  const changed = await ctx.access.setAllowCreateBucket(key, allow);
  log(
    LOG_MODULE,
    "info",
    `access key ${key.id} ("${key.name.v}") ${allow ? "may" : "may not"} create buckets`,
  );
  return json(200, keyInfoJson(await ctx.access.keyInfo(changed)));
}

/** Allow adds the given rights to the key's current ones; deny removes them. */
async function changeRights(
  ctx: AdminContext,
  [name]: string[],
  req: Request,
  allow: boolean,
): Promise<Response> {
  const body = await readJsonObject(req, ["accessKeyId", "read", "write", "owner"]);
  const pattern = requiredString(body, "accessKeyId");
  const given = {
    read: optionalBoolean(body, "read"),
    write: optionalBoolean(body, "write"),
    owner: optionalBoolean(body, "owner"),
  };
  if (!given.read && !given.write && !given.owner) {
    throw badRequest('Give at least one of "read", "write", "owner" as true');
  }
  const bucket = await ctx.access.getBucket(name);
  const key = await ctx.access.findKey(pattern);
  const old = ctx.access.permissionOf(bucket, key.id);
  const next: BucketPermission = allow
    ? {
      read: old.read || given.read,
      write: old.write || given.write,
      owner: old.owner || given.owner,
    }
    : {
      read: old.read && !given.read,
      write: old.write && !given.write,
      owner: old.owner && !given.owner,
    };
  await ctx.access.setPermission(bucket, key.id, next);
  const granted = Object.entries(next).filter(([, v]) => v).map(([k]) => k).join(", ") || "none";
  log(LOG_MODULE, "info", `rights of ${key.id} on bucket "${name}": ${granted}`);
  const updated = await ctx.access.getBucket(name);
  return json(200, bucketInfoJson(await ctx.access.bucketInfo(updated)));
}

/** Serves the bucket as a website; the index document is index.html unless given. */
async function setWebsite(ctx: AdminContext, [name]: string[], req: Request): Promise<Response> {
  const body = await readJsonObject(req, ["indexDocument", "errorDocument"]);
  const indexSuffix = optionalString(body, "indexDocument") ?? DEFAULT_INDEX_DOCUMENT;
  const errorKey = optionalString(body, "errorDocument");
  const bucket = await ctx.access.getBucket(name);
  // Routing rules, set through S3 only, stay.
  const routingRules = bucket.website?.v?.routingRules;
  await ctx.access.setWebsite(bucket, {
    indexSuffix,
    ...(errorKey === undefined ? {} : { errorKey }),
    ...(routingRules === undefined ? {} : { routingRules }),
  });
  log(LOG_MODULE, "info", `bucket "${name}" is served as a website`);
  return json(200, bucketInfoJson(await ctx.access.bucketInfo(await ctx.access.getBucket(name))));
}

async function removeWebsite(ctx: AdminContext, [name]: string[]): Promise<Response> {
  await ctx.access.setWebsite(await ctx.access.getBucket(name), null);
  log(LOG_MODULE, "info", `bucket "${name}" is no longer served as a website`);
  return json(200, bucketInfoJson(await ctx.access.bucketInfo(await ctx.access.getBucket(name))));
}

/** The names (as S3 spells them) of the public access block's settings that are on. */
function defaultRetentionText(config: ObjectLockConfig): string | null {
  const rule = config.defaultRetention;
  if (!rule) return null;
  const [count, unit] = rule.years !== undefined ? [rule.years, "year"] : [rule.days!, "day"];
  return `${rule.mode} ${count} ${unit}${count === 1 ? "" : "s"}`;
}

function publicAccessBlockSettings(block: PublicAccessBlock): string[] {
  return PUBLIC_ACCESS_BLOCK_SETTINGS.filter(([field]) => block[field]).map(([, name]) => name);
}

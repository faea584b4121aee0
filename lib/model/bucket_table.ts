/** The bucket table: one entry per bucket id, every parameter a LWW register. */
import { type Lww, lww, mergeLww, mergeLwwMap, mergeOptionalLww } from "../util/crdt.ts";
import type { TableSchema } from "../table/schema.ts";
import { ROUTING_RULES_MAX, type RoutingRule, routingRuleProblem } from "./website_routing.ts";

export interface BucketPermission {
  read: boolean;
  write: boolean;
  owner: boolean;
}

/** A bucket served as a static website (S3's WebsiteConfiguration). */
export interface WebsiteConfig {
  /** Appended to a path that names a "directory" (empty, or ending in "/"); absent when redirecting. */
  indexSuffix?: string;
  /** The object served, with status 404, for a path that names no object. */
  errorKey?: string;
  /** Every request is redirected to this host (S3's RedirectAllRequestsTo), instead of served. */
  redirectAll?: { hostName: string; protocol?: "http" | "https" };
  /** Redirects by key prefix or error, tried in order (with an index document only). */
  routingRules?: RoutingRule[];
}

/**
 * A bucket policy, of the one kind remise enforces: reads by anyone (public
 * read) of some keys, and perhaps listing.
 */
export interface PublicReadPolicy {
  /** The policy document as the owner sent it. */
  text: string;
  /** Keys anyone may read: a pattern ending in "*" is a prefix, else a whole key. */
  readKeys: string[];
  /** Anyone may list the bucket. */
  list: boolean;
}

/** A rule of a bucket's lifecycle configuration (S3's Rule, without transitions). */
/**
 * S3's public access block of a bucket. remise has no ACLs, and every policy
 * it keeps is a public one: `blockPublicAcls` refuses requests that ask for a
 * public ACL, `blockPublicPolicy` refuses new policies, and
 * `restrictPublicBuckets` stops serving anyone without credentials (public
 * policy and website alike). `ignorePublicAcls` has nothing to ignore.
 */
export interface PublicAccessBlock {
  blockPublicAcls: boolean;
  ignorePublicAcls: boolean;
  blockPublicPolicy: boolean;
  restrictPublicBuckets: boolean;
}

/** The public access block's settings, with the names S3 gives them. */
export const PUBLIC_ACCESS_BLOCK_SETTINGS: [keyof PublicAccessBlock, string][] = [
  ["blockPublicAcls", "BlockPublicAcls"],
  ["ignorePublicAcls", "IgnorePublicAcls"],
  ["blockPublicPolicy", "BlockPublicPolicy"],
  ["restrictPublicBuckets", "RestrictPublicBuckets"],
];

/** Whether the owner withholds the bucket from anyone without credentials. */
export function publicAccessRestricted(bucket: Bucket): boolean {
  return bucket.publicAccessBlock?.v?.restrictPublicBuckets === true;
}

/**
 * A bucket's default encryption (S3's ServerSideEncryptionConfiguration):
 * SSE-S3 only, for uploads that ask for no encryption, and the encryption
 * types uploads may not use (SSE-C).
 */
export interface DefaultEncryption {
  algorithm?: "AES256";
  bucketKeyEnabled?: boolean;
  blockedTypes: "SSE-C"[];
}

/** How an object is retained: GOVERNANCE yields to keys that bypass it, COMPLIANCE to nothing. */
export type RetentionMode = "GOVERNANCE" | "COMPLIANCE";

/**
 * A bucket's object lock (S3's ObjectLockConfiguration): once enabled it
 * stays enabled, and keeps versioning enabled; new objects get the default
 * retention, if any.
 */
export interface ObjectLockConfig {
  enabled: true;
  defaultRetention?: { mode: RetentionMode; days?: number; years?: number };
}

export interface LifecycleRule {
  id?: string;
  /** Whether the rule applies (see `filteredEnabled`; `lifecycleRuleEnabled` reads both). */
  enabled: boolean;
  /**
   * Set instead of `enabled` on an enabled rule with tag or size filters: a
   * node from before those filters, which would apply the rule to every
   * object under its prefix, sees it disabled.
   */
  filteredEnabled?: true;
  /** Keys the rule applies to start with this ("" for every key). */
  prefix: string;
  /** The prefix was given as the rule's own Prefix (S3's older form), not in a Filter. */
  rulePrefix?: true;
  /** Only objects that have all these tags (key, value). */
  tags?: [string, string][];
  /** Only objects larger than this many bytes... */
  sizeGreaterThan?: number;
  /** ...and smaller than this many. */
  sizeLessThan?: number;
  /** The filter was given as an And of its conditions (and is given back so). */
  filterAnd?: true;
  /** The filter was given empty, `<Filter/>` (and is given back so: Terraform compares). */
  emptyFilter?: true;
  /** Objects expire this many days after they were last modified... */
  expirationDays?: number;
  /** ...or all at this date (midnight UTC). */
  expirationDateMs?: number;
  /** Multipart uploads are aborted this many days after they were started. */
  abortMultipartDays?: number;
  /** Versions are deleted this many days after a newer one replaced them... */
  noncurrentDays?: number;
  /** ...except the newest this many of them. */
  newerNoncurrentVersions?: number;
  /** A delete marker left with no older version is deleted. */
  expiredObjectDeleteMarker?: boolean;
}

/** Whether a lifecycle rule applies (S3's Status Enabled). */
export function lifecycleRuleEnabled(rule: LifecycleRule): boolean {
  return rule.enabled || rule.filteredEnabled === true;
}

/** A rule of a bucket's CORS configuration (S3's CORSRule). */
export interface CorsRule {
  id?: string;
  /** Origins allowed, each with at most one "*" wildcard ("*" alone: any origin). */
  allowedOrigins: string[];
  /** Of GET, PUT, POST, DELETE, HEAD. */
  allowedMethods: string[];
  /** Headers a preflight may ask for, lowercase, each with at most one "*". */
  allowedHeaders: string[];
  /** Response headers the browser may show to the page. */
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

const utf8 = new TextEncoder();

/** Why a website configuration cannot be served; undefined when it can. */
export function websiteConfigProblem(config: WebsiteConfig): string | undefined {
  const redirect = config.redirectAll;
  if (redirect) {
    if (
      config.indexSuffix !== undefined || config.errorKey !== undefined ||
      config.routingRules !== undefined
    ) {
      return "a website that redirects every request has no index or error document, nor routing rules";
    }
    if (!/^[a-z0-9.-]+(:\d+)?$/i.test(redirect.hostName)) {
      return `the host to redirect to must be a host name (got "${redirect.hostName}")`;
    }
    if (redirect.protocol !== undefined && !["http", "https"].includes(redirect.protocol)) {
      return `the protocol to redirect with must be http or https (got "${redirect.protocol}")`;
    }
    return undefined;
  }
  if (config.indexSuffix === undefined) return "an index document is needed";
  if (config.indexSuffix === "" || config.indexSuffix.includes("/")) {
    return `the index document suffix must be a name without "/" (got "${config.indexSuffix}")`;
  }
  const errorKey = config.errorKey;
  if (errorKey !== undefined && (errorKey === "" || utf8.encode(errorKey).byteLength > 1024)) {
    return "the error document must be an object key of 1 to 1,024 bytes";
  }
  const rules = config.routingRules ?? [];
  if (rules.length > ROUTING_RULES_MAX) {
    return `a website has at most ${ROUTING_RULES_MAX} routing rules (got ${rules.length})`;
  }
  for (const [i, rule] of rules.entries()) {
    const problem = routingRuleProblem(rule);
    if (problem) return `routing rule ${i + 1}: ${problem}`;
  }
  return undefined;
}

/**
 * A bucket's settings, each a register of its own so that setting one leaves
 * the others alone; entries written before a setting existed lack it.
 */
export interface BucketSettings {
  /** Set while the bucket is served as a website. */
  website: WebsiteConfig;
  /** The CORS rules browsers are answered with. */
  cors: CorsRule[];
  /** Rules that expire objects and abort old multipart uploads. */
  lifecycle: LifecycleRule[];
  /** What anyone may read without credentials. */
  policy: PublicReadPolicy;
  /** The bucket's own tags. */
  tags: [string, string][];
  /** Whether new versions are kept beside older ones ("Enabled") or replace the null one. */
  versioning: "Enabled" | "Suspended";
  /** What the owner forbids of public access (S3's PublicAccessBlockConfiguration). */
  publicAccessBlock: PublicAccessBlock;
  /** The default encryption, and the encryption types uploads may not use. */
  encryption: DefaultEncryption;
  /** Object lock: versions that may not be deleted before a date, or while held. */
  objectLock: ObjectLockConfig;
}

export type BucketSetting = keyof BucketSettings;

const BUCKET_SETTINGS: BucketSetting[] = [
  "website",
  "cors",
  "lifecycle",
  "policy",
  "tags",
  "versioning",
  "publicAccessBlock",
  "encryption",
  "objectLock",
];

export type Bucket = {
  id: string;
  createdMs: number;
  /** The global name this bucket was created with (aliases live in bucket_alias). */
  name: Lww<string>;
  deleted: Lww<boolean>;
  /** Access key id -> rights on this bucket. */
  keys: Record<string, Lww<BucketPermission>>;
} & { [S in BucketSetting]?: Lww<BucketSettings[S] | null> };

/** The bucket's versioning status; undefined while it was never set. */
export function versioningOf(bucket: Bucket): BucketSettings["versioning"] | undefined {
  return bucket.versioning?.v ?? undefined;
}

export function newBucket(id: string, name: string, nowMs: number): Bucket {
  return { id, createdMs: nowMs, name: lww(nowMs, name), deleted: lww(nowMs, false), keys: {} };
}

export const bucketSchema: TableSchema<Bucket> = {
  name: "bucket",
  formatVersion: 1,
  partitionKey: (b) => b.id,
  sortKey: () => "",
  merge: (a, b) => {
    const merged: Record<string, unknown> = {
      id: a.id,
      createdMs: Math.min(a.createdMs, b.createdMs),
      name: mergeLww(a.name, b.name),
      deleted: mergeLww(a.deleted, b.deleted),
      keys: mergeLwwMap(a.keys, b.keys),
    };
    for (const setting of BUCKET_SETTINGS) {
      const register = mergeOptionalLww<unknown>(a[setting], b[setting]);
      if (register) merged[setting] = register;
    }
    return merged as Bucket;
  },
};

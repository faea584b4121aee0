/**
 * Access keys and buckets: creating, listing, deleting, and the rights of
 * keys on buckets. Errors are `ModelError`s with a code the front ends map
 * to their own answers.
 */
import { lww, lwwAfter } from "../util/crdt.ts";
import {
  type Bucket,
  type BucketPermission,
  type BucketSetting,
  type BucketSettings,
  type DefaultEncryption,
  newBucket,
  type ObjectLockConfig,
  type PublicAccessBlock,
  publicAccessRestricted,
  type WebsiteConfig,
  websiteConfigProblem,
} from "./bucket_table.ts";
import { ALIAS_PARTITION, type BucketAlias } from "./bucket_alias_table.ts";
import { type AccessKey, KEY_PARTITION } from "./key_table.ts";
import { bucketNameProblem } from "./bucket_name.ts";
import { currentData, isObjectTombstone, type ObjectEntry } from "./object_table.ts";
import { abortVersion } from "./objects.ts";
import { listedVersionsOf } from "./listing.ts";
import type { Store } from "./store.ts";
import { toHex } from "../util/hash.ts";
import { ACCESS_KEY_CACHE_MS } from "../util/limits.ts";
import { ExpiringCache } from "./expiring_cache.ts";

export type ModelErrorCode =
  | "NoSuchBucket"
  | "NoSuchKey"
  | "NoSuchAccessKey"
  | "InvalidBucketName"
  | "BucketAlreadyExists"
  | "BucketNotEmpty"
  | "AmbiguousAccessKey"
  | "InvalidArgument";

export class ModelError extends Error {
  constructor(readonly code: ModelErrorCode, message: string) {
    super(message);
    this.name = "ModelError";
  }
}

export const NO_RIGHTS: BucketPermission = { read: false, write: false, owner: false };

export interface KeyInfo {
  id: string;
  name: string;
  secret: string;
  createdMs: number;
  allowCreateBucket: boolean;
  buckets: { id: string; name: string; permission: BucketPermission }[];
}

export interface BucketInfo {
  id: string;
  name: string;
  createdMs: number;
  keys: { id: string; name: string; permission: BucketPermission }[];
  objectCount: number;
  bytes: number;
  /** Set while the bucket is served as a website. */
  website: WebsiteConfig | null;
  /** Rules of the bucket's CORS and lifecycle configurations. */
  corsRules: number;
  lifecycleRules: number;
  /** A bucket policy lets anyone read some of its objects. */
  publicRead: boolean;
  /** What the owner forbids of public access (set through S3), null while never set. */
  publicAccessBlock: PublicAccessBlock | null;
  /** The bucket's versioning status, null while it was never set. */
  versioning: "Enabled" | "Suspended" | null;
  /** The default encryption (set through S3), null while never set. */
  defaultEncryption: DefaultEncryption | null;
  /** Object lock (set through S3), null while never enabled. */
  objectLock: ObjectLockConfig | null;
  /** Older versions kept beside the current objects, and their bytes. */
  noncurrentVersions: number;
  noncurrentBytes: number;
}

function randomHex(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Bounds the access key cache (a few keys in practice). */
const KEY_CACHE_ENTRIES_MAX = 1000;
/** Tells a node that a key or bucket changed: it drops what it reuses of them. */
const FORGET_PATH = "access/forget";
/** How long a change waits for the other nodes to hear of it. */
const FORGET_WAIT_MS = 1_000;

export class Access {
  readonly #keyCache: ExpiringCache<AccessKey>;
  readonly #bucketCache: ExpiringCache<Bucket>;

  constructor(private readonly store: Store) {
    const cache = <V>() =>
      new ExpiringCache<V>(store.nowMs, ACCESS_KEY_CACHE_MS, KEY_CACHE_ENTRIES_MAX);
    this.#keyCache = cache();
    this.#bucketCache = cache();
    store.replication.register(FORGET_PATH, () => {
      this.#forgetCached();
      return Promise.resolve({ body: null });
    });
  }

  #forgetCached(): void {
    this.#keyCache.clear();
    this.#bucketCache.clear();
  }

  /**
   * After a change of a key or bucket: this node and every other node seen
   * up drop what they reuse of keys and buckets before the change is
   * acknowledged, so that the next request through any node sees it (a
   * client behind a load balancer reaches another node at once). A node that
   * does not hear of it in time sees it within ACCESS_KEY_CACHE_MS.
   */
  async #changed(): Promise<void> {
    this.#forgetCached();
    const replication = this.store.replication;
    await Promise.allSettled(
      replication.peersUp().map((node) =>
        replication.call(node, FORGET_PATH, { body: null }, { timeoutMs: FORGET_WAIT_MS })
      ),
    );
  }

  // --- keys ---

  async createKey(
    name: string,
    options: { id?: string; secret?: string } = {},
  ): Promise<AccessKey> {
    if (options.id !== undefined && await this.store.keys.get(KEY_PARTITION, options.id)) {
      throw new ModelError(
        "InvalidArgument",
        `Access key id "${options.id}" is already in use or was used before`,
      );
    }
    const now = this.store.nowMs();
    const key: AccessKey = {
      id: options.id ?? `GK${randomHex(12)}`,
      secret: options.secret ?? randomHex(32),
      createdMs: now,
      name: lww(now, name),
      allowCreateBucket: lww(now, true),
      deleted: lww(now, false),
    };
    await this.store.keys.insert(key);
    return key;
  }

  /** A live key by its exact id (for request authentication). */
  async getKey(id: string): Promise<AccessKey | undefined> {
    const key = await this.store.keys.get(KEY_PARTITION, id);
    return key && !key.deleted.v ? key : undefined;
  }

  /**
   * A live key for request authentication, reused for ACCESS_KEY_CACHE_MS:
   * in a cluster every lookup is a quorum read, on every request.
   */
  getKeyCached(id: string): Promise<AccessKey | undefined> {
    return this.#keyCache.get(id, () => this.getKey(id));
  }

  async listKeys(): Promise<AccessKey[]> {
    const keys: AccessKey[] = [];
    for await (const k of this.store.keys.scan(KEY_PARTITION)) if (!k.deleted.v) keys.push(k);
    return keys;
  }

  /** A key by id, unambiguous id prefix (unless `prefix` is false), or exact name. */
  async findKey(pattern: string, { prefix = true } = {}): Promise<AccessKey> {
    const exact = await this.getKey(pattern);
    if (exact) return exact;
    const keys = await this.listKeys();
    const matches = keys.filter((k) =>
      (prefix && k.id.startsWith(pattern)) || k.name.v === pattern
    );
    if (matches.length === 1) return matches[0];
    if (matches.length === 0) {
      throw new ModelError("NoSuchAccessKey", `No access key matches "${pattern}"`);
    }
    throw new ModelError(
      "AmbiguousAccessKey",
      `"${pattern}" matches ${matches.length} access keys: ${matches.map((k) => k.id).join(", ")}`,
    );
  }

  async keyInfo(key: AccessKey): Promise<KeyInfo> {
    const buckets = [];
    for (const bucket of await this.listAllBuckets()) {
      const permission = bucket.keys[key.id]?.v;
      if (permission && (permission.read || permission.write || permission.owner)) {
        buckets.push({ id: bucket.id, name: bucket.name.v, permission });
      }
    }
    return {
      id: key.id,
      name: key.name.v,
      secret: key.secret,
      createdMs: key.createdMs,
      allowCreateBucket: key.allowCreateBucket.v,
      buckets,
    };
  }

  /** Lets the key create buckets (each it creates, it owns), or not; resolves with the key changed. */
  async setAllowCreateBucket(key: AccessKey, allowed: boolean): Promise<AccessKey> {
    const allowCreateBucket = lwwAfter(key.allowCreateBucket, this.store.nowMs(), allowed);
    const changed = { ...key, allowCreateBucket };
    await this.store.keys.insert(changed);
    await this.#changed();
    return changed;
  }

  async deleteKey(key: AccessKey): Promise<void> {
    const now = this.store.nowMs();
    for (const bucket of await this.listAllBuckets()) {
      if (bucket.keys[key.id]) await this.setPermission(bucket, key.id, NO_RIGHTS);
    }
    await this.store.keys.insert({ ...key, deleted: lwwAfter(key.deleted, now, true) });
    await this.#changed();
  }

  // --- buckets ---

  /** The live bucket a global name points to. */
  async resolveBucket(name: string): Promise<Bucket | undefined> {
    return (await this.#resolveAlias(name)).bucket;
  }

  /** A global name's alias, and the live bucket it points to. */
  async #resolveAlias(name: string): Promise<{ alias?: BucketAlias; bucket?: Bucket }> {
    const alias = await this.store.aliases.get(ALIAS_PARTITION, name);
    const id = alias?.bucketId.v;
    if (!id) return { alias };
    const bucket = await this.store.buckets.get(id);
    return { alias, bucket: bucket && !bucket.deleted.v ? bucket : undefined };
  }

  /**
   * The bucket of a name for request handling, reused for
   * ACCESS_KEY_CACHE_MS (a change through any node is seen at once when
   * this node hears of it, see #changed; else after at most that delay).
   */
  resolveBucketCached(name: string): Promise<Bucket | undefined> {
    return this.#bucketCache.get(name, () => this.resolveBucket(name));
  }

  async getBucket(name: string): Promise<Bucket> {
    const bucket = await this.resolveBucket(name);
    if (!bucket) throw new ModelError("NoSuchBucket", `Bucket "${name}" does not exist`);
    return bucket;
  }

  /** Every live bucket, ordered by name. */
  async listAllBuckets(): Promise<Bucket[]> {
    const buckets: Bucket[] = [];
    for await (const alias of this.store.aliases.scan(ALIAS_PARTITION)) {
      if (!alias.bucketId.v) continue;
      const bucket = await this.store.buckets.get(alias.bucketId.v);
      if (bucket && !bucket.deleted.v) buckets.push(bucket);
    }
    return buckets;
  }

  /** Creates a bucket, owned by `ownerKeyId` when given. */
  async createBucket(name: string, ownerKeyId?: string): Promise<Bucket> {
    const problem = bucketNameProblem(name);
    if (problem) {
      throw new ModelError("InvalidBucketName", `Invalid bucket name "${name}": it ${problem}`);
    }
    const lock = await this.store.mutex.acquire(`bucket-name\u0000${name}`);
    try {
      const { alias, bucket: existing } = await this.#resolveAlias(name);
      if (existing) {
        throw new ModelError("BucketAlreadyExists", `Bucket "${name}" already exists`);
      }
      const now = this.store.nowMs();
      const bucket = newBucket(randomHex(32), name, now);
      if (ownerKeyId) bucket.keys[ownerKeyId] = lww(now, { read: true, write: true, owner: true });
      await this.store.buckets.insert(bucket);
      // Newer than the alias of a bucket of that name deleted through a node whose clock is ahead.
      await this.store.aliases.insert({
        name,
        bucketId: lwwAfter(alias?.bucketId, now, bucket.id),
      });
      return bucket;
    } finally {
      lock();
    }
  }

  /**
   * The multipart uploads in progress in the bucket, if it holds nothing
   * else; undefined when it holds objects, versions (delete markers
   * included) or single uploads in progress.
   */
  async #onlyMultipartUploads(bucket: Bucket): Promise<ObjectEntry[] | undefined> {
    const uploads: ObjectEntry[] = [];
    for await (const entry of this.store.objects.scan(bucket.id)) {
      const multipart = entry.versions.filter((v) =>
        v.state.state === "uploading" && v.state.multipart
      );
      const rest = entry.versions.filter((v) => !multipart.includes(v));
      // Entries that only record deletions do not hold the bucket.
      if (rest.length > 0 && !isObjectTombstone({ ...entry, versions: rest })) return undefined;
      if (multipart.length > 0) uploads.push({ ...entry, versions: multipart });
    }
    return uploads;
  }

  /** Deletes an empty bucket; multipart uploads in progress are aborted, as S3 does. */
  async deleteBucket(bucket: Bucket): Promise<void> {
    const uploads = await this.#onlyMultipartUploads(bucket);
    if (!uploads) {
      throw new ModelError("BucketNotEmpty", `Bucket "${bucket.name.v}" is not empty`);
    }
    for (const entry of uploads) {
      for (const version of entry.versions) {
        await abortVersion(this.store, bucket.id, entry.key, version);
      }
    }
    const now = this.store.nowMs();
    const alias = await this.store.aliases.get(ALIAS_PARTITION, bucket.name.v);
    await this.store.aliases.insert({
      name: bucket.name.v,
      bucketId: lwwAfter(alias?.bucketId, now, null),
    });
    await this.store.buckets.insert({ ...bucket, deleted: lwwAfter(bucket.deleted, now, true) });
    await this.#changed();
  }

  async setPermission(bucket: Bucket, keyId: string, permission: BucketPermission): Promise<void> {
    const previous = (await this.#stored(bucket)).keys[keyId];
    const register = lwwAfter(previous, this.store.nowMs(), permission);
    await this.store.buckets.insert({ ...bucket, keys: { [keyId]: register } });
    await this.#changed();
  }

  /**
   * The bucket as a quorum reads it now: the one a request resolved may come
   * from the cache, and miss a change that a new one must replace.
   */
  async #stored(bucket: Bucket): Promise<Bucket> {
    return await this.store.buckets.get(bucket.id) ?? bucket;
  }

  /** Serves the bucket as a static website with `config`, or stops serving it (null). */
  async setWebsite(bucket: Bucket, config: WebsiteConfig | null): Promise<void> {
    const problem = config && websiteConfigProblem(config);
    if (problem) {
      throw new ModelError("InvalidArgument", `Invalid website configuration: ${problem}`);
    }
    await this.setSetting(bucket, "website", config);
  }

  /** Sets one of the bucket's settings (CORS rules, tags, ...), or removes it (null). */
  async setSetting<S extends BucketSetting>(
    bucket: Bucket,
    setting: S,
    value: BucketSettings[S] | null,
  ): Promise<void> {
    const register = lwwAfter((await this.#stored(bucket))[setting], this.store.nowMs(), value);
    await this.store.buckets.insert({ ...bucket, [setting]: register });
    await this.#changed();
  }

  permissionOf(bucket: Bucket, keyId: string): BucketPermission {
    return bucket.keys[keyId]?.v ?? NO_RIGHTS;
  }

  async bucketInfo(bucket: Bucket): Promise<BucketInfo> {
    const keys = [];
    for (const [id, p] of Object.entries(bucket.keys)) {
      if (!p.v.read && !p.v.write && !p.v.owner) continue;
      const key = await this.getKey(id);
      if (key) keys.push({ id, name: key.name.v, permission: p.v });
    }
    let objectCount = 0;
    let bytes = 0;
    let noncurrentVersions = 0;
    let noncurrentBytes = 0;
    for await (const entry of this.store.objects.scan(bucket.id)) {
      const current = currentData(entry);
      if (current) {
        objectCount++;
        bytes += current.data.meta.size;
      }
      for (const version of listedVersionsOf(entry).slice(1)) {
        if (!version.object) continue;
        noncurrentVersions++;
        noncurrentBytes += version.object.size;
      }
    }
    return {
      id: bucket.id,
      name: bucket.name.v,
      createdMs: bucket.createdMs,
      keys,
      objectCount,
      bytes,
      website: bucket.website?.v ?? null,
      corsRules: bucket.cors?.v?.length ?? 0,
      lifecycleRules: bucket.lifecycle?.v?.length ?? 0,
      publicRead: bucket.policy?.v != null && !publicAccessRestricted(bucket),
      publicAccessBlock: bucket.publicAccessBlock?.v ?? null,
      versioning: bucket.versioning?.v ?? null,
      defaultEncryption: bucket.encryption?.v ?? null,
      objectLock: bucket.objectLock?.v ?? null,
      noncurrentVersions,
      noncurrentBytes,
    };
  }
}

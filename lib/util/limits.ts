/** Every bound of remise, with its unit last and the reason for its value. */

/**
 * Objects up to this size live inline in the object table: a durable small
 * file costs several fsyncs, a KV row one shared group commit. Kept well under
 * the 64 KiB KV value so that listing, which decodes entries, stays light.
 */
export const INLINE_THRESHOLD_BYTES = 8 * 1024;

/**
 * Objects announced (Content-Length) no larger than this are hashed on the
 * request thread rather than by the hashing workers: the three messages to
 * a worker cost the request thread about what hashing them there does, and
 * the worker's time besides.
 */
export const HASH_ON_REQUEST_THREAD_MAX_BYTES = 128 * 1024;

/** Access keys read for request authentication are reused this long (a deleted key may work that long on other nodes). */
export const ACCESS_KEY_CACHE_MS = 2_000;

/** Default block size: large enough to amortise a durable file create, small enough to stream. */
export const DEFAULT_BLOCK_SIZE_BYTES = 1024 * 1024;

/** S3's limit for one PutObject; larger objects must be multipart uploads. */
export const PUT_OBJECT_MAX_BYTES = 5 * 1024 * 1024 * 1024;

/** S3's limit for an object key, in UTF-8 bytes. */
export const OBJECT_KEY_MAX_BYTES = 1024;

/** S3's limit for one page of listing results. */
export const LIST_KEYS_MAX = 1000;

/** S3 refuses requests whose signed time is further than this from the server's clock. */
export const REQUEST_TIME_SKEW_MAX_MS = 15 * 60 * 1000;

/** S3's limit for a presigned URL's X-Amz-Expires: seven days. */
export const PRESIGNED_EXPIRES_MAX_SECONDS = 7 * 24 * 3600;

/** S3's limit for user metadata (x-amz-meta-*), names and values together. */
export const USER_METADATA_MAX_BYTES = 2 * 1024;

/** A block whose reference count stayed zero this long is deleted: lets late references (copies, retries) revive it. */
export const BLOCK_GC_DELAY_MS = 10 * 60 * 1000;

/** How often the block garbage collector looks for unreferenced blocks. */
export const BLOCK_GC_INTERVAL_MS = 60 * 1000;
/**
 * A single-request upload still "uploading" after this long was abandoned
 * (its node died mid-upload): 5 GiB at 10 KiB/s takes less.
 */
export const ABANDONED_UPLOAD_AGE_MS = 7 * 24 * 3600 * 1000;
/**
 * How long a multipart upload goes on after its key gets a newer object or
 * deletion, in a bucket without versioning (see mergeVersions), counted from
 * the upload's start to the newest such write.
 */
export const REPLACED_UPLOAD_KEPT_MS = 24 * 3600 * 1000;
/** How often each node looks for abandoned uploads among its object entries. */
export const ABANDONED_UPLOAD_INTERVAL_MS = 3600 * 1000;
/**
 * A multipart upload ended this long ago and not cleared had its completion
 * or release cut short (see ended_uploads.ts): either takes seconds.
 */
export const ENDED_UPLOAD_CLEAR_AGE_MS = 3600 * 1000;
/**
 * How soon after a start, and how often after, the node settles the uploads
 * its earlier process left cut off (a read of each needs the peers, which a
 * node that just started may not reach yet, and some need every replica) and
 * takes up releases cut short. A pass reads two key spaces of this node
 * only: every minute, a node settles its notes within a minute of its peers'
 * return (every 10 minutes left some for as long after a chaos run).
 */
export const INTERRUPTED_UPLOAD_FIRST_RUN_DELAY_MS = 20 * 1000;
export const INTERRUPTED_UPLOAD_INTERVAL_MS = 60 * 1000;
/**
 * Waits before a release reads again whether what replaced its version is
 * on a write quorum of replicas: the write that replaced it may still be
 * landing on the others. Past them the release is tried again later.
 */
export const RELEASE_CHECK_RETRY_DELAYS_MS = [250, 1_000, 4_000];

/**
 * How long after its commit a release in a cluster starts at the soonest
 * (see ReleaseQueue): the write that replaced the version has reached the
 * other replicas by then, and the check above passes at once.
 */
export const RELEASE_SETTLE_MS = 200;

/**
 * How long the notes of an upload that failed while its process runs on
 * (a commit or a record without a quorum) wait before that process settles
 * them: longer than any write the upload sent may still be on its way to a
 * replica (RPC_TIMEOUT_MS, RPC_STREAM_IDLE_TIMEOUT_MS), since a late write
 * could name data released meanwhile.
 */
export const LEFT_NOTE_SETTLE_DELAY_MS = 5 * 60 * 1000;
/**
 * A PutObject left uploading by a node removed from the layout, and down, is
 * aborted once this old (see abortCutOffUploads), rather than after
 * ABANDONED_UPLOAD_AGE_MS: a node being removed may still finish uploads.
 */
export const GONE_COORDINATOR_UPLOAD_AGE_MS = 24 * 3600 * 1000;
/** How often lifecycle rules are applied (their days end at midnight UTC). */
export const LIFECYCLE_INTERVAL_MS = 3600 * 1000;
/**
 * The first lifecycle pass, abandoned-upload collection and tombstone
 * collection after a start wait this long, for the peers' state (see
 * nodeInCharge) and clocks (see clock_trust.ts).
 */
export const AGE_DELETIONS_FIRST_RUN_DELAY_MS = 60 * 1000;

/** Deno KV's limit on one value; larger values are split into chunks below it. */
export const KV_VALUE_MAX_BYTES = 60 * 1024;

/** Deno KV's limits on one atomic commit, with a margin. */
export const KV_COMMIT_MUTATIONS_MAX = 900;
export const KV_COMMIT_BYTES_MAX = 700 * 1024;

/**
 * A request body left unread (the request refused, or answered without it)
 * is read and dropped up to this size, and for this long, so that the client
 * gets the answer (see lib/api/s3/unread_body.ts).
 */
export const UNREAD_BODY_DRAIN_MAX_BYTES = 64 * 1024 * 1024;
export const UNREAD_BODY_DRAIN_MAX_MS = 30_000;

/**
 * A client that sends nothing of a body it announced for this long is cut
 * off with RequestTimeout (see lib/api/s3/auth/idle_read.ts), as S3 cuts it
 * after ~20 s: clients made for S3 cope with it, and a dropped link does not
 * hold a connection and its blocks for ever.
 */
export const BODY_IDLE_MAX_MS = 20_000;

/** S3's limit of keys in one DeleteObjects request. */
export const DELETE_OBJECTS_MAX_KEYS = 1000;

/** Largest XML request body accepted (DeleteObjects with 1000 long keys fits). */
export const XML_BODY_MAX_BYTES = 2 * 1024 * 1024;

/**
 * How long a conditional write that met a newer version (409) waits while
 * that version is spread to every replica up (see writeNewest): a retry
 * then sees it. A replica slower than this gets it later, in the background.
 */
export const CONFLICT_SPREAD_WAIT_MS = 5_000;

/** An RPC that gets no response header (and makes no progress sending its body) within this is cancelled on both ends. */
export const RPC_TIMEOUT_MS = 30_000;

/** Per-stream flow-control window: bytes of a body in flight before the receiver grants more. 1 MiB keeps a block in one round trip over a 50 ms WAN link while bounding memory per stream. */
export const RPC_STREAM_WINDOW_BYTES = 1024 * 1024;

/** Largest data frame of a streamed body: small enough that a high-priority frame never waits long behind one. */
export const RPC_DATA_FRAME_MAX_BYTES = 64 * 1024;

/** Largest RPC frame (a msgpack request/response header with its body); a peer sending more is cut off. */
export const RPC_FRAME_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A read asks the nearest quorum of replicas first; the others too when no
 * quorum answered within this plus two round trips to the farthest one asked.
 */
export const READ_HEDGE_BASE_MS = 100;

/** How often an idle RPC connection is pinged, to detect a dead peer. */
export const RPC_PING_INTERVAL_MS = 2_000;

/** A connection that received nothing (not even a pong) for this long is closed and the peer reported down. */
export const RPC_PING_TIMEOUT_MS = 8_000;

/** Dialling a peer (TCP connect, TLS handshake, greeting) gives up after this. */
export const RPC_DIAL_TIMEOUT_MS = 10_000;

/** Backoff after a failed dial to an address: starts here and doubles per failure... */
export const RPC_DIAL_BACKOFF_MIN_MS = 100;

/**
 * ...up to this: a peer whose link comes back is used again within seconds
 * (an attempt at a down address costs one TCP connect).
 */
export const RPC_DIAL_BACKOFF_MAX_MS = 5_000;

/**
 * `remise status` warns of a node whose clock is this far from the others':
 * objects are dated by the clock of the node that writes them (Last-Modified,
 * lifecycle ages, retention), so nodes should keep NTP time.
 */
export const CLOCK_SKEW_WARN_MS = 10_000;
/**
 * A node whose clock is further than this from its peers' deletes nothing
 * for its age (lifecycle rules, abandoned uploads, tombstones, versions whose
 * retention is over): a clock set years ahead
 * would otherwise expire every object a rule covers. Rules count in days, so
 * an hour is harmless.
 */
export const CLOCK_TRUST_MS = 3600 * 1000;
/**
 * How long `remise status` keeps warning of two nodes met with one
 * certificate, and how often each node logs it again while it lasts.
 */
export const RPC_IDENTITY_CONFLICT_REPORT_MS = 10 * 60_000;

/**
 * A call waits this long at most for a new dial to a peer it could not reach
 * before (the dial goes on for later calls): a blackholed peer then fails
 * its callers in a second instead of the whole dial timeout.
 */
export const RPC_REDIAL_WAIT_MS = 1_000;

/** A body sender waiting this long for the receiver to grant flow-control credit gives up on the stream. */
export const RPC_STREAM_IDLE_TIMEOUT_MS = 120_000;

/** A duplicate connection being retired is closed after this even if its streams have not finished. */
export const RPC_DRAIN_TIMEOUT_MS = 60_000;

/** How often anti-entropy compares each stored partition with its other replicas (jittered by ±25%): a replica that missed writes catches up within minutes, and an idle cluster pays a few digest exchanges per table and replica per round. */
export const ANTI_ENTROPY_INTERVAL_MS = 60_000;

/** Partition digests anti-entropy asks a replica for in one call: each may list its partition's leaves (256 keys) when not cached, all well within RPC_TIMEOUT_MS on a slow node. */
export const ANTI_ENTROPY_DIGESTS_PER_CALL = 64;

/** Partitions anti-entropy syncs at once: keeps its load on disks and links small beside client traffic. */
export const ANTI_ENTROPY_PARTITIONS_CONCURRENCY = 2;

/** Merkle leaves of one partition whose item lists are fetched at once: hides link latency without flooding a peer. */
export const ANTI_ENTROPY_LEAVES_CONCURRENCY = 4;

/** Entries per getEntries/putEntries call of anti-entropy: a few hundred KiB at most, far under RPC_FRAME_MAX_BYTES. */
export const ANTI_ENTROPY_BATCH_ENTRIES = 100;

/** Mutations per commit while a Merkle index is rebuilt: under KV_COMMIT_MUTATIONS_MAX, so each batch is one engine commit. */
export const MERKLE_REBUILD_BATCH_MUTATIONS = 500;

/**
 * Partitions whose leaf digests a node keeps in memory (8 KiB each), the
 * most recently written: 768 covers the object, version and block reference
 * tables, which take most writes.
 */
export const MERKLE_LEAF_RECORDS_MAX = 1024;

/** A cached partition digest is recomputed after this even without a write: bounds the harm of a missed invalidation. */
export const MERKLE_DIGEST_CACHE_MAX_AGE_MS = 5 * 60 * 1000;

/** A background worker asked to stop gets this long to finish its current step before stop() gives up waiting. */
export const WORKER_STOP_TIMEOUT_MS = 10_000;

/** After a failed step a worker waits this long before retrying... */
export const WORKER_ERROR_BACKOFF_MIN_MS = 1_000;

/** ...doubling per consecutive failure up to this, so a broken worker costs one attempt per 5 min. */
export const WORKER_ERROR_BACKOFF_MAX_MS = 5 * 60_000;

/** A block whose resync failed is retried after this... */
export const RESYNC_RETRY_MIN_MS = 10_000;

/** ...doubling per failure up to this, so an unavailable block costs one attempt per hour. */
export const RESYNC_RETRY_MAX_MS = 60 * 60_000;

/** Blocks resynced at once: enough to overlap one fetch's latency with another's disk write, light on a home link. */
export const RESYNC_CONCURRENCY = 2;

/** Due queue entries taken per resync step (one range read of the queue). */
export const RESYNC_BATCH_MAX = 64;

/** With nothing due, the resync worker looks at its queue again after this (an enqueue wakes it sooner). */
export const RESYNC_IDLE_INTERVAL_MS = 60_000;

/** Hashes enqueued in one metadata commit (up to 3 mutations each, under the engine's 900). */
export const RESYNC_ENQUEUE_BATCH_MAX = 100;

/** Counting the resync queue stops here (about 1 s of listing); larger queues are shown as this number. */
export const RESYNC_QUEUE_COUNT_MAX = 100_000;

/** Most block errors returned by one listing (`remise block list-errors`). */
export const RESYNC_ERRORS_LIST_MAX = 1_000;

/**
 * Block resync stops for this long when this node's data disk refuses a
 * block (read-only, failing or full): each attempt meanwhile would fetch the
 * block from a peer, over its home link, for nothing.
 */
export const RESYNC_DISK_PAUSE_MS = 30_000;

/** Block resync failures logged as warnings per minute; the others are logged at debug level and counted. */
export const RESYNC_FAILURE_WARNINGS_PER_MINUTE = 10;

/** The resync worker's queue length and error count shown in its status are refreshed at most this often. */
export const RESYNC_STATUS_REFRESH_MS = 10_000;

/** A full scrub pass (re-hash every block) starts this long after the previous one finished. */
export const SCRUB_INTERVAL_MS = 30 * 24 * 3600 * 1000;

/** Share of disk time a background scrub may use: it sleeps 9x as long as it reads, leaving the disk to requests. */
export const SCRUB_DISK_TIME_FRACTION = 0.1;

/** A scrub step reads blocks for about this long before its throttling sleep (keeps stop and pause prompt). */
export const SCRUB_STEP_MS = 200;

/** Between passes the scrub worker checks whether a pass is due this often. */
export const SCRUB_IDLE_CHECK_MS = 60 * 60_000;

/** Corrupted block files kept in data_dir/corrupt for inspection; beyond this they are deleted. */
export const CORRUPT_BLOCKS_KEPT_MAX = 100;

/** A tombstone is kept this long before collection, so that replicas that were away receive it first. */
export const TOMBSTONE_GC_DELAY_MS = 24 * 3600 * 1000;

/** How often a node looks for tombstones that every replica has. */
export const TOMBSTONE_GC_INTERVAL_MS = 10 * 60 * 1000;

/** Blocks one upload stores at once while receiving the next (memory: this many blocks per upload). */
export const BLOCKS_IN_FLIGHT_PER_UPLOAD = 8;
/** Blocks all uploads of a node store at once (4 parallel 256 MiB uploads stay under ~250 MiB RSS). */
export const BLOCKS_IN_FLIGHT_PER_NODE = 16;
/**
 * Block bytes a node sends ahead to one peer while uploads go on (a write
 * waits for a quorum only; see push_backlog.ts): twice the blocks in flight at
 * the default block size, so that a replica that keeps up is never held back,
 * and one that lags or hangs costs at most this much memory.
 */
export const BLOCK_PUSH_BACKLOG_PER_PEER_BYTES = 32 * 1024 * 1024;
/** Free block buffers a node keeps for the next uploads (a pool in use holds about this). */
export const BLOCK_BUFFER_POOL_BYTES = 32 * 1024 * 1024;

/** How long a group commit waits for more callers when writes are concurrent. */
export const KV_GROUP_LINGER_MS = 1;

/** Keys a node remembers as absent from its metadata store (see AbsentKeys). */
export const KV_ABSENT_KEYS_MAX = 4096;

/**
 * Read connections to the metadata store. Deno KV runs each connection on a
 * thread of its own, one request at a time (~30 us a read, more under
 * commits); three let reads overlap. 4 KiB GET c=32 in bench/handler_cost.ts,
 * one -> three: 6,900-7,500 -> 8,300-10,000 ops/s; four did no better.
 */
export const KV_READ_CONNECTIONS = 3;

/** Keys of one Deno KV `getMany` (its own limit). */
export const KV_GET_MANY_MAX = 10;

/** How long a starting node waits to see a majority of its cluster up before serving S3. */
export const PEERS_AT_START_WAIT_MS = 3_000;

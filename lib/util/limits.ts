/** Every bound of remise, with its unit last and the reason for its value. */

/** Objects up to this size live inline in the object table: a durable small file costs ~0.5 ms, a KV row far less. */
export const INLINE_THRESHOLD_BYTES = 3 * 1024;

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

/** Deno KV's limit on one value; larger values are split into chunks below it. */
export const KV_VALUE_MAX_BYTES = 60 * 1024;

/** Deno KV's limits on one atomic commit, with a margin. */
export const KV_COMMIT_MUTATIONS_MAX = 900;
export const KV_COMMIT_BYTES_MAX = 700 * 1024;

/** S3's limit of keys in one DeleteObjects request. */
export const DELETE_OBJECTS_MAX_KEYS = 1000;

/** Largest XML request body accepted (DeleteObjects with 1000 long keys fits). */
export const XML_BODY_MAX_BYTES = 2 * 1024 * 1024;

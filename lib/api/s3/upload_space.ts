/**
 * Uploads refused while this node's disks keep their reserve
 * (`min_free_space`, see lib/util/free_space.ts): S3 on Outposts' answer for
 * a full store, 507 `InsufficientCapacity`, which SDKs do not retry.
 * Deletes, reads and configuration changes go on.
 */
import { isOutOfSpace, isOutOfSpaceMessage } from "../../util/free_space.ts";
import { QuorumError } from "../../rpc/quorum.ts";
import type { S3Context } from "./context.ts";
import { S3Error } from "./s3_error.ts";

/** The operations that bring new object data. */
const UPLOADS = new Set([
  "PutObject",
  "PostObject",
  "CopyObject",
  "UploadPart",
  "UploadPartCopy",
  "CreateMultipartUpload",
]);

const ADVICE = "delete objects (their space returns about ten minutes later) or add disk space";

/** Throws InsufficientCapacity when `operation` is an upload and a disk of this node is at its reserve. */
export function checkUploadSpace(ctx: S3Context, operation: string): void {
  if (!UPLOADS.has(operation)) return;
  try {
    for (const space of ctx.uploadSpace ?? []) space.claim(0);
  } catch (e) {
    throw insufficientCapacity(`${(e as Error).message}: ${ADVICE}.`);
  }
}

/** The S3 error for a failure caused by a full disk (here or on replicas), else undefined. */
export function outOfSpaceError(e: unknown): S3Error | undefined {
  if (e instanceof QuorumError) {
    const full = e.causes.filter((c) => isOutOfSpaceMessage(c.error)).length;
    if (full === 0) return undefined;
    const where = full === 1 ? "1 replica" : `${full} replicas`;
    return insufficientCapacity(`Cannot ${e.what}: too little free space on ${where}; ${ADVICE}.`);
  }
  if (!isOutOfSpace(e)) return undefined;
  // Not the reserve's refusal (deletions go on then): the disk itself refused a write.
  return insufficientCapacity(
    "This node's disk is full: add disk space, or delete objects (a deletion needs room in the " +
      "metadata store too, which min_free_space keeps for it).",
  );
}

function insufficientCapacity(message: string): S3Error {
  return new S3Error("InsufficientCapacity", 507, message);
}

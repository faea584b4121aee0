/** DeleteObject: a delete marker becomes the current version; deleting a missing key succeeds. */
import { deleteObject } from "../../model/objects.ts";
import { requireBucket, requireKey, type S3Request } from "./context.ts";

export async function handleDeleteObject(r: S3Request): Promise<Response> {
  const bucket = await requireBucket(r, "write");
  await deleteObject(r.ctx.store, bucket.id, requireKey(r));
  return new Response(null, { status: 204 });
}

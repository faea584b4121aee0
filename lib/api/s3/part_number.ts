/** The `partNumber` query parameter of UploadPart, UploadPartCopy, GetObject and HeadObject. */
import { PART_NUMBER_MAX } from "../../model/multipart.ts";
import { s3Errors } from "./s3_error.ts";

/** Digits only (not "1e1" or " 2"), 1-10000; anything else is InvalidArgument, as in S3. */
export function parsePartNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > PART_NUMBER_MAX) {
    throw s3Errors.invalidArgument(
      "Part number must be an integer between 1 and 10000, inclusive",
      "partNumber",
      value,
    );
  }
  return n;
}

/**
 * Object versions as S3 names them: the `versionId` of a request, the
 * version headers of answers, and the errors of versions that are not
 * there or are delete markers.
 */
import type { ObjectVersion } from "../../model/object_table.ts";
import { versionIdOf } from "../../model/object_table.ts";
import type { Versioning } from "../../model/objects.ts";
import { httpDate } from "./object_headers.ts";
import { S3Error, s3Errors } from "./s3_error.ts";

/** remise's version ids are the versions' uuids; "null" names the null version. */
const VERSION_ID = /^(null|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function isVersionId(id: string): boolean {
  return VERSION_ID.test(id);
}

/** The request's `versionId`, if given; one that cannot name a version is InvalidArgument. */
export function requestedVersionId(query: URLSearchParams): string | undefined {
  const id = query.get("versionId");
  if (id === null) return undefined;
  if (!isVersionId(id)) {
    throw s3Errors.invalidArgument("Invalid version id specified", "versionId", id);
  }
  return id;
}

/**
 * The x-amz-version-id of a read of `version`: its id when it is versioned,
 * "null" when the bucket's versioning was ever set, else none.
 */
export function readVersionHeader(
  version: ObjectVersion,
  versioning: Versioning,
): Record<string, string> {
  if (!version.versioned && versioning === undefined) return {};
  return { "x-amz-version-id": versionIdOf(version) };
}

/** The x-amz-version-id of a write: only a versioned version has an id to tell. */
export function writtenVersionHeader(version: ObjectVersion): Record<string, string> {
  return version.versioned ? { "x-amz-version-id": version.uuid } : {};
}

/**
 * The error of a read that found a delete marker: NoSuchKey (404) when it is
 * the current version, MethodNotAllowed (405) when it was asked by id.
 */
export function deleteMarkerError(
  key: string,
  marker: ObjectVersion,
  byId: boolean,
  method: string,
): S3Error {
  const error = byId
    ? new S3Error(
      "MethodNotAllowed",
      405,
      "The specified method is not allowed against this resource.",
      { Method: method, ResourceType: "DeleteMarker" },
    )
    : s3Errors.noSuchKey(key);
  return error.withHeaders({
    "x-amz-delete-marker": "true",
    "x-amz-version-id": versionIdOf(marker),
    "last-modified": httpDate(marker.timestampMs),
  });
}

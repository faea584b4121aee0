/**
 * The S3 errors of request authentication, with AWS's codes, statuses and
 * messages, so that every file of this folder answers the same way.
 */
import { S3Error } from "../s3_error.ts";
import { REQUEST_TIME_SKEW_MAX_MS } from "../../../util/limits.ts";

/** Where the signature came from: the Authorization header or a presigned URL's query. */
export type SignatureLocation = "header" | "query";

/** A signature's parameters that cannot be parsed or are inconsistent. */
export function malformedSignature(
  location: SignatureLocation,
  detail: string,
  extra: Record<string, string> = {},
): S3Error {
  return location === "header"
    ? new S3Error(
      "AuthorizationHeaderMalformed",
      400,
      `The authorization header is malformed; ${detail}`,
      extra,
    )
    : new S3Error("AuthorizationQueryParametersError", 400, detail, extra);
}

export function onlySigV4Supported(): S3Error {
  return new S3Error(
    "InvalidRequest",
    400,
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
  );
}

/** An Authorization header without the space between the algorithm and its fields (or empty). */
export function authorizationWithoutSpace(): S3Error {
  return new S3Error(
    "InvalidArgument",
    400,
    "Authorization header is invalid -- one and only one ' ' (space) required.",
  );
}

export function invalidDate(): S3Error {
  return new S3Error(
    "AccessDenied",
    403,
    "AWS authentication requires a valid Date or x-amz-date header",
  );
}

export function requestTimeTooSkewed(requestTime: string, nowMs: number): S3Error {
  return new S3Error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
    {
      RequestTime: requestTime,
      ServerTime: new Date(nowMs).toISOString(),
      MaxAllowedSkewMilliseconds: String(REQUEST_TIME_SKEW_MAX_MS),
    },
  );
}

/** A presigned URL past its expiry; `extra` names what set it. */
export function requestExpired(
  expiresMs: number,
  nowMs: number,
  extra: Record<string, string> = {},
): S3Error {
  return new S3Error("AccessDenied", 403, "Request has expired", {
    ...extra,
    Expires: new Date(expiresMs).toISOString(),
    ServerTime: new Date(nowMs).toISOString(),
  });
}

export function invalidAccessKeyId(accessKeyId: string): S3Error {
  return new S3Error(
    "InvalidAccessKeyId",
    403,
    "The AWS Access Key Id you provided does not exist in our records.",
    { AWSAccessKeyId: accessKeyId },
  );
}

export function signatureDoesNotMatch(
  message =
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  extra: Record<string, string> = {},
): S3Error {
  return new S3Error("SignatureDoesNotMatch", 403, message, extra);
}

export function headersNotSigned(names: string[]): S3Error {
  return new S3Error(
    "AccessDenied",
    403,
    "There were headers present in the request which were not signed",
    { HeadersNotSigned: names.join(", ") },
  );
}

export function contentSha256Mismatch(clientHex: string, computedHex: string): S3Error {
  return new S3Error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
    { ClientComputedContentSHA256: clientHex, S3ComputedContentSHA256: computedHex },
  );
}

/** The body ended (or the client went away) before all announced bytes arrived, or its framing is broken. */
export function incompleteBody(detail?: string, cause?: unknown): S3Error {
  return new S3Error(
    "IncompleteBody",
    400,
    detail ??
      "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    {},
    cause === undefined ? undefined : { cause },
  );
}

export function malformedTrailer(detail: string): S3Error {
  return new S3Error(
    "MalformedTrailerError",
    400,
    `The request contained trailing data that was not well-formed or did not conform to our published schema: ${detail}`,
  );
}

export function checksumMismatch(algorithm: string): S3Error {
  return new S3Error(
    "BadDigest",
    400,
    `The ${algorithm} you specified did not match the calculated checksum.`,
  );
}

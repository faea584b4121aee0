/** An S3 error answer: code, HTTP status and message, rendered as S3 XML. */
export class S3Error extends Error {
  /** Response headers the answer carries besides the error document (x-amz-delete-marker, ...). */
  headers: Record<string, string> = {};

  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra XML elements of the error document, e.g. { BucketName: "b" }. */
    readonly extra: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "S3Error";
  }

  /** What the server's debug log says of the error besides its code (the client is not told). */
  detail?: string;

  because(detail: string): this {
    this.detail = detail;
    return this;
  }

  withHeaders(headers: Record<string, string>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }
}

/** Frequently used errors, so that codes, statuses and messages stay consistent. */
export const s3Errors = {
  accessDenied: (msg = "Access Denied") => new S3Error("AccessDenied", 403, msg),
  noSuchBucket: (bucket: string) =>
    new S3Error("NoSuchBucket", 404, "The specified bucket does not exist", {
      BucketName: bucket,
    }),
  noSuchKey: (key: string) =>
    new S3Error("NoSuchKey", 404, "The specified key does not exist.", { Key: key }),
  noSuchVersion: (key: string, versionId: string) =>
    new S3Error("NoSuchVersion", 404, "The specified version does not exist.", {
      Key: key,
      VersionId: versionId,
    }),
  invalidArgument: (msg: string, name?: string, value?: string) =>
    new S3Error(
      "InvalidArgument",
      400,
      msg,
      name === undefined ? {} : { ArgumentName: name, ArgumentValue: value ?? "" },
    ),
  invalidRequest: (msg: string) => new S3Error("InvalidRequest", 400, msg),
  malformedXml: (
    msg =
      "The XML you provided was not well-formed or did not validate against our published schema",
  ) => new S3Error("MalformedXML", 400, msg),
  notImplemented: (what: string) =>
    new S3Error("NotImplemented", 501, `${what} is not implemented by remise`),
  internal: (msg = "We encountered an internal error. Please try again.") =>
    new S3Error("InternalError", 500, msg),
  signatureDoesNotMatch: (
    msg =
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  ) => new S3Error("SignatureDoesNotMatch", 403, msg),
  badDigest: (msg = "The Content-MD5 you specified did not match what we received.") =>
    new S3Error("BadDigest", 400, msg),
  incompleteBody: (
    msg = "You did not provide the number of bytes specified by the Content-Length HTTP header.",
  ) => new S3Error("IncompleteBody", 400, msg),
};

/**
 * A client of the admin API for the CLI: finds the address and the token in
 * the configuration, and turns every failure into an `AdminClientError` whose
 * message says what went wrong in words a user can act on.
 *
 * @module
 */
import type {
  BucketInfoJson,
  BucketSummaryJson,
  CreatedKeyJson,
  ErrorJson,
  KeyInfoJson,
  KeySummaryJson,
  RightsJson,
  WebsiteJson,
} from "../api/admin/admin_api.ts";
import { type Config, parseAddr } from "../util/config.ts";
import { errorMessage, fileErrorReason } from "../util/errors.ts";

/** How long the CLI waits for an answer of the admin API. */
export const ADMIN_REQUEST_TIMEOUT_MS = 30_000;

/** Name of the file, in metadata_dir, where the server keeps the token it generated. */
export const ADMIN_TOKEN_FILE_NAME = "admin_token";

/** A request to the admin API that failed; `status` is 0 when no answer came. */
export class AdminClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "AdminClientError";
  }
}

/** `http://host:port` of the admin API; a wildcard bind address is reached on loopback. */
export function adminBaseUrl(config: Config): string {
  const { hostname, port } = parseAddr(config.adminBindAddr, "admin_bind_addr", config.configPath);
  const host = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The admin token: the configuration's admin_token (or admin_token_file),
 * else the one the server wrote to `<metadata_dir>/admin_token` on its first start.
 */
export async function adminToken(config: Config): Promise<string> {
  if (config.adminToken) return config.adminToken;
  const file = `${config.metadataDir}/${ADMIN_TOKEN_FILE_NAME}`;
  let token: string;
  try {
    token = (await Deno.readTextFile(file)).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new AdminClientError(
        `no admin token: ${config.configPath} sets no admin_token and ${file} does not exist ` +
          `(start the server once to create it, or set admin_token)`,
        0,
      );
    }
    throw new AdminClientError(
      `cannot read the admin token from ${file}: ${fileErrorReason(e)}`,
      0,
      undefined,
      {
        cause: e,
      },
    );
  }
  if (token === "") throw new AdminClientError(`the admin token file ${file} is empty`, 0);
  return token;
}

/** Why a connection failed, in a few words. */
function connectionProblem(e: unknown): string {
  if (e instanceof DOMException && e.name === "TimeoutError") {
    return `no answer within ${ADMIN_REQUEST_TIMEOUT_MS / 1000} s`;
  }
  const text = [e, (e as { cause?: unknown })?.cause].map(errorMessage).join(" ");
  if (/connection refused/i.test(text)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(text)) {
    return "cannot resolve the host name";
  }
  if (/timed out/i.test(text)) return "connection timed out";
  if (/connection reset/i.test(text)) return "connection reset";
  // "error sending request for url (...): client error (Connect): tcp connect error: X (os error N)"
  const cause = errorMessage((e as { cause?: unknown })?.cause ?? e);
  return cause.slice(cause.lastIndexOf("): ") + 1).replace(/\s*\(os error \d+\)/, "").trim();
}

/** "Bucket "x" does not exist" -> "bucket "x" does not exist", for "remise: <message>". */
function lowerFirst(message: string): string {
  return /^[A-Z][a-z]/.test(message) ? message[0].toLowerCase() + message.slice(1) : message;
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = ADMIN_REQUEST_TIMEOUT_MS,
  ) {}

  /** A client of the node the configuration describes. */
  static async fromConfig(config: Config): Promise<AdminClient> {
    return new AdminClient(adminBaseUrl(config), await adminToken(config));
  }

  /** Sends one request; returns the decoded JSON answer (undefined for 204). */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new AdminClientError(
        `cannot reach the admin API at ${this.baseUrl} (is the server running? ${
          connectionProblem(e)
        })`,
        0,
        undefined,
        { cause: e },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new AdminClientError(
        `the admin API at ${this.baseUrl} did not finish its answer: ${errorMessage(e)}`,
        res.status,
        undefined,
        { cause: e },
      );
    }
    let decoded: unknown = undefined;
    if (text !== "") {
      try {
        decoded = JSON.parse(text);
      } catch {
        throw new AdminClientError(
          `unexpected answer from ${this.baseUrl}${path} (HTTP ${res.status}, not JSON): ` +
            `is admin_bind_addr the address of a remise admin API?`,
          res.status,
        );
      }
    }
    if (res.ok) return decoded as T;
    const error = decoded as Partial<ErrorJson> | undefined;
    const message = typeof error?.error === "string" ? error.error : `HTTP ${res.status}`;
    if (res.status === 401 || res.status === 403) {
      throw new AdminClientError(
        `the admin API at ${this.baseUrl} refused the admin token (${lowerFirst(message)}): ` +
          `check admin_token in the configuration`,
        res.status,
        error?.code,
      );
    }
    throw new AdminClientError(lowerFirst(message), res.status, error?.code);
  }

  listKeys(): Promise<KeySummaryJson[]> {
    return this.request("GET", "/v1/keys");
  }

  createKey(name: string): Promise<CreatedKeyJson> {
    return this.request("POST", "/v1/keys", { name });
  }

  /** Key info by id, unambiguous id prefix or name. */
  keyInfo(pattern: string): Promise<KeyInfoJson> {
    return this.request("GET", `/v1/keys/${encodeURIComponent(pattern)}`);
  }

  /** Lets a key create buckets, or not. */
  changeKeyRights(change: "allow" | "deny", accessKeyId: string): Promise<KeyInfoJson> {
    return this.request("POST", `/v1/keys/${encodeURIComponent(accessKeyId)}/${change}`, {
      createBucket: true,
    });
  }

  async deleteKey(pattern: string): Promise<void> {
    await this.request("DELETE", `/v1/keys/${encodeURIComponent(pattern)}`);
  }

  listBuckets(): Promise<BucketSummaryJson[]> {
    return this.request("GET", "/v1/buckets");
  }

  createBucket(name: string): Promise<{ name: string; id: string }> {
    return this.request("POST", "/v1/buckets", { name });
  }

  bucketInfo(name: string): Promise<BucketInfoJson> {
    return this.request("GET", `/v1/buckets/${encodeURIComponent(name)}`);
  }

  async deleteBucket(name: string): Promise<void> {
    await this.request("DELETE", `/v1/buckets/${encodeURIComponent(name)}`);
  }

  /** Adds (allow) or removes (deny) rights of a key on a bucket; returns the bucket's info. */
  changeRights(
    change: "allow" | "deny",
    bucket: string,
    accessKeyId: string,
    rights: RightsJson,
  ): Promise<BucketInfoJson> {
    return this.request("POST", `/v1/buckets/${encodeURIComponent(bucket)}/${change}`, {
      accessKeyId,
      ...rights,
    });
  }

  /** Serves a bucket as a website (website given) or stops serving it (null). */
  setWebsite(bucket: string, website: WebsiteJson | null): Promise<BucketInfoJson> {
    const path = `/v1/buckets/${encodeURIComponent(bucket)}/website`;
    return website ? this.request("PUT", path, website) : this.request("DELETE", path);
  }

  status(): Promise<Record<string, unknown>> {
    return this.request("GET", "/v1/status");
  }
}

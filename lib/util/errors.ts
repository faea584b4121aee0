/** Errors shared by every layer. */

/** Wraps a cause with a message saying what could not be done. */
export function wrapError(message: string, cause: unknown): Error {
  return new Error(`${message}: ${errorMessage(cause)}`, { cause });
}

/** The message of any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Why a file could not be read, without the path Deno's own message repeats:
 * "no such file", "permission denied (…)", else Deno's message.
 */
export function fileErrorReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) {
    return "permission denied (run the command as the user the server runs as, e.g. sudo -u remise)";
  }
  return errorMessage(e);
}

/** A configuration file that cannot be used; the message names the file and the key. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/**
 * A start refused by the state of the node's directories rather than by the
 * file: a disk not mounted yet, another process still holding them. It may
 * pass without a change to the configuration, so a service manager should
 * keep trying (see EXIT_CONFIG in cli.ts).
 */
export class DirectoriesNotReadyError extends ConfigError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DirectoriesNotReadyError";
  }
}

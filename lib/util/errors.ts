/** Errors shared by every layer. */

/** Wraps a cause with a message saying what could not be done. */
export function wrapError(message: string, cause: unknown): Error {
  return new Error(`${message}: ${errorMessage(cause)}`, { cause });
}

/** The message of any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A configuration file that cannot be used; the message names the file and the key. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

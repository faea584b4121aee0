/**
 * Where the build scripts find the project (the commit comes from lib/util/version.ts).
 *
 * @module
 */

/** The project's root directory (this file's parent's parent), without a trailing slash. */
export const ROOT_DIR = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * remise's version, and the line `remise --version` prints:
 * `remise 0.1.0 (commit abc1234, deno 2.9.6)`.
 *
 * @module
 */

/** The release version of remise. */
export const VERSION = "0.1.0";

/**
 * The commit remise was built from: env REMISE_COMMIT (set by release
 * builds), else `git rev-parse --short HEAD` run in the source checkout this
 * module lives in, else "unknown".
 */
export function commit(): string {
  try {
    const fromEnv = Deno.env.get("REMISE_COMMIT")?.trim();
    if (fromEnv) return fromEnv;
  } catch {
    // No permission to read the environment: fall through to git.
  }
  const dir = import.meta.dirname;
  if (!dir) return "unknown"; // Loaded from a remote URL: there is no checkout.
  try {
    const out = new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const hash = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{4,64}$/.test(hash) ? hash : "unknown";
  } catch {
    return "unknown"; // No git, no permission to run it, or not a checkout.
  }
}

/** `remise VERSION (commit COMMIT, deno DENO_VERSION)`. */
export function versionString(): string {
  return `remise ${VERSION} (commit ${commit()}, deno ${Deno.version.deno})`;
}

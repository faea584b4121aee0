/**
 * What a build embeds about itself: the git commit of the checkout.
 *
 * @module
 */

/**
 * The commit to embed: env REMISE_COMMIT when the build sets it (CI), else
 * `git rev-parse --short HEAD` in `dir`, else "unknown". Read-only: never
 * changes the repository.
 */
export function gitCommit(dir: string): string {
  const fromEnv = Deno.env.get("REMISE_COMMIT")?.trim();
  if (fromEnv) return fromEnv;
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
    return "unknown"; // No git, or not a checkout.
  }
}

/** The project's root directory (this file's parent's parent), without a trailing slash. */
export const ROOT_DIR = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

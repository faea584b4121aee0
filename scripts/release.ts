/**
 * `make release` / `deno task compile`: builds the single executable with
 * `deno compile` for each release target, named `dist/remise-VERSION-TARGET`,
 * then writes `dist/SHA256SUMS` (the format `sha256sum -c` reads).
 *
 * The binaries carry `--unstable-kv -A` (the server needs both), remise's V8
 * flags (lib/util/v8_flags.ts) and the git commit (as an embedded
 * REMISE_COMMIT, which `remise --version` prints).
 *
 * `deno compile` downloads the `denort` runtime of each target from
 * dl.deno.land on first use (cached in DENO_DIR). Without network access that
 * fails, and this script says so in one line and exits 1. DENORT_BIN (a
 * denort binary for the target, honoured by deno compile) avoids the download.
 *
 * Usage: deno run -A scripts/release.ts [TARGET...]   (default: all targets)
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { VERSION } from "../lib/util/version.ts";
import { V8_FLAGS_OPTION } from "../lib/util/v8_flags.ts";
import { ROOT_DIR } from "./_build_info.ts";
import { commit as gitCommit } from "../lib/util/version.ts";

/** The release targets: Linux and macOS, x86_64 and aarch64. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

const DIST_DIR = `${ROOT_DIR}/dist`;

/** Stops the build with one line on stderr, no stack trace. */
function fail(message: string): never {
  console.error(`remise: ${message}`);
  Deno.exit(1);
}

/** True when deno compile's error output says the runtime download failed. */
export function isRuntimeDownloadFailure(stderr: string): boolean {
  return /dl\.deno\.land|denort|base binary/i.test(stderr) &&
    /error sending request|dns error|connect|timed out|network|download/i.test(stderr);
}

/** The target this machine runs, as deno names it (e.g. x86_64-unknown-linux-gnu). */
function hostTarget(): string {
  return Deno.build.target;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function compile(target: string, envFile: string): Promise<string> {
  const output = `${DIST_DIR}/remise-${VERSION}-${target}`;
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--unstable-kv",
      "-A",
      V8_FLAGS_OPTION,
      `--env-file=${envFile}`,
      "--target",
      target,
      "-o",
      output,
      `${ROOT_DIR}/main.ts`,
    ],
    cwd: ROOT_DIR,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr);
  if (!result.success) {
    if (isRuntimeDownloadFailure(stderr)) {
      fail(
        `cannot build ${target}: deno compile could not download its runtime (denort) — ` +
          "no network access to dl.deno.land; build on a machine with internet access, " +
          "or use `make bundle` (dist/remise.js) which needs none",
      );
    }
    console.error(stderr.trimEnd());
    fail(`cannot build ${target}: deno compile failed (exit ${result.code})`);
  }
  return output;
}

/** Runs a binary built for this machine: it must answer `--version` as remise does. */
async function smokeTest(binary: string): Promise<void> {
  const result = await new Deno.Command(binary, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(result.stdout).trim();
  if (!result.success || !out.startsWith(`remise ${VERSION} `)) {
    await Deno.remove(binary).catch(() => {});
    fail(
      `${basename(binary)} does not run as remise (\`--version\` printed ${
        JSON.stringify(out.split("\n")[0])
      }); if DENORT_BIN is set, it must name a denort binary, not deno`,
    );
  }
  console.error(`remise: ${basename(binary)} runs: ${out}`);
}

async function main(): Promise<void> {
  const targets = Deno.args.length > 0 ? Deno.args : [...TARGETS];
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      fail(`unknown target "${target}": choose among ${TARGETS.join(", ")}`);
    }
  }
  await Deno.mkdir(DIST_DIR, { recursive: true });
  const commit = gitCommit();
  const envFile = await Deno.makeTempFile({ prefix: "remise-release-", suffix: ".env" });
  try {
    await Deno.writeTextFile(envFile, `REMISE_COMMIT=${commit}\n`);
    const built: string[] = [];
    for (const target of targets) {
      console.error(`remise: building ${target} (version ${VERSION}, commit ${commit})`);
      const binary = await compile(target, envFile);
      if (target === hostTarget()) await smokeTest(binary);
      built.push(binary);
    }
    const lines = [];
    for (const binary of built) lines.push(`${await sha256File(binary)}  ${basename(binary)}\n`);
    await Deno.writeTextFile(`${DIST_DIR}/SHA256SUMS`, lines.join(""));
    for (const binary of built) console.log(`dist/${basename(binary)}`);
    console.log("dist/SHA256SUMS");
  } finally {
    await Deno.remove(envFile).catch(() => {});
  }
}

if (import.meta.main) await main();

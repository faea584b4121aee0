/**
 * `make bundle`: builds dist/remise.js with `deno bundle` (offline, one file)
 * and puts the git commit in it, so that `deno run -A --unstable-kv
 * dist/remise.js --version` names the commit wherever the file is copied.
 *
 * The commit travels as env REMISE_COMMIT, which lib/util/version.ts reads:
 * a two-line banner sets it when the bundle runs with --allow-env (as it
 * must: the server needs -A) and the variable is not already set.
 *
 * Usage: deno run -A scripts/bundle.ts [OUTPUT]   (default dist/remise.js)
 *
 * @module
 */
import { ROOT_DIR } from "./_build_info.ts";
import { commit as gitCommit } from "../lib/util/version.ts";

const output = Deno.args[0] ?? `${ROOT_DIR}/dist/remise.js`;
const commit = gitCommit();

const built = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--unstable-kv", "-o", output, `${ROOT_DIR}/main.ts`],
  cwd: ROOT_DIR,
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!built.success) {
  console.error(`remise: cannot build ${output}: deno bundle failed (exit ${built.code})`);
  Deno.exit(1);
}

// Checked with a query, not a call, so that a run without --allow-env is not prompted.
const banner = `// remise, built from commit ${commit}
if (Deno.permissions.querySync({ name: "env", variable: "REMISE_COMMIT" }).state === "granted" &&
  !Deno.env.get("REMISE_COMMIT")) Deno.env.set("REMISE_COMMIT", ${JSON.stringify(commit)});
`;
const code = await Deno.readTextFile(output);
const temporary = `${output}.tmp-${crypto.randomUUID()}`;
await Deno.writeTextFile(temporary, banner + code);
await Deno.rename(temporary, output);
console.error(`remise: built ${output} (commit ${commit})`);

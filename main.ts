import { runCli } from "./lib/cli/cli.ts";

Deno.exit(await runCli(Deno.args));

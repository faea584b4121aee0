/** `remise worker list`, `remise repair ...`, `remise block list-errors`. */
import type { Command } from "commander";
import type { AdminClient } from "./admin_client.ts";
import { formatTable } from "./format.ts";
import type { WorkerStatus } from "../util/worker.ts";
import type { BlockError } from "../block/resync.ts";

interface Tools {
  client: (cmd: Command) => Promise<AdminClient>;
  withConfig: (cmd: Command) => Command;
  print: (text: string) => void;
  printJson: (value: unknown) => void;
}

const time = (ms: number | undefined) => (ms === undefined ? "-" : new Date(ms).toISOString());

export function addMaintenanceCommands(
  program: Command,
  { client, withConfig, print, printJson }: Tools,
): void {
  const worker = program.command("worker").description("background workers of the node");
  withConfig(worker.command("list").description("workers, their state and queue lengths"))
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const workers = await (await client(cmd)).request<WorkerStatus[]>("GET", "/v1/workers");
      if (opts.json) return printJson(workers);
      print(formatTable(
        ["WORKER", "STATE", "QUEUE", "ERRORS", "LAST RUN", "PROGRESS"],
        workers.map((w) => [
          w.name,
          w.state,
          w.queueLength === undefined ? "-" : String(w.queueLength),
          w.lastError ? `${w.errors} (last: ${w.lastError})` : String(w.errors),
          time(w.lastRunMs),
          w.progress ?? "",
        ]),
      ));
    });

  const repair = program.command("repair").description(
    "check and repair this node's data (runs in the background)",
  );
  const kinds: [string, string][] = [
    ["tables", "compare every table partition with the other replicas and exchange what differs"],
    ["blocks", "fetch missing blocks, hand over those this node should not keep"],
    ["versions", "re-derive block references from version entries"],
    ["block-refs", "recount the references of every block"],
    ["scrub", "re-read every block, check its hash, fetch a good copy of any that fails"],
  ];
  for (const [kind, description] of kinds) {
    withConfig(repair.command(kind).description(description)).action(
      async (_opts: unknown, cmd: Command) => {
        const result = await (await client(cmd)).request<{ message: string }>(
          "POST",
          "/v1/repair",
          { what: kind },
        );
        print(`${result.message}\nFollow its progress with: remise worker list`);
      },
    );
  }

  const block = program.command("block").description("data blocks of the node");
  withConfig(
    block.command("list-errors").description("blocks that could not be fetched or repaired"),
  )
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const errors = await (await client(cmd)).request<BlockError[]>("GET", "/v1/blocks/errors");
      if (opts.json) return printJson(errors);
      if (errors.length === 0) return print("No block errors.");
      print(formatTable(
        ["BLOCK", "ATTEMPTS", "LAST TRY", "NEXT TRY", "ERROR"],
        errors.map((
          e,
        ) => [e.hash, String(e.attempts), time(e.lastTryMs), time(e.nextTryMs), e.lastError]),
      ));
    });
}

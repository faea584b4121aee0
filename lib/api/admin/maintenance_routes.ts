/** Admin API routes for background work: workers, repairs, block errors. */
import { jsonResponse } from "./_json.ts";
import type { WorkerStatus } from "../../util/worker.ts";
import type { BlockError } from "../../block/resync.ts";
import { errorMessage } from "../../util/errors.ts";

export type RepairKind = "tables" | "blocks" | "versions" | "block-refs" | "scrub";
const REPAIR_KINDS: RepairKind[] = ["tables", "blocks", "versions", "block-refs", "scrub"];

export interface Maintenance {
  workers(): WorkerStatus[];
  repair(kind: RepairKind): Promise<string>;
  blockErrors(): Promise<BlockError[]>;
}

const json = jsonResponse;

/** Answers /v1/workers, /v1/repair and /v1/blocks/errors; undefined when the path is not one of them. */
export async function handleMaintenanceRoute(
  maintenance: Maintenance | undefined,
  method: string,
  path: string,
  req: Request,
): Promise<Response | undefined> {
  if (path !== "v1/workers" && path !== "v1/repair" && path !== "v1/blocks/errors") {
    return undefined;
  }
  if (!maintenance) {
    return json(404, { error: "This node has no background workers", code: "NoSuchRoute" });
  }
  const expected = path === "v1/repair" ? "POST" : "GET";
  if (method !== expected) {
    return json(405, {
      error: `${method} is not allowed on /${path} (use ${expected})`,
      code: "MethodNotAllowed",
    });
  }
  if (path === "v1/workers") return json(200, maintenance.workers());
  if (path === "v1/blocks/errors") return json(200, await maintenance.blockErrors());
  let body: { what?: unknown };
  try {
    body = await req.json();
  } catch (e) {
    return json(400, {
      error: `The request body is not JSON: ${errorMessage(e)}`,
      code: "BadRequest",
    });
  }
  const what = body?.what;
  if (typeof what !== "string" || !REPAIR_KINDS.includes(what as RepairKind)) {
    return json(400, {
      error: `The field "what" must be one of ${REPAIR_KINDS.join(", ")}`,
      code: "BadRequest",
    });
  }
  return json(202, { started: what, message: await maintenance.repair(what as RepairKind) });
}

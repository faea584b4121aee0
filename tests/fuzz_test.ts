/**
 * A short seeded round of scripts/fuzz/s3_fuzz.ts against a fresh server:
 * random signed requests (odd sub-resources, headers and bodies, some cut
 * short) get no 5xx but 501 and 503, and every connection gets an answer.
 * The same seed gives the same requests, so a failure here replays with
 * `deno run -A scripts/fuzz/s3_fuzz.ts --seed 17 --requests 1500 ...`.
 */
import assert from "node:assert/strict";
import { fuzz } from "../scripts/fuzz/s3_fuzz.ts";
import { REGION, withServer } from "./harness.ts";

Deno.test("fuzzing: 1,500 random signed requests get no 5xx and no dropped connection", async () => {
  await withServer(async (server, _s3, credentials) => {
    const { counts, failures } = await fuzz({
      endpoint: server.endpoint,
      ...credentials,
      region: REGION,
      requests: 1500,
      seed: 17,
    });
    assert.deepEqual(
      failures,
      [],
      `statuses: ${JSON.stringify([...counts])}\nserver output:\n${server.output}`,
    );
    // The requests reached the handlers, not only authentication and routing.
    for (const status of ["200", "204", "400", "404"]) {
      assert.ok((counts.get(status) ?? 0) > 20, `few ${status}: ${JSON.stringify([...counts])}`);
    }
  });
});

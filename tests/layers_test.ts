/**
 * The layering rule of DESIGN.md: a module imports only from its own layer
 * or the layers below it.
 */
import assert from "node:assert/strict";

const LAYERS = ["util", "db", "net", "rpc", "table", "block", "model", "api", "web", "cli"];
const ROOT = new URL("../lib/", import.meta.url).pathname;

function layerOf(path: string): number {
  const top = path.slice(ROOT.length).split("/")[0];
  const i = LAYERS.indexOf(top === "web" ? "api" : top);
  if (i < 0) throw new Error(`${path} is in no known layer (lib/${top})`);
  return i;
}

async function* sources(dir: string): AsyncIterable<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("every module imports only from its own layer or the layers below", async () => {
  const violations: string[] = [];
  for await (const file of sources(ROOT.replace(/\/$/, ""))) {
    const text = await Deno.readTextFile(file);
    for (const m of text.matchAll(/^\s*(?:import|export)[^"']*?from\s+["'](\.[^"']+)["']/gm)) {
      const target = new URL(m[1], `file://${file}`).pathname;
      if (!target.startsWith(ROOT)) continue;
      if (layerOf(target) > layerOf(file)) {
        violations.push(`${file.slice(ROOT.length)} imports ${target.slice(ROOT.length)}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

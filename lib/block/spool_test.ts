import assert from "node:assert/strict";
import { OutOfSpaceError } from "../util/free_space.ts";
import { spoolToFile, SpoolTooLargeError } from "./spool.ts";

const bodyOf = (...pieces: string[]) =>
  ReadableStream.from(pieces.map((p) => new TextEncoder().encode(p)));

async function withTmp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "remise_spool_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const filesIn = async (dir: string) => (await Array.fromAsync(Deno.readDir(dir))).length;

Deno.test("spool: the body is read back whole, each piece claimed, and the file removed", () =>
  withTmp(async (dir) => {
    const claims: number[] = [];
    const spooled = await spoolToFile(bodyOf("hello ", "world"), dir, 100, (n) => claims.push(n));
    assert.deepEqual(claims, [6, 5]);
    assert.equal(await new Response(spooled).text(), "hello world");
    assert.equal(await filesIn(dir), 0);
  }));

Deno.test("spool: a body over the limit, or a piece the disk's reserve refuses, leaves no file", () =>
  withTmp(async (dir) => {
    await assert.rejects(
      spoolToFile(bodyOf("0123456789", "0123456789"), dir, 15),
      SpoolTooLargeError,
    );
    assert.equal(await filesIn(dir), 0);
    let claimed = 0;
    const full = (n: number) => {
      if (claimed + n > 8) throw new OutOfSpaceError("data disk", 8 - claimed, 0);
      claimed += n;
    };
    await assert.rejects(spoolToFile(bodyOf("abcdef", "ghijkl"), dir, 100, full), OutOfSpaceError);
    assert.equal(await filesIn(dir), 0);
  }));

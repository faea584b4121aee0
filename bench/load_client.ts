/** Starts the load generator (`load.ts`) as a process of its own and sends it commands. */
import type { LoadCommand } from "./load.ts";

const LOAD = new URL("./load.ts", import.meta.url).pathname;

export class LoadGenerator {
  #nextId = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;

  private constructor(readonly process: Deno.ChildProcess) {
    this.#writer = process.stdin.getWriter();
    this.#done = this.#read();
  }

  static start(): LoadGenerator {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", LOAD],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new LoadGenerator(child);
  }

  get pid(): number {
    return this.process.pid;
  }

  async #read(): Promise<void> {
    let buffered = "";
    for await (const text of this.process.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const msg = JSON.parse(line) as {
          id: number;
          ok: boolean;
          result?: unknown;
          error?: string;
        };
        const waiter = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.ok) waiter?.resolve(msg.result);
        else waiter?.reject(new Error(`load generator: ${msg.error}`));
      }
    }
    for (const w of this.#pending.values()) w.reject(new Error("the load generator exited"));
    this.#pending.clear();
  }

  async call<T = Record<string, unknown>>(command: LoadCommand): Promise<T> {
    const id = this.#nextId++;
    const answer = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, ...command }) + "\n"));
    return await answer as T;
  }

  async close(): Promise<void> {
    try {
      await this.call({ cmd: "exit" }).catch(() => {});
      await this.#writer.close().catch(() => {});
    } finally {
      await this.process.status;
      await this.#done;
    }
  }
}

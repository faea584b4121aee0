import assert from "node:assert/strict";
import { type ByteChannel, FrameWriter } from "./_frame_writer.ts";

/** A channel that takes writes until told otherwise, recording them; `settle()` makes it idle. */
class FakeChannel implements ByteChannel {
  readonly written: Uint8Array[] = [];
  #unsettled = 0;
  #idleWaiters: (() => void)[] = [];

  write(bytes: Uint8Array): boolean {
    this.written.push(bytes);
    this.#unsettled++;
    return true;
  }
  writeFrame(head: Uint8Array, payload: Uint8Array): boolean {
    assert.ok(this.idle(), "a data frame is written only to an idle channel");
    this.written.push(head, payload);
    this.#unsettled++;
    return true;
  }
  idle(): boolean {
    return this.#unsettled === 0;
  }
  whenIdle(): Promise<void> {
    return this.idle() ? Promise.resolve() : new Promise((r) => this.#idleWaiters.push(r));
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {}
  destroy(): void {}

  /** Everything written so far has been handed on. */
  settle(): void {
    this.#unsettled = 0;
    const waiters = this.#idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }
}

const bytes = (...values: number[]) => new Uint8Array(values);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("FrameWriter sends a data frame's payload from the sender's buffer, once the channel is idle", async () => {
  const channel = new FakeChannel();
  const writer = new FrameWriter(channel);
  const payload = bytes(7, 8, 9);
  writer.push(1, bytes(1));
  writer.pushPayload(1, bytes(2), payload, () => true);
  await tick();
  assert.deepEqual(channel.written, [bytes(1)], "the data frame waits for the first write");
  writer.push(0, bytes(3));
  channel.settle();
  await tick();
  channel.settle();
  await writer.flushed();
  assert.deepEqual(channel.written, [bytes(1), bytes(3), bytes(2), payload]);
  assert.equal(channel.written[3], payload, "the payload is the sender's buffer, not a copy");
});

Deno.test("FrameWriter drops the queued data frames of a stream no longer sending", async () => {
  const channel = new FakeChannel();
  const writer = new FrameWriter(channel);
  let live = true;
  writer.push(1, bytes(1));
  writer.pushPayload(1, bytes(2), bytes(20), () => live);
  writer.pushPayload(1, bytes(3), bytes(30), () => true);
  await tick();
  live = false; // the stream was reset: its buffer may be reused
  channel.settle();
  await tick();
  channel.settle();
  await writer.flushed();
  assert.deepEqual(channel.written, [bytes(1), bytes(3), bytes(30)]);
});

import assert from "node:assert/strict";
import {
  decodeCredit,
  decodeHeader,
  encodeCredit,
  encodeFrame,
  encodeHeader,
  FrameDecoder,
  FrameType,
} from "./_framing.ts";
import { formatAddr, parseAddr } from "./_addr.ts";

Deno.test("framing: frames survive any split of the byte stream; a data frame comes out as views of the chunks it spans", () => {
  const data = new Uint8Array(70_000).map((_, i) => (i * 31) % 251);
  const frames = [
    encodeHeader(FrameType.REQUEST, 1, { v: 1, p: "x", b: [1, "é"] }),
    encodeFrame(FrameType.DATA, 1, data),
    encodeCredit(2, 65536),
    encodeFrame(FrameType.END, 1),
  ];
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (bytes.set(f, at), at + f.length), 0);
  for (const step of [1, 7, 9, 4096, bytes.length]) {
    const decoder = new FrameDecoder(1 << 20);
    const out = [];
    for (let i = 0; i < bytes.length; i += step) {
      out.push(...decoder.push(bytes.subarray(i, i + step)));
    }
    const parts = out.filter((f) => f.type === FrameType.DATA);
    const others = out.filter((f) => f.type !== FrameType.DATA);
    assert.equal(others.length, 3, `step ${step}`);
    assert.deepEqual(decodeHeader(others[0].payload), { v: 1, p: "x", b: [1, "é"] });
    assert.ok(parts.every((f) => f.stream === 1 && f.payload.buffer === bytes.buffer), "views");
    const received = new Uint8Array(data.length);
    parts.reduce((at, f) => (received.set(f.payload, at), at + f.payload.length), 0);
    assert.deepEqual(received, data);
    if (step >= 4096) assert.ok(parts.length <= Math.ceil(data.length / step) + 1, `step ${step}`);
    assert.deepEqual(out.map((f) => f.type), [
      FrameType.REQUEST,
      ...parts.map(() => FrameType.DATA),
      FrameType.CREDIT,
      FrameType.END,
    ]);
    assert.equal(decodeCredit(others[1].payload), 65536);
    assert.equal(others[2].payload.length, 0);
  }
});

Deno.test("framing: an oversized frame is refused before it is buffered", () => {
  const decoder = new FrameDecoder(1024);
  assert.throws(
    () => decoder.push(encodeFrame(FrameType.DATA, 1, new Uint8Array(2000))),
    /exceeds/,
  );
});

Deno.test("addresses: host:port with IPv6 in brackets", () => {
  assert.deepEqual(parseAddr("10.0.0.1:3901"), { host: "10.0.0.1", port: 3901 });
  assert.deepEqual(parseAddr("[::1]:3901"), { host: "::1", port: 3901 });
  assert.deepEqual(parseAddr("node-a.example:1"), { host: "node-a.example", port: 1 });
  assert.throws(() => parseAddr("::1:3901"), /host:port/);
  assert.throws(() => parseAddr("a:99999"), /host:port/);
  assert.equal(formatAddr("::1", 3), "[::1]:3");
});

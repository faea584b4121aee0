import assert from "node:assert/strict";
import { formBoundary, FormDataError, readFormUpload } from "./form_stream.ts";

const encoder = new TextEncoder();

/** A stream of `bytes` cut into chunks of `chunk` bytes. */
function streamOf(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const B = "----formBoundary7MA4";
function form(parts: [string, string, string?][], end = `--${B}--\r\n`): Uint8Array {
  let text = "preamble to ignore\r\n";
  for (const [name, value, filename] of parts) {
    const file = filename === undefined ? "" : `; filename="${filename}"`;
    const type = filename === undefined ? "" : "\r\nContent-Type: image/png";
    text +=
      `--${B}\r\nContent-Disposition: form-data; name="${name}"${file}${type}\r\n\r\n${value}\r\n`;
  }
  return encoder.encode(text + end);
}

Deno.test("formBoundary reads the boundary of multipart/form-data only", () => {
  assert.equal(formBoundary(`multipart/form-data; boundary=${B}`), B);
  assert.equal(formBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"'), "a b");
  assert.equal(formBoundary("multipart/mixed; boundary=x"), undefined);
  assert.equal(formBoundary("application/x-www-form-urlencoded"), undefined);
  assert.equal(formBoundary(null), undefined);
});

Deno.test("fields before the file are read, the file is streamed, what follows is not read", async () => {
  // The file holds near misses of the delimiter (a sender picks a boundary its data lacks).
  const content = `\r\n--${B.slice(0, 10)}x\r\n-\r\n--${B.slice(0, -1)}X`.repeat(50) + "end";
  const body = form([
    ["Key", "photos/${filename}"],
    ["x-amz-meta-a", "ü"],
    ["key", "second value ignored"],
    ["FILE", content, "cat.png"],
    ["after", "ignored"],
  ]);
  for (const chunk of [1, 7, 64, body.length]) {
    const upload = await readFormUpload(streamOf(body, chunk), B, "file", 1024);
    assert.deepEqual([...upload.fields], [["key", "photos/${filename}"], ["x-amz-meta-a", "ü"]]);
    assert.equal(upload.file?.filename, "cat.png");
    assert.equal(upload.file?.contentType, "image/png");
    assert.equal(new TextDecoder().decode(await readAll(upload.file!.stream)), content, `${chunk}`);
  }
});

Deno.test("a form without the file gives its fields", async () => {
  const upload = await readFormUpload(streamOf(form([["key", "k"]]), 5), B, "file", 1024);
  assert.deepEqual([...upload.fields], [["key", "k"]]);
  assert.equal(upload.file, undefined);
});

Deno.test("broken forms are FormDataErrors", async () => {
  const cases: [string, Uint8Array, string][] = [
    ["no delimiter", encoder.encode("just text"), "the body ends inside the preamble"],
    [
      "cut in a field",
      form([["key", "k"]], `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue`),
      "the body ends inside the form fields",
    ],
    ["fields too large", form([["key", "k".repeat(2000)]]), "the form fields is over"],
    [
      "no name",
      encoder.encode(`--${B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${B}--`),
      "a part has no Content-Disposition name",
    ],
  ];
  for (const [what, body, message] of cases) {
    await assert.rejects(
      readFormUpload(streamOf(body, 3), B, "file", 1024),
      (e) => e instanceof FormDataError && e.message.includes(message),
      what,
    );
  }
  const cut = encoder.encode(
    `--${B}\r\nContent-Disposition: form-data; name="file"\r\n\r\nhalf a fi`,
  );
  const upload = await readFormUpload(streamOf(cut, 4), B, "file", 1024);
  await assert.rejects(
    readAll(upload.file!.stream),
    (e) => e instanceof FormDataError && /ends inside the file/.test(e.message),
  );
});

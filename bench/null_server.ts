/**
 * The do-nothing S3 server of the benchmark's client+loopback ceiling: a bare
 * `Deno.serve` that reads and discards every request body, remembers only the
 * size of what was PUT, and answers GET with that many bytes (from one shared
 * buffer), HEAD with the length, DELETE with 204 and multipart calls with the
 * least XML a client accepts. No signature check, no storage, no hashing.
 *
 * Prints `{"port": N}` on stdout once listening.
 */

const CHUNK_BYTES = 1024 * 1024;
const SMALL_BODY_BYTES = 64 * 1024;
const DATA = crypto.getRandomValues(new Uint8Array(SMALL_BODY_BYTES));
const sizes = new Map<string, number>();
let uploads = 0;

async function discard(body: ReadableStream<Uint8Array> | null): Promise<number> {
  if (!body) return 0;
  const reader = body.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.byteLength;
  }
}

/** `length` bytes, streamed in chunks cut from one buffer (never allocated whole). */
function bytes(length: number): BodyInit {
  if (length <= SMALL_BODY_BYTES) return DATA.subarray(0, length);
  const chunk = new Uint8Array(CHUNK_BYTES);
  for (let off = 0; off < CHUNK_BYTES; off += SMALL_BODY_BYTES) chunk.set(DATA, off);
  let left = length;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const n = Math.min(left, CHUNK_BYTES);
      // a fresh view each time: the runtime may take ownership of what it is given
      controller.enqueue(chunk.slice(0, n));
      left -= n;
      if (left === 0) controller.close();
    },
  }, { highWaterMark: 0 });
}

function handler(req: Request): Promise<Response> | Response {
  const url = new URL(req.url);
  const path = url.pathname;
  switch (req.method) {
    case "PUT":
      return discard(req.body).then((n) => {
        sizes.set(path, n);
        return new Response(null, { status: 200, headers: { etag: '"0"' } });
      });
    case "POST":
      return discard(req.body).then(() => {
        if (url.searchParams.has("uploads")) {
          return new Response(
            `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><UploadId>u${++uploads}</UploadId></InitiateMultipartUploadResult>`,
            { headers: { "content-type": "application/xml" } },
          );
        }
        return new Response(
          `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"0-1"</ETag></CompleteMultipartUploadResult>`,
          { headers: { "content-type": "application/xml" } },
        );
      });
    case "HEAD": {
      const size = sizes.get(path);
      if (size === undefined) return new Response(null, { status: 404 });
      return new Response(null, { status: 200, headers: { "content-length": String(size) } });
    }
    case "GET": {
      const size = sizes.get(path);
      if (size === undefined) return new Response("not found", { status: 404 });
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(Number(range[2]), size - 1);
        return new Response(bytes(end - start + 1), {
          status: 206,
          headers: {
            "content-length": String(end - start + 1),
            "content-range": `bytes ${start}-${end}/${size}`,
          },
        });
      }
      return new Response(bytes(size), { headers: { "content-length": String(size) } });
    }
    case "DELETE":
      sizes.delete(path);
      return new Response(null, { status: 204 });
    default:
      return new Response(null, { status: 200 });
  }
}

if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen(addr) {
      console.log(JSON.stringify({ port: (addr as Deno.NetAddr).port }));
    },
  }, handler);
}

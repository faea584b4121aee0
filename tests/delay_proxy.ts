/** A TCP proxy that delays every byte by a fixed time in each direction (a slow inter-site link). */

export interface DelayProxy {
  port: number;
  close(): void;
}

function pump(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  let chain = Promise.resolve();
  let lastDelivery = 0;
  return (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        const at = Math.max(Date.now() + delayMs, lastDelivery);
        lastDelivery = at;
        chain = chain.then(async () => {
          const wait = at - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          let written = 0;
          while (written < chunk.length) written += await to.write(chunk.subarray(written));
        }).catch(() => {}); // the other side went away
      }
      await chain;
    } catch {
      // either side closed
    } finally {
      await to.closeWrite().catch(() => {});
    }
  })();
}

export function startDelayProxy(targetPort: number, delayMs: number, listenPort = 0): DelayProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: listenPort });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const client of listener) {
      conns.add(client);
      Deno.connect({ hostname: "127.0.0.1", port: targetPort }).then((server) => {
        conns.add(server);
        Promise.all([pump(client, server, delayMs), pump(server, client, delayMs)]).finally(() => {
          for (const c of [client, server]) {
            try {
              c.close();
            } catch {
              // closed
            }
            conns.delete(c);
          }
        });
      }, () => client.close());
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
    },
  };
}

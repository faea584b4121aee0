/** "host:port" addresses of the RPC layer, IPv6 hosts in brackets ("[::1]:3901"). */

export function parseAddr(addr: string): { host: string; port: number } {
  const m = addr.match(/^\[([^\]]+)\]:(\d+)$/) ?? addr.match(/^([^:\[\]]+):(\d+)$/);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new TypeError(`not a "host:port" address: "${addr}"`);
  }
  return { host: m[1], port };
}

export function formatAddr(host: string | undefined, port: number | undefined): string {
  const h = host ?? "unknown";
  return `${h.includes(":") ? `[${h}]` : h}:${port ?? 0}`;
}

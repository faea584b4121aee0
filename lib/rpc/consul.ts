/** Discovery through Consul's catalog: the nodes registered under a service name. */
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

interface CatalogEntry {
  Address?: string;
  ServiceAddress?: string;
  ServicePort?: number;
}

/** The `host:port` RPC addresses listed by `/v1/catalog/service/NAME`. */
export async function consulPeers(
  consulHost: string,
  serviceName: string,
  fetchFn: typeof fetch = fetch,
  timeoutMs = 5_000,
): Promise<string[]> {
  const base = consulHost.includes("://") ? consulHost : `http://${consulHost}`;
  const url = `${base.replace(/\/$/, "")}/v1/catalog/service/${encodeURIComponent(serviceName)}`;
  try {
    const res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const entries = await res.json() as CatalogEntry[];
    if (!Array.isArray(entries)) throw new Error("the answer is not a list");
    return entries.flatMap((e) => {
      const host = e.ServiceAddress || e.Address;
      if (!host || !e.ServicePort) return [];
      return [host.includes(":") ? `[${host}]:${e.ServicePort}` : `${host}:${e.ServicePort}`];
    });
  } catch (e) {
    log("remise::rpc::consul", "warn", `cannot read Consul catalog at ${url}: ${errorMessage(e)}`);
    return [];
  }
}

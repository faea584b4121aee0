/** The net layer: cluster certificates and the intra-cluster RPC transport. */
export * from "./transport.ts";
export { nodeIdOfDer, TlsTransport, type TlsTransportOptions } from "./tls_transport.ts";
export { MemoryNetwork, MemoryTransport, type MemoryTransportOptions } from "./memory_transport.ts";
export * from "./certs.ts";

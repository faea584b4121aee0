/** `node:tls` socket helpers of the TLS transport: identity, handshake, byte channel. */
import type tls from "node:tls";
import type { Socket } from "node:net";
import { createHash, X509Certificate } from "node:crypto";
import { formatAddr } from "./_addr.ts";
import type { ByteChannel } from "./_frame_writer.ts";
import { RpcError } from "./transport.ts";

/** Hex SHA-256 of a DER certificate's SubjectPublicKeyInfo (as certs.ts nodeIdFromCertificate). */
export function nodeIdOfDer(der: Uint8Array | string): string {
  const spki = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("hex");
}

/** The node id proven by the certificate the peer presented, if any. */
export function peerIdOf(sock: tls.TLSSocket): string | undefined {
  const raw = sock.getPeerCertificate(true)?.raw;
  return raw ? nodeIdOfDer(raw) : undefined;
}

/** Connection failures that mean "nobody answers there", as opposed to a refused handshake. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
]);

/** Resolves when the client socket completed its TLS handshake; rejects with unreachable/refused. */
export function handshake(sock: tls.TLSSocket, addr: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sock.once("secureConnect", resolve);
    sock.once("error", (e: Error & { code?: string }) => {
      const kind = UNREACHABLE_CODES.has(e.code ?? "") ? "unreachable" : "refused";
      reject(new RpcError(kind, `${addr}: ${e.message}`, { cause: e }));
    });
    sock.once("close", () => reject(new RpcError("unreachable", `${addr} closed the connection`)));
  });
}

/** The peer's address (a server-side TLS socket may only know it through its TCP socket). */
export function remoteAddr(sock: tls.TLSSocket, port?: number): string {
  const tcp = (sock as unknown as { _parent?: Socket })._parent;
  return formatAddr(
    sock.remoteAddress ?? tcp?.remoteAddress,
    port ?? sock.remotePort ?? tcp?.remotePort,
  );
}

/** A socket as the byte channel of a connection, with the socket's write backpressure. */
export function socketChannel(sock: tls.TLSSocket): ByteChannel {
  return {
    write: (bytes) => sock.destroyed || sock.write(bytes), // frames for a dead socket are dropped
    drained: () =>
      new Promise<void>((resolve) => {
        if (sock.destroyed) return resolve();
        const done = () => {
          sock.off("drain", done);
          sock.off("close", done);
          resolve();
        };
        sock.on("drain", done);
        sock.on("close", done);
      }),
    end: () => sock.end(),
    destroy: () => sock.destroy(),
  };
}

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

/** Certificate checks that fail when a peer's certificate comes from another CA than ours. */
const FOREIGN_CERTIFICATE_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

/** What a failed check of a peer's certificate means for the operator, when it is one. */
function certificateProblem(code: string | undefined): string | undefined {
  if (code !== undefined && FOREIGN_CERTIFICATE_CODES.has(code)) {
    return "its certificate is not signed by this node's ca_cert: every node needs a " +
      "certificate from the same cluster CA (`remise cert node --ca DIR`)";
  }
  if (code === "CERT_HAS_EXPIRED") return "its certificate has expired";
  if (code === "CERT_NOT_YET_VALID") {
    return "its certificate is not valid yet (is one of the two clocks wrong?)";
  }
  return undefined;
}

/** Resolves when the client socket completed its TLS handshake; rejects with unreachable/refused. */
export function handshake(sock: tls.TLSSocket, addr: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sock.once("secureConnect", resolve);
    sock.once("error", (e: Error & { code?: string }) => {
      const kind = UNREACHABLE_CODES.has(e.code ?? "") ? "unreachable" : "refused";
      const problem = certificateProblem(e.code);
      const what = problem === undefined ? e.message : `${problem} (${e.message})`;
      reject(new RpcError(kind, `${addr}: ${what}`, { cause: e }));
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

/**
 * A socket as the byte channel of a connection, with the socket's write
 * backpressure. While nothing is waiting in the socket's buffer a write goes
 * to the TLS layer at once, which copies the bytes before it returns.
 */
export function socketChannel(sock: tls.TLSSocket): ByteChannel {
  let unwritten = 0; // writes whose callback has not run
  let idleWaiters: (() => void)[] = [];
  const wakeIdle = () => {
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };
  const written = () => {
    if (--unwritten === 0) wakeIdle();
  };
  sock.once("close", () => {
    unwritten = 0;
    wakeIdle();
  });
  const untilEvent = (event: string) =>
    new Promise<void>((resolve) => {
      if (sock.destroyed) return resolve();
      const done = () => {
        sock.off(event, done);
        sock.off("close", done);
        resolve();
      };
      sock.on(event, done);
      sock.on("close", done);
    });
  return {
    write: (bytes) => {
      if (sock.destroyed) return true; // frames for a dead socket are dropped
      unwritten++;
      return sock.write(bytes, written);
    },
    writeFrame: (head, payload) => {
      if (sock.destroyed) return true;
      unwritten += 2;
      // Corked, the two go to the TLS layer as one write: one run of TLS records.
      sock.cork();
      sock.write(head, written);
      const ok = sock.write(payload, written);
      sock.uncork();
      return ok;
    },
    idle: () => unwritten === 0 || sock.destroyed,
    whenIdle: () =>
      unwritten === 0 || sock.destroyed
        ? Promise.resolve()
        : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    drained: () => untilEvent("drain"),
    end: () => sock.end(),
    destroy: () => sock.destroy(),
  };
}

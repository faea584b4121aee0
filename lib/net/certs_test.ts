import "reflect-metadata";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";
import {
  createClusterCa,
  issueNodeCertificate,
  nodeIdFromCertificate,
  type PemPair,
  readCaFiles,
  writeCaFiles,
  writeNodeFiles,
} from "./certs.ts";

const HOSTS = ["127.0.0.1", "localhost", "::1"];
const ca = await createClusterCa();
const otherCa = await createClusterCa({ commonName: "intruder CA" });
const server = await issueNodeCertificate(ca, { name: "node-a", hosts: HOSTS });
const client = await issueNodeCertificate(ca, { name: "node-b", hosts: HOSTS });
const intruder = await issueNodeCertificate(otherCa, { name: "node-x", hosts: HOSTS });
const expired = {
  name: "node-old",
  hosts: HOSTS,
  notBefore: new Date(Date.now() - 10 * 86_400_000),
  notAfter: new Date(Date.now() - 86_400_000),
};

/** TBSCertificate starts with the explicit [0] version INTEGER 2 (v3): A0 03 02 01 02. */
function isV3(cert: x509.X509Certificate): boolean {
  const head = Array.from(new Uint8Array(cert.rawData).subarray(0, 16)).join(",");
  return head.includes("160,3,2,1,2");
}

/** An mTLS echo server (node:tls, as the transport will run it). */
async function withServer(
  pair: PemPair,
  fn: (port: number, stats: { accepted: number; clientErrors: number }) => Promise<void>,
): Promise<void> {
  const stats = { accepted: 0, clientErrors: 0 };
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer({
    key: pair.keyPem,
    cert: pair.certPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  }, (sock) => {
    stats.accepted++;
    sockets.add(sock);
    sock.on("data", (d: Buffer) => sock.write(d.toString().toUpperCase()));
    sock.on("error", () => {});
    sock.on("close", () => sockets.delete(sock));
  });
  srv.on("tlsClientError", () => stats.clientErrors++);
  await new Promise<void>((res) => srv.listen(0, "127.0.0.1", res));
  const { port } = srv.address() as { port: number };
  try {
    await fn(port, stats);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((res) => srv.close(res));
  }
}

/** Deno.connectTls client: sends "ping", expects the echo "PING". */
async function denoPing(port: number, caPem: string, pair?: PemPair): Promise<string> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [caPem],
    ...(pair ? { cert: pair.certPem, key: pair.keyPem } : {}),
  });
  try {
    await conn.handshake();
    await conn.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    if (n === null) throw new Error("connection closed by peer");
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    conn.close();
  }
}

/** node:tls client: same exchange. */
function nodePing(port: number, caPem: string, pair?: PemPair): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: "127.0.0.1",
      port,
      ca: caPem,
      ...(pair ? { cert: pair.certPem, key: pair.keyPem } : {}),
    }, () => sock.write("ping"));
    sock.once("data", (d: Buffer) => {
      resolve(d.toString());
      sock.destroy();
    });
    sock.once("error", (e) => reject(e));
    sock.once("close", () => reject(new Error("connection closed by peer")));
  });
}

Deno.test("CA and node certificates are v3 with the required extensions", () => {
  const c = new x509.X509Certificate(ca.certPem);
  assert.ok(isV3(c));
  assert.equal(c.subject, "CN=remise cluster CA");
  const bc = c.getExtension(x509.BasicConstraintsExtension)!;
  assert.ok(bc.ca && bc.critical);
  assert.equal(bc.pathLength, 0);
  const ku = c.getExtension(x509.KeyUsagesExtension)!;
  assert.ok(ku.critical);
  assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  const ski = c.getExtension(x509.SubjectKeyIdentifierExtension)!;

  const n = new x509.X509Certificate(server.certPem);
  assert.ok(isV3(n));
  assert.equal(n.issuer, c.subject);
  assert.ok(!n.getExtension(x509.BasicConstraintsExtension)!.ca);
  assert.ok(n.getExtension(x509.BasicConstraintsExtension)!.critical);
  const nku = n.getExtension(x509.KeyUsagesExtension)!;
  assert.ok(nku.critical);
  assert.equal(
    nku.usages,
    x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
  );
  assert.deepEqual([...n.getExtension(x509.ExtendedKeyUsageExtension)!.usages], [
    x509.ExtendedKeyUsage.serverAuth,
    x509.ExtendedKeyUsage.clientAuth,
  ]);
  assert.equal(n.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, ski.keyId);
  const serial = n.serialNumber;
  assert.ok(serial.length >= 30 && serial.length <= 32 && parseInt(serial[0], 16) < 8);
  const skew = Date.now() - n.notBefore.getTime();
  assert.ok(skew > 3_500_000 && skew < 3_700_000, "notBefore is one hour back");

  // Cross-check with OpenSSL's parser (node:crypto).
  const o = new X509Certificate(server.certPem);
  assert.equal(o.subjectAltName, "DNS:node-a, IP Address:127.0.0.1, DNS:localhost, IP Address:::1");
  assert.ok(o.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(!o.verify(new X509Certificate(otherCa.certPem).publicKey));
  assert.ok(new X509Certificate(ca.certPem).ca);
  assert.ok(!o.ca);
});

Deno.test("bad host names are refused", async () => {
  await assert.rejects(issueNodeCertificate(ca, { name: "bad name", hosts: [] }), /node name/);
  await assert.rejects(issueNodeCertificate(ca, { name: "n", hosts: ["a,b"] }), /"a,b"/);
  await assert.rejects(
    issueNodeCertificate({ certPem: ca.certPem, keyPem: otherCa.keyPem }, { name: "n", hosts: [] }),
    /does not match/,
  );
});

Deno.test("node id: stable across renewal with the same key, differs with another key", async () => {
  const id = await nodeIdFromCertificate(server.certPem);
  assert.match(id, /^[0-9a-f]{64}$/);
  const renewed = await issueNodeCertificate(ca, {
    name: "node-a",
    hosts: ["10.0.0.1"],
    keyPem: server.keyPem,
  });
  assert.notEqual(renewed.certPem, server.certPem);
  assert.equal(renewed.keyPem, server.keyPem);
  assert.equal(await nodeIdFromCertificate(renewed.certPem), id);
  assert.notEqual(await nodeIdFromCertificate(client.certPem), id);
  const fresh = await issueNodeCertificate(ca, { name: "node-a", hosts: HOSTS });
  assert.notEqual(await nodeIdFromCertificate(fresh.certPem), id);
});

Deno.test("mTLS: node:tls server with Deno.connectTls and node:tls clients", async () => {
  await withServer(server, async (port, stats) => {
    assert.equal(await denoPing(port, ca.certPem, client), "PING");
    assert.equal(await nodePing(port, ca.certPem, client), "PING");
    assert.equal(stats.accepted, 2);
  });
});

Deno.test("mTLS: the server refuses clients without a valid certificate", async () => {
  const expiredClient = await issueNodeCertificate(ca, expired);
  await withServer(server, async (port, stats) => {
    await assert.rejects(denoPing(port, ca.certPem), /CertificateRequired/); // no client cert
    await assert.rejects(denoPing(port, ca.certPem, intruder)); // another CA
    await assert.rejects(denoPing(port, ca.certPem, expiredClient));
    await assert.rejects(nodePing(port, ca.certPem));
    await assert.rejects(nodePing(port, ca.certPem, intruder));
    assert.equal(stats.accepted, 0);
    assert.ok(stats.clientErrors >= 5);
  });
});

Deno.test("mTLS: clients refuse a server from another CA or with an expired certificate", async () => {
  await withServer(intruder, async (port) => {
    await assert.rejects(denoPing(port, ca.certPem, client), /UnknownIssuer/);
    await assert.rejects(nodePing(port, ca.certPem, client), /unable to get local issuer/);
  });
  await withServer(await issueNodeCertificate(ca, expired), async (port) => {
    await assert.rejects(denoPing(port, ca.certPem, client), /certificate expired/);
    // Deno's node:tls (rustls underneath) reports expiry as a generic failure.
    await assert.rejects(nodePing(port, ca.certPem, client), /expired|unable to verify/);
  });
});

Deno.test("certificate files: modes, round trip, no overwrite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeCaFiles(dir, ca);
    await writeNodeFiles(`${dir}/node`, server);
    assert.deepEqual(await readCaFiles(dir), ca);
    assert.equal(await Deno.readTextFile(`${dir}/node/node.crt`), server.certPem);
    assert.equal(await Deno.readTextFile(`${dir}/node/node.key`), server.keyPem);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(`${dir}/ca.key`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${dir}/node/node.key`)).mode! & 0o777, 0o600);
    }
    await assert.rejects(writeCaFiles(dir, otherCa), /ca\.crt/);
    await assert.rejects(writeNodeFiles(`${dir}/node`, client), /node\.crt/);
    assert.deepEqual(await readCaFiles(dir), ca, "unchanged after refusal");
    await Deno.remove(`${dir}/ca.crt`);
    await assert.rejects(writeCaFiles(dir, otherCa), /ca\.key/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["ca.key", "node"]);
    await Deno.writeTextFile(`${dir}/ca.crt`, otherCa.certPem);
    await assert.rejects(readCaFiles(dir), /does not match/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

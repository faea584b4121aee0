/**
 * Cluster certificate authority and node certificates for the intra-cluster
 * mTLS transport, made without `openssl` on the servers.
 *
 * Choices:
 * - Keys are ECDSA P-256 made by Web Crypto and stored as PKCS#8 PEM: small,
 *   fast to sign and verify, and accepted by both rustls (`Deno.connectTls`)
 *   and OpenSSL (`node:tls`).
 * - Certificates are built with `@peculiar/x509`. Every one is X.509 v3 with
 *   explicit basicConstraints and keyUsage (critical) because rustls/webpki
 *   refuses v1 certificates and CA certificates without them. Node
 *   certificates carry serverAuth+clientAuth, since every node is both a TLS
 *   server and a TLS client of its peers.
 * - The node name is always a DNS subjectAltName (the peer's expected name);
 *   `hosts` adds DNS names and IP addresses (v4 and v6) so peers can dial a
 *   node by address too.
 * - notBefore is one hour in the past to tolerate clock skew between sites.
 * - A node's id is the SHA-256 of its SubjectPublicKeyInfo, not of the whole
 *   certificate, so renewing a certificate with the same key keeps the id.
 * - Files are written to a temporary name, fsynced, then hard-linked to their
 *   final name: the link fails if the name exists (no overwrite, no race) and
 *   a reader never sees a half-written key. Keys are mode 0600.
 *
 * `@peculiar/x509` needs a Reflect metadata polyfill (tsyringe), imported
 * first below.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isIP } from "node:net";

x509.cryptoProvider.set(crypto);

/** A certificate and its private key, both PEM. */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

const EC: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;
/** Backdating of notBefore, for clocks that disagree between sites. */
const CLOCK_SKEW_MS = 3_600_000;
const CA_VALIDITY_DAYS = 3650;
const NODE_VALIDITY_DAYS = 1825;
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/;

/** Validity window; `notBefore`/`notAfter` override it (tests: expired certs). */
interface ValidityOpts {
  validityDays?: number;
  notBefore?: Date;
  notAfter?: Date;
}

function validity(opts: ValidityOpts, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = opts.notAfter ?? new Date(now + (opts.validityDays ?? defaultDays) * DAY_MS);
  return { notBefore, notAfter };
}

/** 16 random bytes, top bit cleared so the DER INTEGER is positive; hex. */
function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 1; // keep the full 16 bytes of entropy in the encoding
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const m = pem.match(new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`));
  if (!m) throw new Error(`expected a PEM "${label}" block`);
  return Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Imports a PKCS#8 P-256 private key and derives its public key. */
async function importKeyPair(keyPem: string): Promise<CryptoKeyPair> {
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    fromPem(keyPem, "PRIVATE KEY"),
    EC,
    true,
    ["sign"],
  );
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey("jwk", { kty, crv, x, y }, EC, true, ["verify"]);
  return { privateKey, publicKey };
}

async function spkiHex(key: CryptoKey | x509.PublicKey): Promise<string> {
  const der = key instanceof x509.PublicKey
    ? key.rawData
    : await crypto.subtle.exportKey("spki", key);
  const digest = await crypto.subtle.digest("SHA-256", der);
  return Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Creates a self-signed cluster CA (default CN "remise cluster CA", 10 years). */
export async function createClusterCa(
  opts: { commonName?: string } & ValidityOpts = {},
): Promise<PemPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName ?? "remise cluster CA"] }],
    keys,
    signingAlgorithm: SIGN_ALG,
    ...validity(opts, CA_VALIDITY_DAYS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: await exportKeyPem(keys.privateKey) };
}

/** Turns a host (DNS name, IPv4, IPv6, "[IPv6]") into a subjectAltName entry. */
function altName(host: string): x509.JsonGeneralName {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const family = isIP(h);
  if (family === 4) return { type: "ip", value: h };
  if (family === 6) {
    // The library parses hex groups only: rewrite a dotted IPv4 tail ("::ffff:1.2.3.4").
    const v = h.replace(
      /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
      (_, a, b, c, d) => [[a, b], [c, d]].map(([p, q]) => ((+p << 8) | +q).toString(16)).join(":"),
    );
    return { type: "ip", value: v };
  }
  if (!DNS_NAME.test(h)) throw new Error(`not a valid host name or IP address: "${host}"`);
  return { type: "dns", value: h.toLowerCase() };
}

/**
 * Issues a node certificate signed by the cluster CA (default 5 years). Pass
 * `keyPem` to renew with an existing key, which keeps the node id.
 */
export async function issueNodeCertificate(
  ca: PemPair,
  opts: { name: string; hosts: string[]; keyPem?: string } & ValidityOpts,
): Promise<PemPair> {
  if (!DNS_NAME.test(opts.name)) throw new Error(`not a valid node name: "${opts.name}"`);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKeys = await importKeyPair(ca.keyPem);
  if (await spkiHex(caKeys.publicKey) !== await spkiHex(caCert.publicKey)) {
    throw new Error("CA key does not match the CA certificate");
  }
  const keys = opts.keyPem ? await importKeyPair(opts.keyPem) : await generateKeys();
  const names = new Map<string, x509.JsonGeneralName>();
  for (const h of [opts.name, ...opts.hosts]) {
    const n = altName(h);
    names.set(`${n.type}:${n.value}`, n);
  }
  const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [opts.name] }],
    issuer: caCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    ...validity(opts, NODE_VALIDITY_DAYS),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([...names.values()]),
      caSki
        ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
        : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: opts.keyPem ?? await exportKeyPem(keys.privateKey),
  };
}

/** Hex SHA-256 of the certificate's SubjectPublicKeyInfo DER (64 hex chars). */
export async function nodeIdFromCertificate(certPem: string): Promise<string> {
  return await spkiHex(new x509.X509Certificate(certPem).publicKey);
}

/** Writes `dir/name` durably, refusing to replace an existing file. */
async function writeNew(dir: string, name: string, data: string, mode: number): Promise<void> {
  const path = `${dir}/${name}`;
  const tmp = `${dir}/.${name}.${crypto.randomUUID()}.tmp`;
  const f = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode); // exact mode, whatever the umask
    await f.write(new TextEncoder().encode(data));
    await f.sync();
  } finally {
    f.close();
  }
  try {
    await Deno.link(tmp, path);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new Error(`refusing to overwrite existing file ${path}`);
    }
    throw e;
  } finally {
    await Deno.remove(tmp);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

async function writePair(dir: string, base: string, pair: PemPair): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of [`${base}.crt`, `${base}.key`]) {
    if (await Deno.lstat(`${dir}/${f}`).then(() => true, () => false)) {
      throw new Error(`refusing to overwrite existing file ${dir}/${f}`);
    }
  }
  await writeNew(dir, `${base}.key`, pair.keyPem, 0o600);
  await writeNew(dir, `${base}.crt`, pair.certPem, 0o644);
  await fsyncDir(dir);
}

/** Writes DIR/ca.crt and DIR/ca.key (0600); refuses to overwrite either. */
export async function writeCaFiles(dir: string, pair: PemPair): Promise<void> {
  await writePair(dir, "ca", pair);
}

/** Writes DIR/node.crt and DIR/node.key (0600); refuses to overwrite either. */
export async function writeNodeFiles(dir: string, pair: PemPair): Promise<void> {
  await writePair(dir, "node", pair);
}

/** Reads DIR/ca.crt and DIR/ca.key and checks that they belong together. */
export async function readCaFiles(dir: string): Promise<PemPair> {
  const certPem = await Deno.readTextFile(`${dir}/ca.crt`);
  const keyPem = await Deno.readTextFile(`${dir}/ca.key`);
  const cert = new x509.X509Certificate(certPem);
  const { publicKey } = await importKeyPair(keyPem);
  if (await spkiHex(publicKey) !== await spkiHex(cert.publicKey)) {
    throw new Error(`${dir}/ca.key does not match ${dir}/ca.crt`);
  }
  return { certPem, keyPem };
}

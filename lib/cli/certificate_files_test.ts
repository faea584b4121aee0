import assert from "node:assert/strict";
import { createClusterCa, issueNodeCertificate } from "../net/certs.ts";
import { checkKeyPair, checkNodeCertificate, type ConfiguredPem } from "./certificate_files.ts";

const CONFIG = "/etc/remise/remise.toml";
const pem = (key: string, text: string): ConfiguredPem => ({ key, path: `/etc/${key}`, pem: text });

Deno.test("certificate files: a node's certificate, key and CA that go together pass", async () => {
  const ca = await createClusterCa();
  const node = await issueNodeCertificate(ca, { name: "node1", hosts: ["127.0.0.1"] });
  const files = {
    ca: pem("ca_cert", ca.certPem),
    cert: pem("node_cert", node.certPem),
    key: pem("node_key", node.keyPem),
  };
  checkNodeCertificate(CONFIG, files, Date.now());
  checkKeyPair(CONFIG, files.cert, files.key);

  const expired = await issueNodeCertificate(ca, {
    name: "node1",
    hosts: [],
    keyPem: node.keyPem,
    notBefore: new Date(Date.now() - 3 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  assert.throws(
    () =>
      checkNodeCertificate(
        CONFIG,
        { ...files, cert: pem("node_cert", expired.certPem) },
        Date.now(),
      ),
    /^ConfigError: Invalid configuration in \/etc\/remise\/remise\.toml: node_cert "\/etc\/node_cert" expired on /,
  );
});

Deno.test("certificate files: a key that is not the certificate's, or files swapped, are named", async () => {
  const ca = await createClusterCa();
  const node = await issueNodeCertificate(ca, { name: "node1", hosts: [] });
  const other = await issueNodeCertificate(ca, { name: "node2", hosts: [] });
  assert.throws(
    () => checkKeyPair(CONFIG, pem("api_tls_cert", other.certPem), pem("api_tls_key", node.keyPem)),
    {
      name: "ConfigError",
      message:
        `Invalid configuration in ${CONFIG}: api_tls_key "/etc/api_tls_key" is not the key ` +
        'of api_tls_cert "/etc/api_tls_cert": give the key made with that certificate',
    },
  );
  assert.throws(
    () => checkKeyPair(CONFIG, pem("node_cert", node.keyPem), pem("node_key", node.certPem)),
    /node_cert "\/etc\/node_cert" is not a PEM certificate: it holds a private key/,
  );
  assert.throws(
    () => checkKeyPair(CONFIG, pem("node_cert", node.certPem), pem("node_key", node.certPem)),
    /node_key "\/etc\/node_key" is not a PEM private key: it holds a certificate/,
  );
  assert.throws(
    () => checkKeyPair(CONFIG, pem("node_cert", "garbage"), pem("node_key", node.keyPem)),
    /node_cert "\/etc\/node_cert" is not a PEM certificate \(/,
  );
});

Deno.test("certificate files: a node certificate from another CA is named", async () => {
  const node = await issueNodeCertificate(await createClusterCa(), { name: "node1", hosts: [] });
  const files = {
    ca: pem("ca_cert", (await createClusterCa()).certPem),
    cert: pem("node_cert", node.certPem),
    key: pem("node_key", node.keyPem),
  };
  assert.throws(
    () => checkNodeCertificate(CONFIG, files, Date.now()),
    /node_cert "\/etc\/node_cert" is not signed by ca_cert "\/etc\/ca_cert": the nodes of a cluster need certificates made with its one CA/,
  );
});

/**
 * Checks of the certificate files a configuration names, at start and with
 * `--check-config`: each parses, a key is its certificate's, and a node's
 * certificate is its cluster CA's and in date. Unchecked, two files swapped
 * show as a BER decoding error naming neither, and another node's
 * certificate beside this node's key as every peer refusing the node.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { ConfigError, errorMessage } from "../util/errors.ts";

/** A PEM file as the configuration names it. */
export interface ConfiguredPem {
  /** The setting, such as "node_cert". */
  key: string;
  path: string;
  pem: string;
}

/** The certificate a setting names, or a ConfigError that says what the file is instead. */
function certificateOf(configPath: string, file: ConfiguredPem): X509Certificate {
  try {
    return new X509Certificate(file.pem);
  } catch (e) {
    const holds = file.pem.includes("PRIVATE KEY") ? ": it holds a private key" : "";
    throw new ConfigError(
      `Invalid configuration in ${configPath}: ${file.key} "${file.path}" is not a PEM ` +
        `certificate${holds} (${errorMessage(e)})`,
      { cause: e },
    );
  }
}

function privateKeyOf(configPath: string, file: ConfiguredPem): KeyObject {
  try {
    return createPrivateKey(file.pem);
  } catch (e) {
    const holds = file.pem.includes("CERTIFICATE") ? ": it holds a certificate" : "";
    throw new ConfigError(
      `Invalid configuration in ${configPath}: ${file.key} "${file.path}" is not a PEM ` +
        `private key${holds} (${errorMessage(e)})`,
      { cause: e },
    );
  }
}

/** Checks that `key` is the private key of `cert`; returns the certificate. */
export function checkKeyPair(
  configPath: string,
  cert: ConfiguredPem,
  key: ConfiguredPem,
): X509Certificate {
  const certificate = certificateOf(configPath, cert);
  if (!certificate.checkPrivateKey(privateKeyOf(configPath, key))) {
    throw new ConfigError(
      `Invalid configuration in ${configPath}: ${key.key} "${key.path}" is not the key of ` +
        `${cert.key} "${cert.path}": give the key made with that certificate`,
    );
  }
  return certificate;
}

/** Checks a node's certificate, key and cluster CA (see the module's comment). */
export function checkNodeCertificate(
  configPath: string,
  files: { ca: ConfiguredPem; cert: ConfiguredPem; key: ConfiguredPem },
  nowMs: number,
): void {
  const { ca, cert, key } = files;
  const certificate = checkKeyPair(configPath, cert, key);
  if (!certificate.verify(certificateOf(configPath, ca).publicKey)) {
    throw new ConfigError(
      `Invalid configuration in ${configPath}: ${cert.key} "${cert.path}" is not signed by ` +
        `${ca.key} "${ca.path}": the nodes of a cluster need certificates made with its one CA ` +
        "(`remise cert node --ca DIR`)",
    );
  }
  if (certificate.validToDate.getTime() < nowMs) {
    throw new ConfigError(
      `Invalid configuration in ${configPath}: ${cert.key} "${cert.path}" expired on ` +
        `${certificate.validToDate.toISOString()}: make a new one with \`remise cert node\``,
    );
  }
}

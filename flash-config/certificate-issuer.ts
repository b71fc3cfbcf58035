import { randomBytes, type webcrypto } from 'node:crypto';
import { x509 } from './x509-provider.js';
import { SIGNING_ALGORITHM } from './keys.js';
import { clusterUri, policySignerUri, unitUri } from './layout.js';

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

export interface IssuingCa {
  certificate: x509.X509Certificate;
  signingKey: webcrypto.CryptoKey;
}

const DAY_MS = 86_400_000;

/** Validity starting a minute ago (tolerates small clock skew between provisioner and appliance). */
export function validityFromNow(days: number, now = new Date()): Validity {
  const notBefore = new Date(now.getTime() - 60_000);
  return { notBefore, notAfter: new Date(now.getTime() + days * DAY_MS) };
}

/** 128-bit positive serial with a non-zero first byte, so its hex form has one canonical spelling. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export async function createCaCertificate(params: {
  clusterName: string;
  clusterId: string;
  keys: webcrypto.CryptoKeyPair;
  validity: Validity;
}): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${params.clusterName} cluster CA, O=edgeplane`,
    ...params.validity,
    keys: params.keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: clusterUri(params.clusterId) }]),
      await x509.SubjectKeyIdentifierExtension.create(params.keys.publicKey),
    ],
  });
}

async function issueEndEntity(params: {
  ca: IssuingCa;
  subject: string;
  publicKey: webcrypto.CryptoKey;
  validity: Validity;
  names: x509.JsonGeneralNames;
  extendedKeyUsages: x509.ExtendedKeyUsageType[];
}): Promise<x509.X509Certificate> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.SubjectAlternativeNameExtension(params.names),
    await x509.SubjectKeyIdentifierExtension.create(params.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(params.ca.certificate.publicKey),
  ];
  if (params.extendedKeyUsages.length > 0) {
    extensions.push(new x509.ExtendedKeyUsageExtension(params.extendedKeyUsages));
  }
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: params.subject,
    issuer: params.ca.certificate.subject,
    ...params.validity,
    publicKey: params.publicKey,
    signingKey: params.ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
}

/** A unit's mutual-TLS certificate: unit id as CN and URI SAN, its addresses as IP SANs. */
export function issueUnitCertificate(params: {
  ca: IssuingCa;
  unitId: string;
  addresses: readonly string[];
  publicKey: webcrypto.CryptoKey;
  validity: Validity;
  /** Only tests of the verifier override this; units always get serverAuth + clientAuth. */
  extendedKeyUsages?: x509.ExtendedKeyUsageType[];
}): Promise<x509.X509Certificate> {
  return issueEndEntity({
    ca: params.ca,
    subject: `CN=${params.unitId}, O=edgeplane`,
    publicKey: params.publicKey,
    validity: params.validity,
    names: [
      { type: 'url', value: unitUri(params.unitId) },
      ...params.addresses.map((address) => ({ type: 'ip' as const, value: address })),
    ],
    extendedKeyUsages: params.extendedKeyUsages ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  });
}

/** Certifies the policy-signing key, so the CA certificate is the single trust anchor. */
export function issuePolicySignerCertificate(params: {
  ca: IssuingCa;
  clusterName: string;
  clusterId: string;
  publicKey: webcrypto.CryptoKey;
  validity: Validity;
}): Promise<x509.X509Certificate> {
  return issueEndEntity({
    ca: params.ca,
    subject: `CN=${params.clusterName} policy signer, O=edgeplane`,
    publicKey: params.publicKey,
    validity: params.validity,
    names: [{ type: 'url', value: policySignerUri(params.clusterId) }],
    extendedKeyUsages: [],
  });
}

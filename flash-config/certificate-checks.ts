import { isIPv6 } from 'node:net';
import { x509 } from './x509-provider.js';
import { CertificateRejectedError } from './flash-config-error.js';
import { idFromUri } from './layout.js';
import { normalizeSerial, type RevokedSerials } from './revocation-list.js';

/** What a certificate is checked against: the cluster CA, the revoked serials, and the time. */
export interface TrustContext {
  ca: x509.X509Certificate;
  revokedSerials?: RevokedSerials;
  now: Date;
}

/** Facts a verified unit certificate states about its unit. */
export interface CertifiedUnit {
  unitId: string;
  /** IP SANs, canonical text form. */
  addresses: string[];
  serialNumber: string;
  notAfter: Date;
}

export function parseCertificate(data: string | Uint8Array): x509.X509Certificate {
  try {
    return new x509.X509Certificate(typeof data === 'string' ? data : Buffer.from(data));
  } catch (error) {
    throw new CertificateRejectedError(`not a PEM or DER X.509 certificate (${(error as Error).message})`);
  }
}

/** Canonical text of an IP address so certificate SANs and JSON spellings compare equal. */
export function canonicalIp(address: string): string {
  return isIPv6(address) ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

function checkDates(certificate: x509.X509Certificate, now: Date): void {
  if (now < certificate.notBefore) {
    throw new CertificateRejectedError(
      `not valid yet: valid from ${certificate.notBefore.toISOString()}, now is ${now.toISOString()}`,
    );
  }
  if (now > certificate.notAfter) {
    throw new CertificateRejectedError(
      `expired at ${certificate.notAfter.toISOString()}, now is ${now.toISOString()}`,
    );
  }
}

function subjectAltNames(certificate: x509.X509Certificate): readonly x509.GeneralName[] {
  return certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
}

function uriIds(certificate: x509.X509Certificate, kind: 'unit' | 'cluster' | 'policy-signer'): string[] {
  return subjectAltNames(certificate)
    .filter((name) => name.type === 'url')
    .flatMap((name) => idFromUri(name.value, kind) ?? []);
}

function hasKeyUsage(certificate: x509.X509Certificate, flag: x509.KeyUsageFlags): boolean {
  const usages = certificate.getExtension(x509.KeyUsagesExtension);
  return usages !== null && (usages.usages & flag) === flag;
}

/** The cluster CA: self-signed, a CA, allowed to sign certificates and CRLs, in date. Returns the cluster id. */
export async function checkCaCertificate(ca: x509.X509Certificate, now: Date): Promise<string> {
  if (ca.subject !== ca.issuer || !(await ca.verify({ publicKey: ca, signatureOnly: true }))) {
    throw new CertificateRejectedError('cluster CA certificate is not self-signed');
  }
  if (ca.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
    throw new CertificateRejectedError('cluster CA certificate lacks basicConstraints cA=true');
  }
  if (!hasKeyUsage(ca, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) {
    throw new CertificateRejectedError('cluster CA certificate lacks keyUsage keyCertSign and cRLSign');
  }
  checkDates(ca, now);
  const [clusterId, ...others] = uriIds(ca, 'cluster');
  if (clusterId === undefined || others.length > 0) {
    throw new CertificateRejectedError('cluster CA certificate must carry exactly one urn:edgeplane:cluster:<id> SAN');
  }
  return clusterId;
}

async function checkIssuedByCa(certificate: x509.X509Certificate, trust: TrustContext): Promise<void> {
  if (certificate.issuer !== trust.ca.subject) {
    throw new CertificateRejectedError(
      `issued by '${certificate.issuer}', not by the cluster CA '${trust.ca.subject}'`,
    );
  }
  if (!(await certificate.verify({ publicKey: trust.ca, signatureOnly: true }))) {
    throw new CertificateRejectedError(
      `signature does not verify with the cluster CA key: issued by a different authority named '${certificate.issuer}'`,
    );
  }
  checkDates(certificate, trust.now);
  if (certificate.getExtension(x509.BasicConstraintsExtension)?.ca === true) {
    throw new CertificateRejectedError('is a CA certificate, expected an end-entity certificate');
  }
  if (!hasKeyUsage(certificate, x509.KeyUsageFlags.digitalSignature)) {
    throw new CertificateRejectedError('keyUsage lacks digitalSignature');
  }
  const serial = normalizeSerial(certificate.serialNumber);
  const revoked = trust.revokedSerials?.get(serial);
  if (revoked) {
    throw new CertificateRejectedError(`serial ${serial} was revoked at ${revoked.revokedAt}`);
  }
}

/** A unit certificate (own or a peer's): chained to the cluster CA, in date, not revoked, usable for mutual TLS. */
export async function checkUnitCertificate(certificate: x509.X509Certificate, trust: TrustContext): Promise<CertifiedUnit> {
  await checkIssuedByCa(certificate, trust);
  const usages = certificate.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [];
  for (const [oid, name] of [
    [x509.ExtendedKeyUsage.serverAuth, 'serverAuth'],
    [x509.ExtendedKeyUsage.clientAuth, 'clientAuth'],
  ] as const) {
    if (!usages.includes(oid)) throw new CertificateRejectedError(`extendedKeyUsage lacks ${name}`);
  }
  const [unitId, ...others] = uriIds(certificate, 'unit');
  if (unitId === undefined || others.length > 0) {
    throw new CertificateRejectedError('must carry exactly one urn:edgeplane:unit:<id> SAN');
  }
  return {
    unitId,
    addresses: subjectAltNames(certificate)
      .filter((name) => name.type === 'ip')
      .map((name) => canonicalIp(name.value)),
    serialNumber: normalizeSerial(certificate.serialNumber),
    notAfter: certificate.notAfter,
  };
}

/** The policy signer: chained to the CA, in date, not revoked, and naming this cluster. */
export async function checkPolicySignerCertificate(
  certificate: x509.X509Certificate,
  trust: TrustContext,
  clusterId: string,
): Promise<void> {
  await checkIssuedByCa(certificate, trust);
  if (!uriIds(certificate, 'policy-signer').includes(clusterId)) {
    throw new CertificateRejectedError(`is not a policy signer for cluster ${clusterId} (no urn:edgeplane:policy-signer:${clusterId} SAN)`);
  }
}

import type { x509 } from './x509-provider.js';
import type { RevokedSerials } from './revocation-list.js';
import { checkUnitCertificate, parseCertificate, type CertifiedUnit } from './certificate-checks.js';

/**
 * Checks a peer unit's certificate (cluster join, CL-R5): chained to our cluster CA, in date,
 * serverAuth+clientAuth, not on our revocation list. Throws CertificateRejectedError with the reason.
 */
export async function verifyPeerCertificate(
  peer: string | Uint8Array | x509.X509Certificate,
  trust: { ca: x509.X509Certificate; revokedSerials?: RevokedSerials; now?: Date },
): Promise<CertifiedUnit> {
  const certificate = typeof peer === 'string' || peer instanceof Uint8Array ? parseCertificate(peer) : peer;
  return checkUnitCertificate(certificate, { ...trust, now: trust.now ?? new Date() });
}

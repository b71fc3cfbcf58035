import { x509 } from './x509-provider.js';
import { SIGNING_ALGORITHM } from './keys.js';
import type { IssuingCa } from './certificate-issuer.js';

export interface Revocation {
  serialNumber: string;
  revocationDate: Date;
}

/** Lowercase hex without leading zero bytes: how serials are compared and printed. */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw new Error(`serial '${serial}' is not hexadecimal`);
  return hex.replace(/^(00)+(?=.)/, '');
}

export function revocationsOf(list: x509.X509Crl): Revocation[] {
  return list.entries.map((entry) => ({
    serialNumber: normalizeSerial(entry.serialNumber),
    revocationDate: entry.revocationDate,
  }));
}

/**
 * A CA-signed X.509 CRL. Units carry no nextUpdate deadline on purpose: an appliance cut off from
 * its authority must keep booting, so a newer list replaces an older one only by thisUpdate.
 */
export function createRevocationList(ca: IssuingCa, revocations: readonly Revocation[], thisUpdate = new Date()) {
  return x509.X509CrlGenerator.create({
    issuer: ca.certificate.subject,
    thisUpdate,
    signingAlgorithm: SIGNING_ALGORITHM,
    signingKey: ca.signingKey,
    entries: revocations.map((revocation) => ({
      serialNumber: revocation.serialNumber,
      revocationDate: revocation.revocationDate,
      reason: x509.X509CrlReason.cessationOfOperation,
    })),
  });
}

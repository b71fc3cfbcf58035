import type { RevocationList, Revocation } from './revocation-schema.js';

/** Lowercase hex without leading zero bytes: how serials are compared and printed. */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw new Error(`serial '${serial}' is not hexadecimal`);
  return hex.replace(/^0+(?=.)/, '');
}

/** Revocations by serial, for lookups during certificate checks. */
export type RevokedSerials = ReadonlyMap<string, Revocation>;

export function revokedSerials(list: RevocationList): RevokedSerials {
  return new Map(list.revoked.map((revocation) => [revocation.serial, revocation]));
}

/** The list with `revocation` added (kept once per serial), re-dated. */
export function withRevocation(list: RevocationList, revocation: Revocation, now: Date): RevocationList {
  const others = list.revoked.filter((existing) => existing.serial !== revocation.serial);
  return { ...list, issuedAt: now.toISOString(), revoked: [...others, revocation] };
}

export function emptyRevocationList(now: Date): RevocationList {
  return { schemaVersion: 1, issuedAt: now.toISOString(), revoked: [] };
}

export const revocationListBytes = (list: RevocationList): Buffer => Buffer.from(JSON.stringify(list, null, 2) + '\n');

/* The operator behind a mutual-TLS connection. The TLS layer has already checked the chain against
 * the cluster CA (requestCert + rejectUnauthorized); here the certificate must also name an
 * operator with a role, or be a unit certificate (a cluster peer), and not be revoked. */
import type { TLSSocket } from 'node:tls';
import { idFromUri } from '../../flash-config/layout.js';
import { parseOperatorUri, type Operator } from './roles.js';

/** An operator, or a cluster member presenting its unit certificate (`unit`: its id). */
export type Identification = { operator: Operator } | { unit: string } | { refused: string };

/** Serials as revoked.json spells them: lowercase hex without leading zeros. */
export type RevokedSerials = ReadonlySet<string> | ReadonlyMap<string, unknown>;

export function identifyClient(socket: TLSSocket, revoked: RevokedSerials): Identification {
  if (!socket.authorized) return { refused: `client certificate not trusted: ${String(socket.authorizationError ?? 'none sent')}` };
  const certificate = socket.getPeerCertificate();
  const serial = (certificate.serialNumber ?? '').toLowerCase().replace(/^0+(?=.)/, '');
  if (revoked.has(serial)) return { refused: `certificate serial ${serial} is revoked` };
  const uris = (certificate.subjectaltname ?? '')
    .split(', ')
    .filter((name) => name.startsWith('URI:'))
    .map((name) => name.slice(4));
  const operators = uris.map(parseOperatorUri).filter((operator) => operator !== undefined);
  const units = uris.map((uri) => idFromUri(uri, 'unit')).filter((unit) => unit !== undefined);
  if (operators.length === 0 && units.length === 1) return { unit: units[0]! };
  if (operators.length !== 1) {
    return { refused: 'certificate names no operator role (needs one SAN URI urn:edgeplane:operator:<name>:role:read-only|operator)' };
  }
  return { operator: operators[0]! };
}

import { z } from 'zod';
import { dnsLabel } from './schema-primitives.js';

/** Lowercase hex without leading zero bytes, as normalizeSerial() prints it. */
export const certificateSerial = z
  .string()
  .regex(/^(?:[1-9a-f][0-9a-f]*|0)$/, 'must be lowercase hexadecimal without leading zeros');

/** revoked.json: certificate serials the cluster authority has revoked (signed by the policy key). */
export const revocationListSchema = z.strictObject({
  schemaVersion: z.literal(1),
  issuedAt: z.iso.datetime(),
  revoked: z.array(
    z.strictObject({
      serial: certificateSerial,
      revokedAt: z.iso.datetime(),
      unitId: dnsLabel.optional(),
    }),
  ),
});

export type RevocationList = z.infer<typeof revocationListSchema>;
export type Revocation = RevocationList['revoked'][number];

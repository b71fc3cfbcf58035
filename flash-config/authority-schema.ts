import { z } from 'zod';
import { dnsLabel } from './schema-primitives.js';

/** authority.json: names the cluster the offline authority speaks for. */
export const authorityDescriptionSchema = z.strictObject({
  schemaVersion: z.literal(1),
  clusterName: dnsLabel,
  clusterId: z.uuid(),
});

export type AuthorityDescription = z.infer<typeof authorityDescriptionSchema>;

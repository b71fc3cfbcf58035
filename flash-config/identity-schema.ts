import { z } from 'zod';
import { configVersion, dnsLabel, ipAddress, port } from './schema-primitives.js';

/** identity.json: who this unit is and how it reaches the cluster. */
export const identitySchema = z.strictObject({
  schemaVersion: z.literal(1),
  cluster: z.strictObject({
    name: dnsLabel,
    id: z.uuid(),
  }),
  configVersion,
  unit: z.strictObject({
    id: dnsLabel,
    mgmtAddress: ipAddress,
    dataAddresses: z.array(ipAddress).min(1),
  }),
  network: z.strictObject({
    mgmtPrefixLength: z.int().min(0).max(128),
    mgmtGateway: ipAddress.optional(),
    dataPrefixLength: z.int().min(0).max(128),
    /** The shared address(es) the whole cluster answers on. */
    clusterAddresses: z.array(ipAddress),
    /** UDP port of cluster keepalives and state sync on the management network. */
    clusterPort: port,
  }),
});

export type Identity = z.infer<typeof identitySchema>;

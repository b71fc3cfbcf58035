import { z } from 'zod';
import { configVersion, dnsLabel, ipAddress, ipv6Address, port } from './schema-primitives.js';

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
    /** One per data NIC, in NIC order: the port's IPv4 address. */
    dataAddresses: z.array(ipAddress).min(1),
    /** The data NICs' IPv6 addresses, in the same order (the first NICs only, when shorter): a port
     * with one answers neighbour discovery, reaches IPv6 servers and holds IPv6 VIPs on its subnet. */
    dataAddresses6: z.array(ipv6Address).optional(),
  }),
  network: z.strictObject({
    mgmtPrefixLength: z.int().min(0).max(128),
    mgmtGateway: ipAddress.optional(),
    dataPrefixLength: z.int().min(0).max(128),
    /** Prefix length of the data NICs' IPv6 subnets; default 64. */
    dataPrefixLength6: z.int().min(0).max(128).optional(),
    /** The shared address(es) the whole cluster answers on. */
    clusterAddresses: z.array(ipAddress),
    /** UDP port of cluster keepalives and state sync on the management network. */
    clusterPort: port,
  }),
});

export type Identity = z.infer<typeof identitySchema>;

/** The addresses identity.json gives the unit, which its certificate must carry as IP SANs. */
export function claimedAddresses(identity: Identity): string[] {
  return [identity.unit.mgmtAddress, ...identity.unit.dataAddresses, ...(identity.unit.dataAddresses6 ?? [])];
}

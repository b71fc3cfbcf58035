import { z } from 'zod';
import { configVersion, ipAddress, port } from './schema-primitives.js';

export const serverSchema = z.strictObject({
  address: ipAddress,
  port,
  weight: z.int().min(0).max(65535).default(1),
});

/** One virtual service; the control application's configuration uses the same shape. */
export const virtualServiceSchema = z.strictObject({
  name: z.string().min(1).max(64),
  vip: ipAddress,
  protocol: z.enum(['tcp', 'udp']),
  port,
  algorithm: z.enum(['maglev', 'wrr', 'least-load']),
  mode: z.enum(['nat', 'fullnat', 'dsr', 'tunnel']),
  /** DSCP value marked on forwarded packets; absent leaves the marking untouched. */
  dscp: z.int().min(0).max(63).optional(),
  servers: z.array(serverSchema).min(1),
});

const macAddress = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'must be a MAC address like 02:65:70:00:01:64');
const isGroupMac = (mac: string) => (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1;

/** How packets for the cluster's shared addresses reach the members (cluster.md CL-R2):
 * - `unicast-mac`: every member's data ports accept the shared unicast MAC (the segment must
 *   deliver frames for it to every member), every member answers ARP with it, and a new master
 *   announces the shared addresses at it by gratuitous ARP;
 * - `multicast-mac`: the same with a multicast MAC, which switches flood to every member;
 * - `master-forwarding`: only the master answers ARP for the shared addresses, with its own port's
 *   MAC (announced on every change of master), and passes each frame of another member's work unit
 *   on to that member. */
export const clusterDeliverySchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('unicast-mac'),
    mac: macAddress.refine((mac) => !isGroupMac(mac), 'must be a unicast MAC (first octet even)'),
  }),
  z.strictObject({
    mode: z.literal('multicast-mac'),
    mac: macAddress.refine(
      (mac) => isGroupMac(mac) && mac.toLowerCase() !== 'ff:ff:ff:ff:ff:ff',
      'must be a multicast MAC (first octet odd, e.g. 03:65:70:00:01:64), not the broadcast address',
    ),
  }),
  z.strictObject({ mode: z.literal('master-forwarding') }),
]);

/** Cluster timing, load thresholds (cluster.md CL-R6..R8) and delivery mode (CL-R2). */
export const clusterThresholdsSchema = z.strictObject({
  keepaliveIntervalMs: z.int().min(10).max(10_000).default(100),
  memberDeadAfterMs: z.int().min(50).max(60_000).default(400),
  masterSilenceMs: z.int().min(10).max(10_000).default(100),
  rebalanceIntervalMs: z.int().min(100).max(600_000).default(2000),
  /** Answer deadline of the members' TLS requests (joins, unit moves, leases, replication), handshake
   * included: seconds on a slow host (TCG guests sharing two cores). */
  requestTimeoutMs: z.int().min(100).max(60_000).default(2000),
  /** Rebalance when the busiest member's load exceeds the average by this fraction. */
  loadImbalanceThreshold: z.number().min(0).max(10).default(0.2),
  /** Absent: the units serve their own addresses only; a unit still clusters (work units, replication). */
  delivery: clusterDeliverySchema.optional(),
});

export const policySchema = z
  .strictObject({
    configVersion,
    cluster: clusterThresholdsSchema,
    services: z.array(virtualServiceSchema),
  })
  .superRefine((policy, ctx) => {
    const names = new Map<string, number>();
    const listeners = new Map<string, number>();
    policy.services.forEach((service, index) => {
      const sameName = names.get(service.name);
      if (sameName !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['services', index, 'name'], message: `duplicates services[${sameName}].name` });
      }
      names.set(service.name, index);
      const listener = `${service.vip}|${service.protocol}|${service.port}`;
      const sameListener = listeners.get(listener);
      if (sameListener !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', index],
          message: `vip/protocol/port duplicates services[${sameListener}]`,
        });
      }
      listeners.set(listener, index);
    });
  });

export type Policy = z.infer<typeof policySchema>;
export type ClusterDelivery = z.infer<typeof clusterDeliverySchema>;
export type VirtualService = z.infer<typeof virtualServiceSchema>;

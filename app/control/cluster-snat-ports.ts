/* Full-NAT source ports in a cluster (service-routing.md SR-R6, cluster.md "Numbering authority"):
 * every member that translates sources leases a block of the cluster's `fullnat-port` number space
 * from the master and narrows its full-NAT services' port pools to it, so two members never give
 * two connections to one server the same source address and port. */
import type { Lease } from '../cluster/messages.js';
import type { ClusterLog } from '../cluster/master-role.js';
import type { Member } from '../cluster/member.js';
import type { NumberSpace } from '../cluster/numbering.js';
import type { ServiceDefinition } from '../../firmware/dataplane.js';

export const FULLNAT_PORT_SPACE = 'fullnat-port';
/** The cluster's full-NAT source ports: blocks of 4096, so up to 15 members each hold one. */
export const FULLNAT_PORT_NUMBERS: NumberSpace = { name: FULLNAT_PORT_SPACE, first: 1024, last: 65535, blockSize: 4096 };

/** What of the Appliance this needs: its services as configured, and narrowing a pool. */
export interface SnatPortTarget {
  services(): { name: string; definition: ServiceDefinition }[];
  setSnatPorts(serviceName: string, portMin: number, portMax: number): void;
}

export class ClusterSnatPorts {
  /** The leased block, once granted. */
  lease: Lease | undefined;
  private requesting = false;
  /** Each full-NAT service's configured range: the lease narrows it, never widens it. */
  private readonly configured: Map<string, { portMin: number; portMax: number }>;

  constructor(
    private readonly member: Member,
    private readonly target: SnatPortTarget,
    private readonly log: ClusterLog,
  ) {
    this.configured = new Map(
      target.services().flatMap(({ name, definition }) => (definition.snat ? [[name, { portMin: definition.snat.portMin, portMax: definition.snat.portMax }] as const] : [])),
    );
  }

  /** Call before member.start(): leases a block as soon as the unit is in the cluster. */
  start(): void {
    if (this.configured.size === 0) return;
    this.member.onRoleChange((role) => {
      if ((role === 'member' || role === 'master') && !this.lease && !this.requesting) void this.acquire();
    });
  }

  private async acquire(): Promise<void> {
    this.requesting = true;
    try {
      const lease = await this.member.requestLease(FULLNAT_PORT_SPACE);
      this.lease = lease;
      for (const [name, range] of this.configured) {
        const portMin = Math.max(range.portMin, lease.start);
        const portMax = Math.min(range.portMax, lease.start + lease.size - 1);
        if (portMin > portMax) {
          this.log('warn', 'full-NAT lease outside a service\'s source ports', { service: name, lease, configured: range });
          continue;
        }
        this.target.setSnatPorts(name, portMin, portMax);
      }
      this.log('info', 'full-NAT source ports leased', { start: lease.start, size: lease.size, services: [...this.configured.keys()] });
    } catch (error) {
      this.log('warn', 'full-NAT port lease failed', { error: (error as Error).message });
    } finally {
      this.requesting = false;
    }
  }
}

/* How packets for the cluster's shared addresses reach the members (cluster.md CL-R2), on the data
 * plane side:
 * - unicast-mac: every member answers ARP (IPv6: neighbour solicitations) for them with the shared unicast MAC and takes frames
 *   for it (promiscuous ports); a new master announces them at it, from it;
 * - multicast-mac: every member answers with the shared multicast MAC, which switches flood to
 *   every member; ports take their own MAC and group MACs only (a frame the segment floods for
 *   another host is not processed); the announcement's Ethernet source is the port's own MAC (a
 *   multicast source is invalid, bridges drop it);
 * - master-forwarding: only the master answers, with its port's MAC, and announces it; it passes
 *   each frame of another member's work unit on to that member's data-port MAC (members tell the
 *   master their MACs when they join); ports take their own MAC only.
 * In every mode the work-unit filter decides which member processes a packet. */
import type { ArpAnswer, Dataplane, UnitEntry } from '../../firmware/dataplane.js';
import type { ClusterLog } from '../cluster/master-role.js';
import { announcement, type ClusterAddresses } from './cluster-garp.js';

export type DeliveryMode = 'unicast-mac' | 'multicast-mac' | 'master-forwarding';

export class ClusterDelivery {
  private master = false;

  constructor(
    private readonly dp: Dataplane,
    readonly mode: DeliveryMode,
    private readonly shared: readonly ClusterAddresses[],
    private readonly log: ClusterLog,
  ) {
    for (const { port, mac } of shared) {
      if (mode !== 'master-forwarding' && mac === undefined) throw new Error(`${mode} delivery: port ${port} has shared addresses but no shared MAC`);
    }
  }

  /** The shared addresses become local ones and answer ARP (IPv6: neighbour solicitations) as the
   * mode says (forwarding: silent until this member is master). */
  start(): void {
    for (const { port, addresses } of this.shared) {
      for (const address of addresses) this.dp.addLocalAddress(port, address);
      if (this.mode !== 'unicast-mac') this.dp.setOwnMacOnly(port, true);
    }
    this.applyArpAnswers();
  }

  /** Forwarding delivery: the master alone answers for the shared addresses and forwards. */
  roleChanged(master: boolean): void {
    if (master === this.master) return;
    this.master = master;
    if (this.mode === 'master-forwarding') this.applyArpAnswers();
  }

  /** Whether this member passes other members' work units on to them now. */
  get forwarding(): boolean {
    return this.mode === 'master-forwarding' && this.master;
  }

  /** The data plane entry of a unit another member owns: passed on to its data-port MACs (this
   * member forwarding and the owner's MACs known), or dropped. */
  foreignEntry(ownerMacs: readonly string[] | undefined): UnitEntry {
    return this.forwarding && ownerMacs !== undefined && ownerMacs.length > 0 ? { forwardTo: ownerMacs } : 'foreign';
  }

  /** Gratuitous ARP (IPv6: unsolicited neighbour advertisements) for the shared addresses (this
   * member became master or won a tie-break). */
  announce(): void {
    const portMacs = new Map(this.dp.ports().map((info) => [info.id, info.mac]));
    for (const { port, mac, addresses } of this.shared) {
      const own = portMacs.get(port);
      if (own === undefined) continue;
      const answer = mac ?? own;
      // unicast-MAC delivery announces from the shared MAC itself, as it always did (its segment
      // delivers that MAC to every member: a hub, or a switch that does not learn it)
      const from = this.mode === 'unicast-mac' ? answer : own;
      for (const address of addresses) this.dp.inject(port, announcement(answer, address, from));
      this.log('info', 'gratuitous arp sent', { port, mac: answer, addresses, delivery: this.mode });
    }
  }

  private applyArpAnswers(): void {
    for (const { port, mac, addresses } of this.shared) {
      const answer: ArpAnswer = this.mode === 'master-forwarding' ? (this.master ? 'port-mac' : 'silent') : { sharedMac: mac as string };
      for (const address of addresses) this.dp.setArpAnswer(port, address, answer);
    }
  }
}

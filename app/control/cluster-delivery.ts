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
 * In every mode the work-unit filter decides which member processes a packet. The shared addresses
 * are the configured ones (cluster addresses) and the VIPs of the services the unit runs now, which
 * follow an adopted policy (followServices). */
import type { ArpAnswer, Dataplane, UnitEntry } from '../../firmware/dataplane.js';
import type { ClusterLog } from '../cluster/master-role.js';
import { announcement, type ClusterAddresses } from './cluster-garp.js';
import { portSubnetHolds, type PortSettings, type ServiceSettings } from './config.js';

export type DeliveryMode = 'unicast-mac' | 'multicast-mac' | 'master-forwarding';

export class ClusterDelivery {
  private master = false;
  /** The shared addresses now: the configured ones, then also the services' VIPs. */
  private shared: readonly ClusterAddresses[];
  /** The configured addresses that were no service's VIP when the services were first followed:
   * they stay shared whatever the services do. */
  private fixed: readonly ClusterAddresses[] | undefined;

  constructor(
    private readonly dp: Dataplane,
    readonly mode: DeliveryMode,
    private readonly configured: readonly ClusterAddresses[],
    private readonly log: ClusterLog,
  ) {
    for (const { port, mac } of configured) {
      if (mode !== 'master-forwarding' && mac === undefined) throw new Error(`${mode} delivery: port ${port} has shared addresses but no shared MAC`);
    }
    this.shared = configured;
  }

  /** The shared addresses now, by port (what a new master announces). */
  get addresses(): readonly ClusterAddresses[] {
    return this.shared;
  }

  /** The VIPs of the services the unit runs now are shared addresses on the data ports whose subnet
   * holds them (an adopted policy adds or removes services: cluster.md "Applying an adopted
   * policy"): a new one is answered for as the mode says from now on and announced by a new master;
   * one no service has any more is no longer announced (the service manager stopped answering for
   * it). Call it once the services are installed (at start, and after each adopted policy). A VIP's
   * MAC is its port's configured shared MAC, else the cluster's (the first configured one). */
  followServices(services: readonly ServiceSettings[], ports: readonly PortSettings[], portIds: ReadonlyMap<string, number>): void {
    const vips = vipsByPort(services, ports, portIds);
    this.fixed ??= this.configured.map((entry) => ({ ...entry, addresses: entry.addresses.filter((address) => !vips.get(entry.port)?.has(address)) }));
    const clusterMac = this.configured.find((entry) => entry.mac !== undefined)?.mac;
    const next = new Map<number, ClusterAddresses>(this.fixed.map((entry) => [entry.port, { ...entry, addresses: [...entry.addresses] }]));
    for (const [port, addresses] of vips) {
      const entry = next.get(port) ?? { port, ...(clusterMac === undefined ? {} : { mac: clusterMac }), addresses: [] };
      if (this.mode !== 'master-forwarding' && entry.mac === undefined) {
        this.log('warn', 'service VIPs not shared: no shared MAC configured', { port, vips: [...addresses], delivery: this.mode });
        continue;
      }
      for (const address of addresses) if (!entry.addresses.includes(address)) entry.addresses.push(address);
      next.set(port, entry);
    }
    const before = addressKeys(this.shared);
    this.shared = [...next.values()].filter((entry) => entry.addresses.length > 0);
    const added: string[] = [];
    for (const entry of this.shared) {
      for (const address of entry.addresses) {
        // every one again: a fixed address a removed service also had lost its local address with it
        try {
          this.dp.addLocalAddress(entry.port, address);
          this.dp.setArpAnswer(entry.port, address, this.answer(entry.mac));
        } catch (error) {
          this.log('warn', 'shared address not answered', { port: entry.port, address, reason: (error as Error).message });
          continue;
        }
        if (!before.has(`${entry.port} ${address}`)) added.push(address);
      }
    }
    const now = addressKeys(this.shared);
    const removed = [...before].filter((key) => !now.has(key)).map((key) => key.split(' ')[1]);
    if (added.length > 0 || removed.length > 0) this.log('info', 'shared addresses follow the services', { added, removed, delivery: this.mode });
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
      for (const address of addresses) this.dp.setArpAnswer(port, address, this.answer(mac));
    }
  }

  private answer(mac: string | undefined): ArpAnswer {
    return this.mode === 'master-forwarding' ? (this.master ? 'port-mac' : 'silent') : { sharedMac: mac as string };
  }
}

/** The services' VIPs by the id of each data port whose subnet holds them (where the appliance makes
 * them local addresses). */
function vipsByPort(services: readonly ServiceSettings[], ports: readonly PortSettings[], portIds: ReadonlyMap<string, number>): Map<number, Set<string>> {
  const vips = new Map<number, Set<string>>();
  for (const { vip } of services) {
    for (const port of ports) {
      const id = portIds.get(port.device);
      if (portSubnetHolds(port, vip) && id !== undefined) vips.set(id, (vips.get(id) ?? new Set()).add(vip));
    }
  }
  return vips;
}

/** "port address" for every shared address, to compare two sets of them. */
function addressKeys(shared: readonly ClusterAddresses[]): Set<string> {
  return new Set(shared.flatMap(({ port, addresses }) => addresses.map((address) => `${port} ${address}`)));
}

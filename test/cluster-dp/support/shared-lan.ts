/* Cluster units side by side on shared segments ("unicast MAC" delivery, cluster.md CL-R2):
 *
 *   [<p>-cl] eth0 10.0.1.2 ── brc ─┬─ dc [<p>-u<k>] (net_af_packet0, 10.0.1.1 + VIP)   for every unit k
 *                                  │   ctl0 10.77.0.1k ── brm (cluster control network)
 *   [<p>-srv<i>] eth0 10.0.2.1<i> ─ brs ┴─ ds [<p>-u<k>] (net_af_packet1, 10.0.2.1)
 *
 * All bridges live in <p>-sw. Unicast-MAC delivery: brc and brs never learn (ageing 0) so they
 * flood like hubs: every unit sees every frame. The client reaches the VIP, and the server its
 * gateway, through static neighbour entries with made-up shared MACs that every unit's promiscuous
 * port accepts.
 * Multicast-MAC and forwarding delivery: brc and brs are learning switches, the client and the
 * servers find the VIP and their gateway by ARP (the shared multicast MAC, or the master's port
 * MAC), and each unit has its own data addresses besides the shared ones (10.0.1.2<k>, 10.0.2.2<k>:
 * its ARP requests must not teach the servers another MAC for their gateway).
 * With IPv6 (forwarding delivery's IPv6 test) the client and the servers also have the IPv6
 * addresses below and find the VIP6 and their gateway by neighbour discovery; each unit has its own
 * IPv6 data addresses (fd00:1::2<k>, fd00:2::2<k>) besides the shared ones. */
import { existsSync } from 'node:fs';
import { inNamespace, run } from '../../netns/run.js';
import { teardownTopology } from '../../netns/topology.js';

export const CLIENT_IP = '10.0.1.2';
export const SERVER_IPS = ['10.0.2.11', '10.0.2.12'];
export const VIP = '10.0.1.100';
export const SHARED_VIP_MAC = '02:65:70:00:01:64';
export const SERVER_GATEWAY = '10.0.2.1';
export const SHARED_GATEWAY_MAC = '02:65:70:00:02:01';
/** The source address full-NAT services give connections towards the servers. */
export const FULLNAT_SOURCE = '10.0.2.100';
/** Multicast-MAC delivery: the MAC every unit answers ARP for the shared addresses with. */
export const SHARED_MULTICAST_MAC = '03:65:70:00:01:64';
export const CLIENT_IP6 = 'fd00:1::2';
export const SERVER_IP6S = ['fd00:2::11', 'fd00:2::12'];
export const VIP6 = 'fd00:1::100';
export const SERVER_GATEWAY6 = 'fd00:2::1';

/** A unit's own IPv6 data addresses (client side, server side). */
export function unitDataAddresses6(slot: number): [string, string] {
  return [`fd00:1::${20 + slot}`, `fd00:2::${20 + slot}`];
}

export type Delivery = 'unicast-mac' | 'multicast-mac' | 'master-forwarding';

/** A unit's own data addresses: shared by all units in unicast-MAC delivery (the tests' original
 * layout), its own otherwise. */
export function unitDataAddresses(delivery: Delivery, slot: number): [string, string] {
  return delivery === 'unicast-mac' ? ['10.0.1.1', SERVER_GATEWAY] : [`10.0.1.${20 + slot}`, `10.0.2.${20 + slot}`];
}

export interface SharedLan {
  client: string;
  /** One namespace per address of SERVER_IPS. */
  servers: string[];
  unitNamespace(slot: number): string;
  unitAddress(slot: number): string;
  addUnit(slot: number): Promise<void>;
  /** Takes the unit's control-network port down (it vanishes from the cluster without a word) or up. */
  setControl(slot: number, up: boolean): Promise<void>;
  destroy(): Promise<void>;
}

async function offloadsOff(namespace: string, iface: string): Promise<void> {
  await inNamespace(namespace, 'ethtool', ['-K', iface, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
}

/** IPv6 stays off unless asked for. With IPv6 the namespace sends no router solicitations: the kernel
 * repeats them for ever (RFC 7559 back-off), each one a multicast packet every unit counts as a miss,
 * which the IPv6 forwarding test must not see. */
async function namespace(name: string, ipv6 = false): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  await inNamespace(name, 'ip', ['link', 'set', 'lo', 'up']);
  if (!existsSync('/proc/sys/net/ipv6')) return;
  if (!ipv6) await inNamespace(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  else await inNamespace(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.router_solicitations=0', 'net.ipv6.conf.default.router_solicitations=0']);
}

async function addAddress6(ns: string, address: string): Promise<void> {
  await inNamespace(ns, 'ip', ['-6', 'addr', 'add', `${address}/64`, 'dev', 'eth0', 'nodad']);
}

/** A veth from the switch's bridge into a namespace, offloads off on both ends. */
async function plug(sw: string, bridge: string, switchEnd: string, ns: string, nsEnd: string, address?: string): Promise<void> {
  await inNamespace(sw, 'ip', ['link', 'add', switchEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', ns]);
  await offloadsOff(sw, switchEnd);
  await offloadsOff(ns, nsEnd);
  await inNamespace(sw, 'ip', ['link', 'set', switchEnd, 'master', bridge, 'up']);
  if (address) await inNamespace(ns, 'ip', ['addr', 'add', address, 'dev', nsEnd]);
  await inNamespace(ns, 'ip', ['link', 'set', nsEnd, 'up']);
}

export async function createSharedLan(prefix: string, delivery: Delivery = 'unicast-mac', ipv6 = false): Promise<SharedLan> {
  const hubs = delivery === 'unicast-mac';
  const sw = `${prefix}-sw`;
  const client = `${prefix}-cl`;
  const servers = SERVER_IPS.map((_, i) => `${prefix}-srv${i + 1}`);
  const destroy = () => teardownTopology(prefix);
  await destroy();
  await namespace(sw);
  for (const [bridge, hub] of [['brc', hubs], ['brs', hubs], ['brm', false]] as const) {
    await inNamespace(sw, 'ip', ['link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0', ...(hub ? ['ageing_time', '0'] : [])]);
    await inNamespace(sw, 'ip', ['link', 'set', bridge, 'up']);
  }
  await namespace(client, ipv6);
  await plug(sw, 'brc', 'cl', client, 'eth0', `${CLIENT_IP}/24`);
  if (ipv6) await addAddress6(client, CLIENT_IP6);
  if (hubs) await inNamespace(client, 'ip', ['neigh', 'replace', VIP, 'lladdr', SHARED_VIP_MAC, 'dev', 'eth0', 'nud', 'permanent']);
  for (const [i, server] of servers.entries()) {
    await namespace(server, ipv6);
    await plug(sw, 'brs', `srv${i + 1}`, server, 'eth0', `${SERVER_IPS[i]}/24`);
    await inNamespace(server, 'ip', ['route', 'add', 'default', 'via', SERVER_GATEWAY]);
    if (ipv6) {
      await addAddress6(server, SERVER_IP6S[i] as string);
      await inNamespace(server, 'ip', ['-6', 'route', 'add', 'default', 'via', SERVER_GATEWAY6]);
    }
    if (!hubs) continue;
    await inNamespace(server, 'ip', ['neigh', 'replace', SERVER_GATEWAY, 'lladdr', SHARED_GATEWAY_MAC, 'dev', 'eth0', 'nud', 'permanent']);
    await inNamespace(server, 'ip', ['neigh', 'replace', FULLNAT_SOURCE, 'lladdr', SHARED_GATEWAY_MAC, 'dev', 'eth0', 'nud', 'permanent']);
  }
  return {
    client,
    servers,
    unitNamespace: (slot) => `${prefix}-u${slot}`,
    unitAddress: (slot) => `10.77.0.${10 + slot}`,
    async addUnit(slot) {
      const ns = `${prefix}-u${slot}`;
      await namespace(ns);
      await plug(sw, 'brm', `m${slot}`, ns, 'ctl0', `10.77.0.${10 + slot}/24`);
      await inNamespace(ns, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'ctl0']);
      await plug(sw, 'brc', `c${slot}`, ns, 'dc');
      await plug(sw, 'brs', `s${slot}`, ns, 'ds');
    },
    async setControl(slot, up) {
      await inNamespace(sw, 'ip', ['link', 'set', `m${slot}`, up ? 'up' : 'down']);
    },
    destroy,
  };
}

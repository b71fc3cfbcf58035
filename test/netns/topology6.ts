/* IPv6 on top of a topology.ts topology (and its direct return path), for the IPv6 tests:
 *
 *   [client ns] eth0 fd00:1::2/64, default via fd00:1::1 (the appliance's port 0 address6)
 *   [server i ns] eth0 fd00:2::1x/64, default via fd00:2::1 (port 1's address6)
 *   with the direct return path: [<prefix>-rtr] eth0 fd00:2::254, eth1 fd00:3::1 - client eth1 fd00:3::2;
 *   servers send what leaves from fd00:1::/64 (a VIP) via the router (policy rule, table 100).
 *
 * Addresses are added without duplicate address detection, so they are usable at once, and the
 * servers' switch floods multicast (neighbour solicitations) whatever MLD reports it saw. */
import { inNamespace } from './run.js';
import type { Topology } from './topology.js';

export const CLIENT6 = 'fd00:1::2';
export const CLIENT_GATEWAY6 = 'fd00:1::1';
export const SERVER_GATEWAY6 = 'fd00:2::1';
export const SERVERS6 = ['fd00:2::11', 'fd00:2::12'];
/* The direct return path's router (DSR): on the servers' subnet and on a subnet of its own with the client. */
export const ROUTER6 = { serverSide: 'fd00:2::254', clientSide: 'fd00:3::1', client: 'fd00:3::2' };

async function enableIpv6(namespace: string, interfaces: string[]): Promise<void> {
  const keys = ['all', 'default', 'lo', ...interfaces].map((i) => `net.ipv6.conf.${i}.disable_ipv6=0`);
  await inNamespace(namespace, 'sysctl', ['-q', '-w', ...keys]);
}

/** Adds the addresses and routes above; routerNamespace: the one addDirectReturnPath made, if any. */
export async function addIpv6(topology: Topology, routerNamespace?: string): Promise<void> {
  const client = topology.client.namespace;
  await enableIpv6(client, routerNamespace ? ['eth0', 'eth1'] : ['eth0']);
  await inNamespace(client, 'ip', ['-6', 'address', 'add', `${CLIENT6}/64`, 'dev', 'eth0', 'nodad']);
  await inNamespace(client, 'ip', ['-6', 'route', 'add', 'default', 'via', CLIENT_GATEWAY6, 'dev', 'eth0']);
  // Neighbour solicitations are multicast: let the servers' switch flood them whatever MLD it saw.
  await inNamespace(topology.switchNamespace, 'ip', ['link', 'set', 'dev', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
  for (const [i, server] of topology.servers.entries()) {
    await enableIpv6(server.namespace, ['eth0']);
    await inNamespace(server.namespace, 'ip', ['-6', 'address', 'add', `${SERVERS6[i]}/64`, 'dev', 'eth0', 'nodad']);
    await inNamespace(server.namespace, 'ip', ['-6', 'route', 'add', 'default', 'via', SERVER_GATEWAY6]);
  }
  if (!routerNamespace) return;
  await inNamespace(client, 'ip', ['-6', 'address', 'add', `${ROUTER6.client}/64`, 'dev', 'eth1', 'nodad']);
  await enableIpv6(routerNamespace, ['eth0', 'eth1']);
  await inNamespace(routerNamespace, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
  await inNamespace(routerNamespace, 'ip', ['-6', 'address', 'add', `${ROUTER6.serverSide}/64`, 'dev', 'eth0', 'nodad']);
  await inNamespace(routerNamespace, 'ip', ['-6', 'address', 'add', `${ROUTER6.clientSide}/64`, 'dev', 'eth1', 'nodad']);
  await inNamespace(routerNamespace, 'ip', ['-6', 'route', 'add', `${CLIENT6}/128`, 'via', ROUTER6.client]);
  for (const server of topology.servers) {
    // What a server sends from a VIP (DSR) goes back via the router, past the appliance.
    await inNamespace(server.namespace, 'ip', ['-6', 'rule', 'add', 'from', 'fd00:1::/64', 'lookup', '100', 'priority', '100']);
    await inNamespace(server.namespace, 'ip', ['-6', 'route', 'add', 'default', 'via', ROUTER6.serverSide, 'table', '100']);
  }
}

/* A second forwarding agent beside a built topology, for asymmetric routing: the servers send
 * their replies to the client through it, while the client's packets still go through the first.
 *
 *   [client ns] eth0 ──veth── <prefix>-c  (agent 1 port 0)
 *   [client ns] eth2 ──veth── <prefix>-c2 (agent 2 port 0)
 *   br0 [switch ns] ──veth── <prefix>-s  (agent 1 port 1, 10.0.2.1, the servers' default gateway)
 *   br0 [switch ns] ──veth── <prefix>-s2 (agent 2 port 1, 10.0.2.2, the servers' route to the client)
 *
 * The client accepts the replies on eth2 (rp_filter off: its route to the VIP is eth0). Deleting
 * the topology's namespaces removes these links too. */
import { existsSync } from 'node:fs';
import { inNamespace, run } from './run.js';
import type { Topology } from './topology.js';

export const SECOND_AGENT_SERVER_SIDE = '10.0.2.2';
export const SECOND_AGENT_CLIENT_SIDE = '10.0.1.254';
const CLIENT_SECOND_ADDRESS = '10.0.4.2/24';

export interface SecondAgentPath {
  vdevs: string[];
  /** MAC of the client's interface facing agent 2. */
  clientMac: string;
}

async function offloadsOff(namespace: string | undefined, iface: string): Promise<void> {
  const args = ['-K', iface, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'];
  if (namespace) await inNamespace(namespace, 'ethtool', args);
  else await run('ethtool', args);
}

async function agentSide(iface: string): Promise<void> {
  if (existsSync('/proc/sys/net/ipv6')) await run('sysctl', ['-q', '-w', `net.ipv6.conf.${iface}.disable_ipv6=1`]);
  await offloadsOff(undefined, iface);
  await run('ip', ['link', 'set', 'dev', iface, 'up']);
}

export async function macOf(namespace: string, iface: string): Promise<string> {
  const [link] = JSON.parse(await inNamespace(namespace, 'ip', ['-j', 'link', 'show', 'dev', iface])) as { address: string }[];
  return link!.address;
}

export async function addSecondAgentPath(topology: Topology): Promise<SecondAgentPath> {
  const clientSide = `${topology.prefix}-c2`;
  const serverSide = `${topology.prefix}-s2`;
  const client = topology.client.namespace;
  await run('ip', ['link', 'add', clientSide, 'type', 'veth', 'peer', 'name', 'eth2', 'netns', client]);
  await agentSide(clientSide);
  await offloadsOff(client, 'eth2');
  await inNamespace(client, 'ip', ['address', 'add', CLIENT_SECOND_ADDRESS, 'dev', 'eth2']);
  await inNamespace(client, 'ip', ['link', 'set', 'dev', 'eth2', 'up']);
  await inNamespace(client, 'sysctl', ['-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth2.rp_filter=0']);

  await run('ip', ['link', 'add', serverSide, 'type', 'veth', 'peer', 'name', 'up2', 'netns', topology.switchNamespace]);
  await agentSide(serverSide);
  await offloadsOff(topology.switchNamespace, 'up2');
  await inNamespace(topology.switchNamespace, 'ip', ['link', 'set', 'dev', 'up2', 'master', 'br0', 'up']);
  for (const server of topology.servers) {
    await inNamespace(server.namespace, 'ip', ['route', 'add', `${topology.client.ip}/32`, 'via', SECOND_AGENT_SERVER_SIDE]);
  }
  return {
    vdevs: [`net_af_packet0,iface=${clientSide}`, `net_af_packet1,iface=${serverSide}`],
    clientMac: await macOf(client, 'eth2'),
  };
}

/** Removes the second agent's links (harmless when absent); call before building and after tearing down. */
export async function removeSecondAgentPath(prefix: string): Promise<void> {
  for (const iface of [`${prefix}-c2`, `${prefix}-s2`]) {
    if (existsSync(`/sys/class/net/${iface}`)) await run('ip', ['link', 'del', iface]);
  }
}

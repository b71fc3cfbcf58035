/* A client and N servers in network namespaces around an appliance that runs in the root namespace:
 *
 *   [client ns] eth0 10.0.1.2 ──veth── <prefix>-c (root, appliance port 0, gw 10.0.1.1)
 *   [server i ns] eth0 10.0.2.1x ──veth── s<i> ┐
 *                                              br0 [switch ns] uplink ──veth── <prefix>-s (root, appliance port 1, gw 10.0.2.1)
 *
 * The appliance-side ends carry no IP address: the data plane owns them through net_af_packet.
 * Everything is named after a per-test-file prefix, so building first removes what a crashed run
 * with the same prefix left behind. */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { inNamespace, run } from './run.js';

export const CLIENT_IP = '10.0.1.2';
export const CLIENT_GATEWAY = '10.0.1.1';
export const SERVER_GATEWAY = '10.0.2.1';
export const VIP = '10.0.1.100';
const FIRST_SERVER_HOST = 11;

export interface TopologyServer {
  namespace: string;
  ip: string;
  /** Its address on the management network, when the topology has one. */
  managementIp?: string;
}

export interface Topology {
  prefix: string;
  client: { namespace: string; ip: string };
  servers: TopologyServer[];
  switchNamespace: string;
  /** Root-namespace interfaces the appliance opens: port 0 faces the client, port 1 the servers. */
  applianceInterfaces: { client: string; servers: string };
  /** EAL vdev arguments for those interfaces; DPDK names them net_af_packet0 and net_af_packet1. */
  vdevs: string[];
  /** The root namespace's address on the management network (health checks, server agents). */
  managementIp?: string;
}

const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,7}$/;

function names(prefix: string, serverCount: number) {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(`topology prefix "${prefix}" must be 2-8 lowercase letters or digits (interface names are short)`);
  }
  return {
    client: `${prefix}-client`,
    switch: `${prefix}-sw`,
    servers: Array.from({ length: serverCount }, (_, i) => `${prefix}-srv${i + 1}`),
    rootClient: `${prefix}-c`,
    rootServers: `${prefix}-s`,
    managementBridge: `${prefix}-mb`,
  };
}

/** A /24 in 172.16.0.0/12 per prefix: topologies of concurrent test runs get different management
 * subnets in the shared root namespace (a collision needs two prefixes with the same hash). */
function managementSubnet(prefix: string): string {
  let hash = 0;
  for (const char of prefix) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `172.${16 + (hash % 16)}.${(hash >>> 4) % 256}`;
}

/** Like real appliances, the management side is a kernel network apart from the data ports: a
 * bridge in the root namespace and one extra interface (mgmt0) per server namespace. */
async function buildManagementNetwork(prefix: string, bridge: string, servers: TopologyServer[]): Promise<string> {
  const subnet = managementSubnet(prefix);
  const applianceIp = `${subnet}.1`;
  await run('ip', ['link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  await run('ip', ['address', 'add', `${applianceIp}/24`, 'dev', bridge]);
  await run('ip', ['link', 'set', 'dev', bridge, 'up']);
  for (const [i, server] of servers.entries()) {
    const rootEnd = `${prefix}-m${i + 1}`;
    server.managementIp = `${subnet}.${FIRST_SERVER_HOST + i}`;
    await run('ip', ['link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', server.namespace]);
    await run('ip', ['link', 'set', 'dev', rootEnd, 'master', bridge, 'up']);
    await prepareHostSide(server.namespace, 'mgmt0', `${server.managementIp}/24`);
  }
  return applianceIp;
}

/** Without this the kernel hands af_packet partially checksummed packets and 64 KB TSO/GRO frames. */
async function disableOffloads(namespace: string | undefined, iface: string): Promise<void> {
  const args = ['-K', iface, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'];
  if (namespace) await inNamespace(namespace, 'ethtool', args);
  else await run('ethtool', args);
}

async function createNamespace(namespace: string): Promise<void> {
  await run('ip', ['netns', 'add', namespace]);
  await inNamespace(namespace, 'ip', ['link', 'set', 'lo', 'up']);
  // IPv6 autoconfiguration noise (RS, MLD, DAD) would only show up as drops in the data plane's counters.
  if (existsSync('/proc/sys/net/ipv6')) {
    await inNamespace(namespace, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
}

async function prepareApplianceSide(iface: string): Promise<void> {
  if (existsSync('/proc/sys/net/ipv6')) await run('sysctl', ['-q', '-w', `net.ipv6.conf.${iface}.disable_ipv6=1`]);
  await disableOffloads(undefined, iface);
  await run('ip', ['link', 'set', 'dev', iface, 'up']);
}

async function prepareHostSide(namespace: string, iface: string, address: string, gateway?: string): Promise<void> {
  await disableOffloads(namespace, iface);
  await inNamespace(namespace, 'ip', ['address', 'add', address, 'dev', iface]);
  await inNamespace(namespace, 'ip', ['link', 'set', 'dev', iface, 'up']);
  if (gateway) await inNamespace(namespace, 'ip', ['route', 'add', 'default', 'via', gateway]);
}

export async function buildTopology(options: { prefix: string; servers: number; management?: boolean }): Promise<Topology> {
  const n = names(options.prefix, options.servers);
  await teardownTopology(options.prefix);
  try {
    for (const namespace of [n.client, n.switch, ...n.servers]) await createNamespace(namespace);

    await run('ip', ['link', 'add', n.rootClient, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.client]);
    await prepareApplianceSide(n.rootClient);
    await prepareHostSide(n.client, 'eth0', `${CLIENT_IP}/24`, CLIENT_GATEWAY);

    await inNamespace(n.switch, 'ip', ['link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await inNamespace(n.switch, 'ip', ['link', 'set', 'dev', 'br0', 'up']);
    await run('ip', ['link', 'add', n.rootServers, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', n.switch]);
    await prepareApplianceSide(n.rootServers);
    const switchPorts = ['uplink'];
    const servers: TopologyServer[] = [];
    for (const [i, namespace] of n.servers.entries()) {
      const ip = `10.0.2.${FIRST_SERVER_HOST + i}`;
      const switchPort = `s${i + 1}`;
      await inNamespace(n.switch, 'ip', ['link', 'add', switchPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
      await prepareHostSide(namespace, 'eth0', `${ip}/24`, SERVER_GATEWAY);
      switchPorts.push(switchPort);
      servers.push({ namespace, ip });
    }
    for (const port of switchPorts) {
      await disableOffloads(n.switch, port);
      await inNamespace(n.switch, 'ip', ['link', 'set', 'dev', port, 'master', 'br0', 'up']);
    }

    const managementIp = options.management ? await buildManagementNetwork(options.prefix, n.managementBridge, servers) : undefined;
    return {
      prefix: options.prefix,
      client: { namespace: n.client, ip: CLIENT_IP },
      servers,
      switchNamespace: n.switch,
      applianceInterfaces: { client: n.rootClient, servers: n.rootServers },
      vdevs: [`net_af_packet0,iface=${n.rootClient}`, `net_af_packet1,iface=${n.rootServers}`],
      ...(managementIp ? { managementIp } : {}),
    };
  } catch (error) {
    await teardownTopology(options.prefix);
    throw error;
  }
}

async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const listing = await run('ip', ['netns', 'list']);
  return listing
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((namespace) => namespace.startsWith(`${prefix}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes the harness started inside its namespaces (nginx, a stuck curl) would outlive `ip netns del`. */
async function stopProcessesIn(namespace: string): Promise<void> {
  const pids = (await run('ip', ['netns', 'pids', namespace]))
    .split('\n')
    .filter(Boolean)
    .map(Number);
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Removes everything a topology with this prefix created; harmless when nothing is there. */
export async function teardownTopology(prefix: string): Promise<void> {
  const n = names(prefix, 0);
  for (const namespace of await namespacesWithPrefix(prefix)) {
    await stopProcessesIn(namespace);
    await run('ip', ['netns', 'del', namespace]);
  }
  // Deleting a namespace destroys its veth ends, and with them their root peers, asynchronously.
  for (const iface of [n.rootClient, n.rootServers]) {
    const deadline = Date.now() + 5000;
    while (existsSync(`/sys/class/net/${iface}`) && Date.now() < deadline) await sleep(50);
    if (existsSync(`/sys/class/net/${iface}`)) await run('ip', ['link', 'del', iface]);
  }
  if (existsSync(`/sys/class/net/${n.managementBridge}`)) await run('ip', ['link', 'del', n.managementBridge]);
}

/* A return path for direct server return (DSR and tunnel modes), added to a built topology: the
 * servers answer from the VIP straight to the client, past the appliance.
 *
 *   [server i ns] eth0 ── br0 [switch ns] rtr ──veth── eth0 10.0.2.254 [<prefix>-rtr ns] eth1 10.0.3.1
 *                                                                              │ veth
 *                                                             [client ns] eth1 10.0.3.2
 *
 * Servers send what leaves from an address of the client-side subnet (a VIP) via the router (a
 * policy rule, table DIRECT_RETURN_TABLE); replies from their own address (NAT modes) still go to
 * the appliance. The client accepts the replies on eth1 (rp_filter off: the VIP's route is eth0). */
export const DIRECT_RETURN_ROUTER = '10.0.2.254';
const DIRECT_RETURN_ROUTER_CLIENT_SIDE = '10.0.3.1';
const DIRECT_RETURN_CLIENT_SIDE = '10.0.3.2';
const DIRECT_RETURN_TABLE = '100';
const CLIENT_SIDE_SUBNET = '10.0.1.0/24';

export async function addDirectReturnPath(topology: Topology): Promise<{ routerNamespace: string }> {
  const router = `${topology.prefix}-rtr`;
  const client = topology.client.namespace;
  await createNamespace(router);
  await inNamespace(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await inNamespace(topology.switchNamespace, 'ip', ['link', 'add', 'rtr', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router]);
  await inNamespace(topology.switchNamespace, 'ip', ['link', 'set', 'dev', 'rtr', 'master', 'br0', 'up']);
  await prepareHostSide(router, 'eth0', `${DIRECT_RETURN_ROUTER}/24`);
  await inNamespace(client, 'ip', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', router]);
  await prepareHostSide(router, 'eth1', `${DIRECT_RETURN_ROUTER_CLIENT_SIDE}/24`);
  await prepareHostSide(client, 'eth1', `${DIRECT_RETURN_CLIENT_SIDE}/24`);
  await inNamespace(router, 'ip', ['route', 'add', `${topology.client.ip}/32`, 'via', DIRECT_RETURN_CLIENT_SIDE]);
  await inNamespace(client, 'sysctl', ['-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth1.rp_filter=0']);
  for (const server of topology.servers) {
    await inNamespace(server.namespace, 'ip', ['rule', 'add', 'from', CLIENT_SIDE_SUBNET, 'lookup', DIRECT_RETURN_TABLE, 'priority', '100']);
    await inNamespace(server.namespace, 'ip', ['route', 'add', 'default', 'via', DIRECT_RETURN_ROUTER, 'table', DIRECT_RETURN_TABLE]);
  }
  return { routerNamespace: router };
}

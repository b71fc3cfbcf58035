/* Agent and manager configurations for the SMFA tests on the namespace topology. */
import { macOf, SECOND_AGENT_CLIENT_SIDE, SECOND_AGENT_SERVER_SIDE, type SecondAgentPath } from '../netns/second-agent.js';
import { CLIENT_GATEWAY, SERVER_GATEWAY, VIP, type Topology } from '../netns/topology.js';
import type { AgentConfig } from './agent-process.js';
import type { ManagerConfig } from './manager-process.js';

const ROUTES = [
  { prefix: '10.0.1.0', length: 24, port: 0 },
  { prefix: '10.0.2.0', length: 24, port: 1 },
];

export interface Group {
  group: string;
  groupPort: number;
}

async function serverNeighbors(topology: Topology): Promise<AgentConfig['neighbors']> {
  return Promise.all(topology.servers.map(async (s) => ({ ip: s.ip, port: 1, mac: await macOf(s.namespace, 'eth0') })));
}

/** Agent 1: the client's gateway and the VIP's home; the servers' default gateway. */
export async function firstAgent(topology: Topology, group: Group, extra: Partial<AgentConfig> = {}): Promise<AgentConfig> {
  return {
    filePrefix: `${topology.prefix}fa1`,
    vdevs: topology.vdevs,
    ports: [
      { address: CLIENT_GATEWAY, prefixLength: 24 },
      { address: SERVER_GATEWAY, prefixLength: 24 },
    ],
    localAddresses: [{ port: 0, ip: VIP }],
    routes: ROUTES,
    neighbors: [{ ip: topology.client.ip, port: 0, mac: await macOf(topology.client.namespace, 'eth0') }, ...(await serverNeighbors(topology))],
    ...group,
    senderId: 0xfa1,
    ...extra,
  };
}

/** Agent 2: carries the servers' replies to the client (asymmetric routing). */
export async function secondAgent(topology: Topology, path: SecondAgentPath, group: Group): Promise<AgentConfig> {
  return {
    filePrefix: `${topology.prefix}fa2`,
    vdevs: path.vdevs,
    ports: [
      { address: SECOND_AGENT_CLIENT_SIDE, prefixLength: 24 },
      { address: SECOND_AGENT_SERVER_SIDE, prefixLength: 24 },
    ],
    localAddresses: [],
    routes: ROUTES,
    neighbors: [{ ip: topology.client.ip, port: 0, mac: path.clientMac }, ...(await serverNeighbors(topology))],
    ...group,
    senderId: 0xfa2,
  };
}

export function webManager(topology: Topology, group: Group, extra: Partial<ManagerConfig> = {}): ManagerConfig {
  return {
    ...group,
    senderId: 0x5a1,
    services: [{ vip: VIP, port: 80, protocol: 6, servers: topology.servers.map((s) => ({ ip: s.ip, port: 80 })) }],
    ...extra,
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 15_000, pollMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

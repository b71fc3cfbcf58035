/* SMFA over IPv6: a load-balancing manager drives a forwarding agent (its own data plane on
 * net_af_packet veths) for an IPv6 virtual service; curl -6 from the client namespace reaches both
 * nginx servers through IPv6 wildcards (every packet of an unknown flow comes up) and IPv6 fixed
 * affinities (NAT66 of the VIP to the server and back) the agent got over the protocol. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { CLIENT6, CLIENT_GATEWAY6, SERVERS6, SERVER_GATEWAY6, addIpv6 } from '../netns/topology6.js';
import { firstAgent, waitFor, type Group } from './agents.js';
import { startChild, type Child } from './child.js';

const PREFIX = 'epsm6';
const GROUP: Group = { group: '239.192.78.62', groupPort: 17862 };
const VIP6 = 'fd00:1::100';
const REQUESTS = 12;

interface AgentStats {
  agent: Record<string, number>;
  wildcards: number;
  affinities: { key: { srcIp: string; dstIp: string; srcPort: number; dstPort: number }; action: { nat?: { srcIp?: string; dstIp?: string } } }[];
  dataplane: { drops: Record<string, number> };
}
interface ManagerStats {
  counters: Record<string, number>;
  decisions: number;
  denies: unknown[];
}

describe('SMFA over IPv6: a manager drives an agent for an IPv6 virtual service', () => {
  let topology: Topology;
  let nginx: NginxServer[] = [];
  const children: Child[] = [];
  let agent: Child;
  let manager: Child;

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    await addIpv6(topology);
    nginx = await Promise.all(topology.servers.map((s, i) => startNginx(s.namespace, SERVERS6[i]!)));
    const config = await firstAgent(topology, GROUP);
    config.ports[0] = { ...config.ports[0]!, address6: CLIENT_GATEWAY6, prefixLength6: 64 };
    config.ports[1] = { ...config.ports[1]!, address6: SERVER_GATEWAY6, prefixLength6: 64 };
    config.localAddresses.push({ port: 0, ip: VIP6 });
    agent = await startChild('agent-process.ts', config);
    children.push(agent);
    manager = await startChild('manager-process.ts', {
      ...GROUP,
      senderId: 0x5a6,
      wildcardTtlSeconds: 6,
      stickySeconds: 1,
      services: [{ vip: VIP6, port: 80, protocol: 6, servers: SERVERS6.map((ip) => ({ ip, port: 80 })) }],
    });
    children.push(manager);
    await waitFor('the IPv6 wildcards', async () => (await agent.request<AgentStats>('stats')).wildcards === 3);
  });

  afterAll(async () => {
    for (const child of children) await child.stop();
    for (const server of nginx) await server.stop();
    await teardownTopology(PREFIX);
  });

  it('serves HTTP over IPv6 with one decision per connection and NAT66 fixed affinities in both directions', async () => {
    const urls = Array.from({ length: REQUESTS }, () => `http://[${VIP6}]/`);
    const output = await inNamespace(
      topology.client.namespace,
      'curl',
      ['-6', '-g', '-sS', '--interface', CLIENT6, '--max-time', '10', '-H', 'Connection: close', ...urls],
      { timeoutMs: 120_000 },
    );
    const bodies = output.match(/server [0-9a-f:]+\n/g) ?? [];
    expect(bodies).toHaveLength(REQUESTS);
    expect(new Set(bodies)).toEqual(new Set(SERVERS6.map(serverBody)));

    const [m, a] = [await manager.request<ManagerStats>('stats'), await agent.request<AgentStats>('stats')];
    console.log(`IPv6: manager ${JSON.stringify(m.counters)}; agent sent up ${a.agent.interestMatchesSent}, returned ${a.agent.packetsReturned}`);
    expect(m.denies).toEqual([]);
    expect(m.counters.decisions).toBe(REQUESTS);
    expect(m.counters.adopted).toBe(0);
    // The client's SYNs and the servers' SYN-ACKs came up (the latter answered from the decision).
    expect(m.counters.needToKnow).toBeGreaterThanOrEqual(REQUESTS);
    expect(a.agent.packetsReturned).toBe(a.agent.interestMatchesSent);
    // The agent holds both directions of each connection: client -> VIP translated to a server,
    // server -> client translated back to the VIP.
    const toServer = a.affinities.filter((x) => x.key.dstIp === VIP6);
    const toClient = a.affinities.filter((x) => x.key.dstIp === CLIENT6);
    expect(toServer).toHaveLength(REQUESTS);
    expect(toClient).toHaveLength(REQUESTS);
    expect(toServer.every((x) => SERVERS6.includes(x.action.nat?.dstIp ?? ''))).toBe(true);
    expect(toClient.every((x) => x.action.nat?.srcIp === VIP6 && SERVERS6.includes(x.key.srcIp))).toBe(true);
    expect(a.dataplane.drops.nat_unsupported ?? 0).toBe(0);

    // FIN/RST notices of the IPv6 fixed affinities reach the manager (SMFA-R25).
    await waitFor('every IPv6 connection closing', async () => (await manager.request<ManagerStats>('stats')).counters.connectionsClosing === REQUESTS);
  });
});

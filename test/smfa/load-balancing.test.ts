/* The load-balancing manager driving real forwarding agents (two data plane processes) with real
 * HTTP traffic: asymmetric routing through two agents, and failover to a backup manager. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { addSecondAgentPath, removeSecondAgentPath } from '../netns/second-agent.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { firstAgent, secondAgent, waitFor, webManager, type Group } from './agents.js';
import { startChild, type Child } from './child.js';

const PREFIX = 'epsmlb';
const GROUP: Group = { group: '239.192.78.61', groupPort: 17861 };
const REQUESTS = 20;

interface AgentStats {
  agent: Record<string, number>;
  wildcards: number;
  affinities: { key: { srcIp: string; dstIp: string; srcPort: number; dstPort: number } }[];
}
interface ManagerStats {
  counters: Record<string, number>;
}

async function get(topology: Topology, count: number, maxTime = 10): Promise<string[]> {
  const urls = Array.from({ length: count }, () => `http://${VIP}/`);
  const output = await inNamespace(topology.client.namespace, 'curl', ['-sS', '--max-time', String(maxTime), '-H', 'Connection: close', ...urls], { timeoutMs: 60_000 });
  return output.match(/server [0-9.]+\n/g) ?? [];
}

describe('load-balancing manager with forwarding agents', () => {
  let topology: Topology;
  let nginx: NginxServer[] = [];
  const children: Child[] = [];
  let agent1: Child;
  let agent2: Child;
  let primary: Child;

  beforeAll(async () => {
    await removeSecondAgentPath(PREFIX);
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    const path = await addSecondAgentPath(topology);
    nginx = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
    agent1 = await startChild('agent-process.ts', await firstAgent(topology, GROUP));
    agent2 = await startChild('agent-process.ts', await secondAgent(topology, path, GROUP));
    primary = await startChild('manager-process.ts', webManager(topology, GROUP, { wildcardTtlSeconds: 3 }));
    children.push(agent1, agent2, primary);
    for (const agent of [agent1, agent2]) await waitFor('wildcards', async () => (await agent.request<AgentStats>('stats')).wildcards === 3);
  });

  afterAll(async () => {
    for (const child of children) await child.stop();
    for (const server of nginx) await server.stop();
    await teardownTopology(PREFIX);
    await removeSecondAgentPath(PREFIX);
  });

  it('serves HTTP with the client path through agent 1 and the return path through agent 2, one decision per connection', async () => {
    const bodies = await get(topology, REQUESTS);
    expect(bodies).toHaveLength(REQUESTS);
    expect(new Set(bodies)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));
    const manager = await primary.request<ManagerStats>('stats');
    const [one, two] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
    console.log('asymmetric: manager', manager.counters, 'agent 1', one.agent, 'agent 2', two.agent);
    expect(manager.counters.decisions).toBe(REQUESTS);
    // Agent 2 only ever saw SYN-ACKs of flows already decided: answered from the decision (need to know).
    expect(manager.counters.needToKnow).toBe(two.agent.interestMatchesSent);
    expect(two.agent.interestMatchesSent).toBeGreaterThanOrEqual(REQUESTS);
    expect(manager.counters.adopted).toBe(0);
    // Agent 1 holds client -> VIP affinities only, agent 2 server -> client ones only.
    expect(one.affinities.length).toBeGreaterThanOrEqual(REQUESTS);
    expect(one.affinities.every((a) => a.key.dstIp === VIP)).toBe(true);
    expect(two.affinities.length).toBeGreaterThanOrEqual(REQUESTS);
    expect(two.affinities.every((a) => topology.servers.some((s) => s.ip === a.key.srcIp))).toBe(true);
  });
});

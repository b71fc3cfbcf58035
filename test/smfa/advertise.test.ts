/* Advertise (SMFA-R14): while a wildcard with an advertise action lives on the agent, the unit's
 * bird2 announces the VIP to a BGP peer; the peer loses it when the wildcard is cancelled or expires. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { firstAgent, waitFor, webManager, type Group } from './agents.js';
import { startBgpPair, type BgpPair } from './bgp-peer.js';
import { startChild, type Child } from './child.js';

const PREFIX = 'epsmadv';
const GROUP: Group = { group: '239.192.78.62', groupPort: 17862 };
const ROUTE = `${VIP}/32`;

describe('advertise into BGP through bird2', () => {
  let topology: Topology;
  let bgp: BgpPair;
  let agent: Child;
  const children: Child[] = [];

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 1 });
    bgp = await startBgpPair(PREFIX);
    agent = await startChild('agent-process.ts', await firstAgent(topology, GROUP, { bird: bgp.unit }));
    children.push(agent);
  });

  afterAll(async () => {
    for (const child of children) await child.stop();
    await teardownTopology(PREFIX);
  });

  const learned = async () => (await bgp.peerRoutes()).includes(ROUTE);
  const advertising = (extra = {}) => webManager(topology, GROUP, { wildcardTtlSeconds: 3, ...extra, services: [{ vip: VIP, port: 80, protocol: 6, servers: [{ ip: topology.servers[0]!.ip, port: 80 }], advertise: true }] });

  it('announces the VIP while the wildcard lives and withdraws it when the manager cancels it', async () => {
    expect(await learned()).toBe(false);
    const manager = await startChild('manager-process.ts', advertising());
    children.push(manager);
    await waitFor('the peer to learn the VIP', learned, 40_000);
    const withdrawnAt = Date.now();
    await manager.request('withdraw');
    await waitFor('the peer to lose the VIP', async () => !(await learned()), 10_000);
    console.log(`advertise: route withdrawn at the peer ${(Date.now() - withdrawnAt) / 1000} s after the TTL-0 wildcard`);
    await manager.stop();
  }, 60_000);

  it('withdraws the VIP when the wildcard expires (manager killed)', async () => {
    const manager = await startChild('manager-process.ts', advertising({ senderId: 0x5a3 }));
    children.push(manager);
    await waitFor('the peer to learn the VIP again', learned, 20_000);
    const killedAt = Date.now();
    await manager.kill();
    await waitFor('the peer to lose the VIP', async () => !(await learned()), 10_000);
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`advertise: route gone at the peer ${seconds} s after the manager was killed (wildcard TTL 3 s)`);
    expect(seconds).toBeLessThan(3 + 2 + 1);
  }, 60_000);
});

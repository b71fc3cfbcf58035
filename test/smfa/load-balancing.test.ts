/* The load-balancing manager driving real forwarding agents (two data plane processes) with real
 * HTTP traffic: asymmetric routing through two agents, and failover to a backup manager. */
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageAuthenticator } from '../../app/smfa/message-authenticator.js';
import type { Message } from '../../app/smfa/types.js';
import { SmfaTransport } from '../../app/smfa/udp-transport.js';
import { SegmentTypeCode } from '../../app/smfa/wire-constants.js';
import { BIG_FILE_URL_PATH, serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { addSecondAgentPath, removeSecondAgentPath } from '../netns/second-agent.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { firstAgent, secondAgent, waitFor, webManager, type Group } from './agents.js';
import { startChild, type Child } from './child.js';
import { authenticator } from './security.js';

const PREFIX = 'epsmlb';
const GROUP: Group = { group: '239.192.78.61', groupPort: 17861 };
const REQUESTS = 20;
/** A second client address, odd where 10.0.1.2 is even: the two client domains of the split test. */
const ODD_CLIENT = '10.0.1.3';

interface AgentStats {
  agent: Record<string, number>;
  wildcards: number;
  unicast: { accepted: number; rejected: Record<string, number> };
  affinities: { key: { srcIp: string; dstIp: string; srcPort: number; dstPort: number }; action: { nat?: { dstIp?: string } } }[];
  dataplane: { interest: Record<string, number>; drops: Record<string, number> };
  forwardIps: { ip: string; packets: number; bytes: number }[];
}
interface ManagerStats {
  counters: Record<string, number>;
  decisions: number;
}

/** TCP segments a namespace's kernel received (/proc/net/snmp "Tcp: InSegs"). */
async function tcpSegmentsIn(namespace: string): Promise<number> {
  const lines = (await inNamespace(namespace, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Tcp:'));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/));
  return Number(values![names!.indexOf('InSegs')]);
}

function forwardedTo(stats: AgentStats, ip: string): number {
  return stats.forwardIps.find((row) => row.ip === ip)?.packets ?? 0;
}

/** A wildcard nobody else uses; TTL 0 makes accepting it a no-op. */
const STRAY_WILDCARD: Message = {
  type: 'affinity-update-wildcard',
  wildcard: { protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '10.9.9.9', dstMask: '255.255.255.255', srcPort: 0, dstPort: 80, dispatch: 'none', information: false, ttlSeconds: 0 },
  actions: {},
};

async function get(topology: Topology, count: number, maxTime = 10, from = topology.client.ip): Promise<string[]> {
  const urls = Array.from({ length: count }, () => `http://${VIP}/`);
  const args = ['-sS', '--interface', from, '--max-time', String(maxTime), '-H', 'Connection: close', ...urls];
  const output = await inNamespace(topology.client.namespace, 'curl', args, { timeoutMs: 60_000 });
  return output.match(/server [0-9.]+\n/g) ?? [];
}

describe('load-balancing manager with forwarding agents', () => {
  let topology: Topology;
  let nginx: NginxServer[] = [];
  const children: Child[] = [];
  let agent1: Child;
  let agent2: Child;
  let primary: Child;
  let backup: Child;

  beforeAll(async () => {
    await removeSecondAgentPath(PREFIX);
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    const path = await addSecondAgentPath(topology);
    nginx = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
    await inNamespace(topology.client.namespace, 'ip', ['address', 'add', `${ODD_CLIENT}/24`, 'dev', 'eth0']);
    const config1 = await firstAgent(topology, GROUP);
    config1.neighbors.push({ ip: ODD_CLIENT, port: 0, mac: config1.neighbors[0]!.mac });
    agent1 = await startChild('agent-process.ts', config1);
    agent2 = await startChild('agent-process.ts', await secondAgent(topology, path, GROUP));
    primary = await startChild('manager-process.ts', webManager(topology, GROUP, { wildcardTtlSeconds: 3, stickySeconds: 1, statistics: true }));
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
    const namespaces = [...topology.servers.map((s) => s.namespace), topology.client.namespace];
    const segmentsBefore = await Promise.all(namespaces.map(tcpSegmentsIn));
    const bodies = await get(topology, REQUESTS);
    expect(bodies).toHaveLength(REQUESTS);
    expect(new Set(bodies)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));
    const manager = await primary.request<ManagerStats>('stats');
    const [one, two] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
    console.log(`asymmetric: manager ${JSON.stringify(manager.counters)}, agent 1 sent up ${one.agent.interestMatchesSent}, agent 2 sent up ${two.agent.interestMatchesSent}`);
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

    // Information flag (SMFA-R11): agent 1 counts per server what it forwarded there, agent 2 per
    // client; each equals the TCP segments that namespace's kernel received (the last ACKs may
    // still be on their way when curl returns).
    const forwarded = await waitFor('per-forward-IP counts equal to the segments received', async () => {
      const [a1, a2] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
      const received = (await Promise.all(namespaces.map(tcpSegmentsIn))).map((n, i) => n - segmentsBefore[i]!);
      const forwarded = [...topology.servers.map((s) => forwardedTo(a1, s.ip)), forwardedTo(a2, topology.client.ip)];
      return forwarded.every((n, i) => n === received[i]) && forwarded;
    });
    console.log(`per-forward-IP packets (servers..., client): ${forwarded.join(', ')}`);
    expect(forwarded.every((n) => n >= REQUESTS / 2)).toBe(true);

    // FIN/RST notices from the fixed affinities (SMFA-R25): the manager learns every connection
    // ended and keeps its decision only for the sticky second (SMFA-R23).
    const closed = await waitFor('every connection closing', async () => {
      const stats = await primary.request<ManagerStats>('stats');
      return stats.counters.connectionsClosing === REQUESTS && stats;
    });
    expect(closed.counters.connectionNotices).toBeGreaterThanOrEqual(REQUESTS);
    await waitFor('decisions gone after the sticky time', async () => (await primary.request<ManagerStats>('stats')).decisions === 0);
    const [n1, n2] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
    expect(n1.agent.fixedMatchesSent! + n2.agent.fixedMatchesSent!).toBe((await primary.request<ManagerStats>('stats')).counters.connectionNotices);
  });

  it('ignores and counts messages with a bad MAC or replayed', async () => {
    const before = await agent1.request<AgentStats>('stats');
    const genuine = authenticator(0x777).seal(STRAY_WILDCARD);
    const forged = new MessageAuthenticator({ keys: new Map([[1, Buffer.alloc(32, 7)]]), sendKeyId: 1, senderId: 0x778 }).seal(STRAY_WILDCARD);
    const socket = createSocket('udp4');
    for (const datagram of [forged, genuine, genuine]) {
      await new Promise<void>((resolve, reject) => socket.send(datagram, agent1.port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    }
    socket.close();
    const after = await waitFor('three datagrams', async () => {
      const stats = await agent1.request<AgentStats>('stats');
      return stats.unicast.accepted + stats.unicast.rejected['bad-mac']! + stats.unicast.rejected.replayed! ===
        before.unicast.accepted + before.unicast.rejected['bad-mac']! + before.unicast.rejected.replayed! + 3 && stats;
    });
    expect(after.unicast.rejected['bad-mac']).toBe(before.unicast.rejected['bad-mac']! + 1);
    expect(after.unicast.rejected.replayed).toBe(before.unicast.rejected.replayed! + 1);
    expect(after.unicast.accepted).toBe(before.unicast.accepted + 1);
    expect(after.wildcards).toBe(3);
  });

  it('denies actions it cannot perform, and fixed affinities without a wildcard from their manager', async () => {
    const inbox: Message[] = [];
    const rogue = await SmfaTransport.open({
      port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5a9), onMessage: (m) => inbox.push(m),
    });
    try {
      const sequenceAdjust = { seqDelta: 1000, initialSeq: 1, ackDelta: 0, initialAck: 0 };
      await rogue.send({ ...STRAY_WILDCARD, wildcard: { ...STRAY_WILDCARD.wildcard, ttlSeconds: 30 }, actions: { sequenceAdjust } } as Message, '127.0.0.1', agent1.port);
      const fixed = { key: { protocol: 6, srcIp: '10.0.1.2', dstIp: VIP, srcPort: 1234, dstPort: 80 }, dispatch: 'none' as const, information: false, forwardIp: '10.0.2.11', ttlSeconds: 30 };
      await rogue.send({ type: 'affinity-update-fixed', fixed, actions: {} }, '127.0.0.1', agent1.port);
      await waitFor('two denies', async () => inbox.length === 2);
      expect(inbox[0]).toMatchObject({ type: 'affinity-update-deny', actionList: [{ segmentType: SegmentTypeCode['sequence-adjust'], required: true }] });
      expect(inbox[1]).toMatchObject({ type: 'affinity-update-deny', actionList: [], originalAffinity: { kind: 'fixed', affinity: fixed } });
      const stats = await agent1.request<AgentStats>('stats');
      expect(stats.wildcards).toBe(3);
      expect(stats.agent.deniedNoWildcard).toBe(1);
      expect(stats.affinities.some((a) => a.key.srcPort === 1234)).toBe(false);

      // Covered by its wildcard, but the data plane refuses it (an IPv6 forward IP): counted, the agent lives on.
      const stray = { ...STRAY_WILDCARD, wildcard: { ...STRAY_WILDCARD.wildcard, ttlSeconds: 30 } } as Message;
      await rogue.send(stray, '127.0.0.1', agent1.port);
      const refused = { ...fixed, key: { ...fixed.key, dstIp: '10.9.9.9' }, dispatch: 'ip-in-ip' as const, forwardIp: '2001:db8::1' };
      await rogue.send({ type: 'affinity-update-fixed', fixed: refused, actions: {} }, '127.0.0.1', agent1.port);
      await waitFor('the refusal', async () => (await agent1.request<AgentStats>('stats')).agent.dataplaneErrors === 1);
      await rogue.send(STRAY_WILDCARD, '127.0.0.1', agent1.port);
      await waitFor('the stray wildcard gone', async () => (await agent1.request<AgentStats>('stats')).wildcards === 3);
    } finally {
      await rogue.close();
    }
  });

  it('echoes interest data both ways (SMFA-R16): a UDP wildcard sends the datagram up, a fixed affinity with a copy criterion sends notices', async () => {
    const inbox: Message[] = [];
    const manager = await SmfaTransport.open({
      port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5a7), onMessage: (m) => inbox.push(m),
    });
    const all = 1 << 15;
    const wildcard = {
      type: 'affinity-update-wildcard' as const,
      wildcard: { protocol: 17, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '10.9.9.9', dstMask: '255.255.255.255', srcPort: 0, dstPort: 9999, dispatch: 'none' as const, information: false, ttlSeconds: 30 },
      actions: { interestCriteria: { ip: '0.0.0.0', port: 0, mask: all, data: all, copy: 0, hold: 0 } },
      smInterestData: Buffer.from('c0ffee', 'hex'),
    };
    const send = (payload: string) =>
      inNamespace(topology.client.namespace, '/usr/bin/python3', ['-c', `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('${topology.client.ip}', 40999)); s.sendto(b'${payload}', ('10.9.9.9', 9999))`]);
    try {
      await manager.send(wildcard, '127.0.0.1', agent1.port);
      await waitFor('the UDP wildcard', async () => (await agent1.request<AgentStats>('stats')).wildcards === 4);
      await send('first');
      const up = await waitFor('the datagram sent up', async () => inbox.find((m) => m.type === 'interest-match-wildcard'));
      if (up.type !== 'interest-match-wildcard') throw new Error('unreachable');
      expect(up.smInterestData?.toString('hex')).toBe('c0ffee');
      expect(up.affinity.key).toEqual({ protocol: 17, srcIp: topology.client.ip, srcPort: 40999, dstIp: '10.9.9.9', dstPort: 9999 });
      expect(up.ipPacket?.subarray(28).toString()).toBe('first');
      expect(up.faInterestData).toHaveLength(2);

      // The same datagram as an IP-packet-only message (SMFA-R9): processed once, and since it matches
      // the wildcard that sends packets up, dropped (punt_loop) instead of going up again.
      const before = await agent1.request<AgentStats>('stats');
      await manager.send({ type: 'ip-packet-only', ipPacket: up.ipPacket! }, '127.0.0.1', agent1.port);
      const looped = await waitFor('the IP-packet-only message processed', async () => {
        const stats = await agent1.request<AgentStats>('stats');
        return stats.dataplane.drops.punt_loop! > before.dataplane.drops.punt_loop! && stats;
      });
      expect(looped.agent.ipPacketOnly! - before.agent.ipPacketOnly!).toBe(1);
      expect(looped.dataplane.drops.punt_loop! - before.dataplane.drops.punt_loop!).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(inbox.filter((m) => m.type === 'interest-match-wildcard')).toHaveLength(1);

      // The answer: drop the flow (forward IP 0) but tell me about every packet; its SM data must come back too.
      await manager.send({
        type: 'affinity-update-fixed',
        fixed: { key: up.affinity.key, dispatch: 'none', information: false, forwardIp: '0.0.0.0', ttlSeconds: 30 },
        actions: { interestCriteria: { ip: '0.0.0.0', port: 0, mask: all, data: 0, copy: all, hold: 0 } },
        smInterestData: Buffer.from('beef', 'hex'),
        faInterestData: up.faInterestData!,
        ipPacket: up.ipPacket!,
      }, '127.0.0.1', agent1.port);
      await waitFor('the fixed affinity', async () => (await agent1.request<AgentStats>('stats')).affinities.some((a) => a.key.srcPort === 40999));
      await send('second');
      const notice = await waitFor('the fixed notice', async () => inbox.find((m) => m.type === 'interest-match-fixed'));
      if (notice.type !== 'interest-match-fixed') throw new Error('unreachable');
      expect(notice.smInterestData?.toString('hex')).toBe('beef');
      expect(notice.affinity.key).toEqual(up.affinity.key);
      expect(notice.affinity.interestReasons & all).toBe(all);
      expect(notice.ipPacket).toBeUndefined();
      expect(inbox.filter((m) => m.type === 'interest-match-wildcard')).toHaveLength(1);
    } finally {
      await manager.send({ ...wildcard, wildcard: { ...wildcard.wildcard, ttlSeconds: 0 } }, '127.0.0.1', agent1.port);
      await waitFor('the UDP wildcard gone', async () => (await agent1.request<AgentStats>('stats')).wildcards === 3);
      await manager.close();
    }
  });

  it('cascades (SMFA-R18): two watching managers above the load balancer each see the SYNs in precedence order, the first takes and returns them, the balancer decides', async () => {
    const syn = 1 << 1;
    const watch = (value: number, criteria: { data: number; copy: number; hold: number }) => ({
      type: 'affinity-update-wildcard' as const,
      wildcard: { protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: VIP, dstMask: '255.255.255.255', srcPort: 0, dstPort: 80, dispatch: 'none' as const, information: false, ttlSeconds: 30 },
      servicePrecedence: { searchOrder: 'lower-first' as const, value },
      actions: { interestCriteria: { ip: '0.0.0.0', port: 0, mask: syn, ...criteria } },
    });
    // The first watches by copy and hold: a cascading service cannot hold (nothing of its own ends the
    // wait), so the original SYN comes up and continues after it once returned.
    const first = watch(10, { data: syn, copy: syn, hold: syn });
    const second = watch(20, { data: 0, copy: syn, hold: 0 });
    const upToFirst: Message[] = [];
    const toSecond: Message[] = [];
    let answering = false;
    let answered = 0;
    const firstManager: SmfaTransport = await SmfaTransport.open({
      port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5a8),
      onMessage: (m, from) => {
        upToFirst.push(m);
        if (!answering || m.type !== 'interest-match-wildcard' || !m.ipPacket) return;
        // Alternately a fixed update "do not cache" (TTL 0) with the packet and an IP-packet-only message.
        const reply: Message = answered++ % 2 === 0
          ? { type: 'affinity-update-fixed', fixed: { key: m.affinity.key, dispatch: 'none', information: false, forwardIp: VIP, ttlSeconds: 0 }, actions: {}, faInterestData: m.faInterestData!, ipPacket: m.ipPacket }
          : { type: 'ip-packet-only', ipPacket: m.ipPacket };
        void firstManager.send(reply, from.address, from.port);
      },
    });
    const secondManager = await SmfaTransport.open({
      port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5aa), onMessage: (m) => toSecond.push(m),
    });
    try {
      const before = await primary.request<ManagerStats>('stats');
      await firstManager.send(first, '127.0.0.1', agent1.port);
      await secondManager.send(second, '127.0.0.1', agent1.port);
      await waitFor('the watching wildcards', async () => (await agent1.request<AgentStats>('stats')).wildcards === 5);

      // While the first does not return its SYNs, nothing below it sees them.
      expect(await get(topology, 1, 2).catch(() => [])).toHaveLength(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(upToFirst.length).toBeGreaterThanOrEqual(1);
      expect(toSecond).toHaveLength(0);
      expect((await primary.request<ManagerStats>('stats')).counters.decisions).toBe(before.counters.decisions);

      answering = true;
      const taken = upToFirst.length;
      const resumedBefore = (await agent1.request<AgentStats>('stats')).agent.cascadeResumed!;
      expect(await get(topology, 3)).toHaveLength(3);
      const originals = upToFirst.slice(taken);
      const notices = await waitFor('three SYN notices below the first', async () => {
        const seen = toSecond.filter((m) => m.type === 'interest-match-wildcard');
        return seen.length >= 3 && seen;
      });
      expect(originals).toHaveLength(3);
      for (const original of originals) {
        if (original.type !== 'interest-match-wildcard') throw new Error('unreachable');
        expect(original.affinity.interestReasons).toBe(syn);
        expect(original.ipPacket).toBeDefined();
      }
      expect(notices).toHaveLength(3);
      for (const notice of notices) {
        if (notice.type !== 'interest-match-wildcard') throw new Error('unreachable');
        expect(notice.affinity.interestReasons).toBe(syn);
        expect(notice.affinity.key.dstIp).toBe(VIP);
        expect(notice.ipPacket).toBeUndefined();
      }
      const agent = await agent1.request<AgentStats>('stats');
      expect(agent.agent.cascadeResumed! - resumedBefore).toBe(3);
      // The load balancer below them made the three decisions, as if the watchers were not there.
      expect((await primary.request<ManagerStats>('stats')).counters.decisions! - before.counters.decisions!).toBe(3);
      console.log(`cascade: first watcher took and returned ${originals.length} SYNs, second got ${notices.length} notices, balancer decided 3`);
    } finally {
      for (const [manager, update] of [[firstManager, first], [secondManager, second]] as const) {
        await manager.send({ ...update, wildcard: { ...update.wildcard, ttlSeconds: 0 } }, '127.0.0.1', agent1.port);
      }
      await waitFor('the watching wildcards gone', async () => (await agent1.request<AgentStats>('stats')).wildcards === 3);
      await firstManager.close();
      await secondManager.close();
    }
  });

  it('splits clients between managers by domain (non-contiguous mask, better precedence), holds packets at the agent for one, hands clients back with TTL-0 wildcards', async () => {
    const odd = await startChild(
      'manager-process.ts',
      webManager(topology, GROUP, { senderId: 0x5a4, servicePrecedence: 50, clientDomain: { ip: '0.0.0.1', mask: '0.0.0.1' }, holdPackets: true }),
    );
    children.push(odd);
    for (const agent of [agent1, agent2]) await waitFor('odd-domain wildcards', async () => (await agent.request<AgentStats>('stats')).wildcards === 6);
    const [primaryBefore, agentBefore] = [await primary.request<ManagerStats>('stats'), await agent1.request<AgentStats>('stats')];

    expect(await get(topology, 6, 10, ODD_CLIENT)).toHaveLength(6);
    expect(await get(topology, 4)).toHaveLength(4);
    const [oddStats, primaryStats, agentStats] = [await odd.request<ManagerStats>('stats'), await primary.request<ManagerStats>('stats'), await agent1.request<AgentStats>('stats')];
    expect(oddStats.counters.decisions).toBe(6);
    expect(primaryStats.counters.decisions! - primaryBefore.counters.decisions!).toBe(4);
    // The odd clients' SYNs and SYN-ACKs (their return path is agent 1) waited in agent 1's data
    // plane; only the even clients' packets went up and came back.
    expect(agentStats.agent.held! - agentBefore.agent.held!).toBeGreaterThanOrEqual(12);
    expect(agentStats.agent.packetsReturned! - agentBefore.agent.packetsReturned!).toBe(4);
    // Every held packet was released through its fixed affinity inside the data plane, none timed out or overflowed.
    const [held, released] = [agentStats.dataplane.interest.held! - agentBefore.dataplane.interest.held!, agentStats.dataplane.interest.released! - agentBefore.dataplane.interest.released!];
    console.log(`hold: agent 1's data plane held ${held} packets, released ${released}`);
    expect(held).toBeGreaterThanOrEqual(12);
    expect(released).toBe(held);
    expect(agentStats.dataplane.drops.hold_timeout).toBe(agentBefore.dataplane.drops.hold_timeout);
    expect(agentStats.dataplane.interest.overflows).toBe(agentBefore.dataplane.interest.overflows);

    await odd.request('withdraw');
    for (const agent of [agent1, agent2]) await waitFor('odd-domain wildcards cancelled', async () => (await agent.request<AgentStats>('stats')).wildcards === 3);
    expect(await get(topology, 3, 10, ODD_CLIENT)).toHaveLength(3);
    expect((await primary.request<ManagerStats>('stats')).counters.decisions! - primaryBefore.counters.decisions!).toBe(7);
    expect((await odd.request<ManagerStats>('stats')).counters.decisions).toBe(6);
    await odd.stop();
  });

  it('fails over to a backup manager: new connections are served once the primary\'s wildcards expire, established flows untouched', async () => {
    backup = await startChild('manager-process.ts', webManager(topology, GROUP, { wildcardTtlSeconds: 3, backupPrecedence: 1, senderId: 0x5a2, stickySeconds: 1 }));
    children.push(backup);
    for (const agent of [agent1, agent2]) await waitFor('backup wildcards', async () => (await agent.request<AgentStats>('stats')).wildcards === 6);
    const bytes = 6_000_000;
    const download = inNamespace(
      topology.client.namespace,
      'curl',
      ['-sS', '--max-time', '40', '--limit-rate', '1M', '-r', `0-${bytes - 1}`, '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `http://${VIP}${BIG_FILE_URL_PATH}`],
      { timeoutMs: 45_000 },
    );
    await new Promise((r) => setTimeout(r, 1000));

    const killedAt = Date.now();
    await primary.kill();
    const expired = waitFor('primary wildcards gone', async () => (await agent1.request<AgentStats>('stats')).wildcards === 3 && Date.now(), 10_000);
    const served = waitFor('a new connection', async () => (await get(topology, 1, 12).catch(() => [])).length === 1 && Date.now(), 30_000);
    const [expiredAt, servedAt] = [await expired, await served];
    console.log(`failover: primary's wildcards expired ${(expiredAt - killedAt) / 1000} s after the kill (TTL 3 s); first new connection served after ${(servedAt - killedAt) / 1000} s`);
    expect(expiredAt - killedAt).toBeLessThan(3000 + 2000);

    expect(await get(topology, 10)).toHaveLength(10);
    expect(await download).toBe(`206 ${bytes}`);
    const stats = await backup.request<ManagerStats>('stats');
    expect(stats.counters.decisions).toBeGreaterThanOrEqual(11);
    // The download's packets never went up to the backup: its affinities from the dead primary stayed in place.
    expect(stats.counters.adopted).toBe(0);
  }, 90_000);

  it('moves a removed server\'s flows delete-before-change (SMFA-R24): each agent holding an affinity gets TTL 0, then the new one', async () => {
    const LOCAL_PORT = 45123;
    // The earlier connections' decisions are gone after their sticky second: the download is the only flow to move.
    await waitFor('earlier decisions forgotten', async () => (await backup.request<ManagerStats>('stats')).decisions === 0);
    const download = inNamespace(
      topology.client.namespace,
      'curl',
      ['-sS', '--local-port', String(LOCAL_PORT), '--max-time', '20', '--limit-rate', '200K', '-o', '/dev/null', `http://${VIP}${BIG_FILE_URL_PATH}`],
      { timeoutMs: 30_000 },
    ).catch((e: Error) => e);
    const held = (stats: AgentStats) => stats.affinities.filter((a) => a.key.srcPort === LOCAL_PORT || a.key.dstPort === LOCAL_PORT);
    const before = await waitFor('both agents hold the download\'s affinities', async () => {
      const [one, two] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
      return held(one).length === 1 && held(two).length === 1 && { one, two };
    });
    const removed = held(before.one)[0]!.action.nat!.dstIp!;
    const other = topology.servers.map((s) => s.ip).find((ip) => ip !== removed)!;
    expect(held(before.two)[0]!.key.srcIp).toBe(removed);

    const moved = await backup.request<number>('removeServer', { ip: removed, port: 80 });
    expect(moved).toBe(1);
    const after = await waitFor('the download\'s affinities on the other server', async () => {
      const [one, two] = [await agent1.request<AgentStats>('stats'), await agent2.request<AgentStats>('stats')];
      const [a1, a2] = [held(one), held(two)];
      return a1.length === 1 && a1[0]!.action.nat?.dstIp === other && a2.length === 1 && a2[0]!.key.srcIp === other && { one, two };
    });
    // Each agent deleted the old affinity (TTL 0) before installing the new one: one delete each.
    expect(after.one.agent.fixedDeleted! - before.one.agent.fixedDeleted!).toBe(1);
    expect(after.two.agent.fixedDeleted! - before.two.agent.fixedDeleted!).toBe(1);
    const stats = await backup.request<ManagerStats>('stats');
    expect(stats.counters.fixedDeletesSent).toBe(2);
    // New connections go to the remaining server only; its return wildcard is all that is left of the removed one's.
    const bodies = await get(topology, 4);
    expect(bodies).toEqual(Array(4).fill(serverBody(other)));
    // The download itself cannot survive a change of server mid-stream (the other server resets it).
    expect(await download).toBeInstanceOf(Error);
  }, 60_000);
});

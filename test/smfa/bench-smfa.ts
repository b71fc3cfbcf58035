/* SMFA benchmark (scripts/bench-smfa.sh): fixed affinity updates a forwarding agent installs per
 * second (authenticated UDP -> decode -> checks -> data plane table), and the round trip of a
 * connection's first packets through the agent -> manager -> agent path with real TCP traffic. */
import { SmfaTransport } from '../../app/smfa/udp-transport.js';
import type { Message } from '../../app/smfa/types.js';
import { startNginx } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { VIP, buildTopology, teardownTopology } from '../netns/topology.js';
import { firstAgent, waitFor, webManager, type Group } from './agents.js';
import { startChild } from './child.js';
import { authenticator } from './security.js';

const GROUP: Group = { group: '239.192.78.63', groupPort: 17863 };
const UPDATES = Number(process.env.SMFA_BENCH_UPDATES ?? 100_000);
/** Updates in flight: small enough that the agent's default socket buffer (about 200 datagrams) never overflows. */
const IN_FLIGHT = 64;
const CONNECTIONS = Number(process.env.SMFA_BENCH_CONNECTIONS ?? 400);

type Counters = Record<string, number>;

async function updateRate(): Promise<{ rate: number; lost: number }> {
  const agent = await startChild('agent-process.ts', {
    filePrefix: 'epsmbnu', vdevs: ['net_null0', 'net_null1'],
    ports: [{ address: '10.0.1.1', prefixLength: 24 }, { address: '10.0.2.1', prefixLength: 24 }],
    localAddresses: [], routes: [], neighbors: [], ...GROUP, senderId: 0xfa9,
  });
  const manager = await SmfaTransport.open({ port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5b1), onMessage: () => undefined });
  try {
    const wildcard = { protocol: 6, srcIp: '10.128.0.0', srcMask: '255.128.0.0', srcPort: 0, dstIp: VIP, dstMask: '255.255.255.255', dstPort: 80, dispatch: 'none' as const, information: false, ttlSeconds: 300 };
    await manager.sendToGroup({ type: 'affinity-update-wildcard', wildcard, actions: {} });
    await waitFor('the wildcard', async () => (await agent.request<Counters>('counters')).wildcardsAdded === 1);
    const installed = async () => (await agent.request<Counters>('counters')).fixedInstalled!;
    const start = process.hrtime.bigint();
    for (let i = 0; i < UPDATES; i++) {
      const srcIp = `10.${128 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`;
      const update: Message = {
        type: 'affinity-update-fixed',
        fixed: { key: { protocol: 6, srcIp, dstIp: VIP, srcPort: 40000, dstPort: 80 }, dispatch: 'none', information: false, forwardIp: '10.0.2.11', ttlSeconds: 300 },
        actions: { nat: { srcIp: '0.0.0.0', srcPort: 0, dstIp: '10.0.2.11', dstPort: 80 } },
      };
      await manager.send(update, '127.0.0.1', agent.port);
      // A window of updates in flight: the agent's socket buffer never overflows.
      if (i % IN_FLIGHT === IN_FLIGHT - 1) await waitFor('the agent to catch up', async () => (await installed()) >= i + 1 - IN_FLIGHT, 30_000, 1);
    }
    // A datagram the kernel dropped (receive buffer full while the agent was busy) is counted as
    // lost: the count stops short of UPDATES and stays there for a second.
    let count = await installed();
    let progressAt = process.hrtime.bigint();
    while (count < UPDATES && process.hrtime.bigint() - progressAt < 1_000_000_000n) {
      await new Promise((r) => setTimeout(r, 1));
      const now = await installed();
      if (now !== count) [count, progressAt] = [now, process.hrtime.bigint()];
    }
    const seconds = Number(progressAt - start) / 1e9;
    return { rate: count / seconds, lost: UPDATES - count };
  } finally {
    await manager.close();
    await agent.stop();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function roundTrips(): Promise<{ samples: number; p50: number; p99: number; decisions: number }> {
  const prefix = 'epsmbn';
  const topology = await buildTopology({ prefix, servers: 2 });
  const nginx = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
  const agent = await startChild('agent-process.ts', await firstAgent(topology, GROUP));
  const manager = await startChild('manager-process.ts', webManager(topology, GROUP));
  try {
    await waitFor('wildcards', async () => (await agent.request<Counters>('counters')).wildcardsAdded === 3);
    for (let done = 0; done < CONNECTIONS; done += 50) {
      const urls = Array.from({ length: 50 }, () => `http://${VIP}/`);
      await inNamespace(topology.client.namespace, 'curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-H', 'Connection: close', ...urls], { timeoutMs: 120_000 });
    }
    const stats = await agent.request<{ roundTripsMicros: number[] }>('stats');
    const sorted = [...stats.roundTripsMicros].sort((a, b) => a - b);
    const { counters } = await manager.request<{ counters: Counters }>('stats');
    return { samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), decisions: counters.decisions! };
  } finally {
    await manager.stop();
    await agent.stop();
    for (const server of nginx) await server.stop();
    await teardownTopology(prefix);
  }
}

const updates = await updateRate();
const trips = await roundTrips();
console.log(`${'figure'.padEnd(66)} value`);
console.log(`${`fixed affinity updates installed/s (HMAC, ${UPDATES} sent, ${updates.lost} lost)`.padEnd(66)} ${updates.rate.toFixed(0)}`);
console.log(`${`first-packet round trip agent->manager->agent p50 (us, ${trips.samples} SYN/SYN-ACK)`.padEnd(66)} ${trips.p50.toFixed(0)}`);
console.log(`${'first-packet round trip agent->manager->agent p99 (us)'.padEnd(66)} ${trips.p99.toFixed(0)}`);
console.log(`${'manager decisions (one per connection)'.padEnd(66)} ${trips.decisions}`);

/* Virtual services run by the service manager, with real traffic: two nginx servers behind the
 * data plane, server agents in the server namespaces talking to the appliance over a management
 * network, health checks over that network, wrk and curl from the client namespace. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentListener, type AgentListener } from '../../app/control/agent-listener.js';
import { Appliance } from '../../app/control/appliance.js';
import { parseConfig } from '../../app/control/config.js';
import { startHttp, type HttpServer } from '../../app/control/http.js';
import { ServiceManager, type ServerView } from '../../app/control/services.js';
import { AgentClient } from '../../app/server-agent/client.js';
import { mac, seal } from '../../app/server-agent/protocol.js';
import { serverBody } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { CLIENT_GATEWAY, SERVER_GATEWAY, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { startLoggedNginx, type LoggedNginx } from './logged-nginx.js';

const PREFIX = 'epsvc';
const VIPS = { web: '10.0.1.100', checked: '10.0.1.101', least: '10.0.1.102', proto: '10.0.1.103' };
const AGENTS = ['web1', 'web2', 'least1', 'least2', 'tester'];
const REPORT_MS = 1000;
/** wrk, nginx and a polling worker share two cores with whatever else runs (QEMU builds, other
 * suites): an agent's report can be several seconds late, and this file tests drains, not silence. */
const MISSED_REPORTS = 15;

const scratch = mkdtempSync(path.join(tmpdir(), 'ep-svc-'));
const keys = new Map(AGENTS.map((id) => [id, randomBytes(32)]));

function keyFile(id: string): string {
  return path.join(scratch, `${id}.key`);
}

function config(topology: Topology): Record<string, unknown> {
  const [s1, s2] = topology.servers;
  return {
    eal: { lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: PREFIX, vdevs: topology.vdevs },
    ports: [
      { device: 'net_af_packet0', address: CLIENT_GATEWAY, prefixLength: 24 },
      { device: 'net_af_packet1', address: SERVER_GATEWAY, prefixLength: 24 },
    ],
    services: [
      { name: 'web', vip: VIPS.web, port: 80, protocol: 'tcp' },
      {
        name: 'checked',
        vip: VIPS.checked,
        port: 80,
        protocol: 'tcp',
        servers: [s1, s2].map((s) => ({ address: s!.ip, port: 80, checkAddress: s!.managementIp })),
        healthCheck: { type: 'http', path: '/', expectStatus: 200, intervalMs: 500, timeoutMs: 300, rise: 2, fall: 2 },
      },
      { name: 'least', vip: VIPS.least, port: 80, protocol: 'tcp', algorithm: 'least-load' },
      { name: 'proto', vip: VIPS.proto, port: 80, protocol: 'tcp' },
    ],
    agents: {
      host: '0.0.0.0',
      port: 0,
      keys: AGENTS.map((id) => ({ id, keyFile: keyFile(id) })),
      reportIntervalMs: REPORT_MS,
      missedReports: MISSED_REPORTS,
    },
    http: { host: '127.0.0.1', port: 0 },
  };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function curlMany(namespace: string, url: string, count: number): Promise<string[]> {
  const urls = Array.from({ length: count }, () => url);
  const output = await inNamespace(namespace, 'curl', ['-sS', '--max-time', '5', '-H', 'Connection: close', ...urls], { timeoutMs: 60_000 });
  return output.match(/server [0-9.]+\n/g) ?? [];
}

describe('virtual services: agents, drain, health checks, least load', () => {
  let topology: Topology;
  let nginx: LoggedNginx[] = [];
  let appliance: Appliance;
  let manager: ServiceManager;
  let listener: AgentListener;
  let http: HttpServer;
  const agents = new Map<string, ChildProcess>();

  function startAgent(id: string, serverIndex: number, service: string): void {
    const server = topology.servers[serverIndex]!;
    const args = [
      'netns', 'exec', server.namespace, process.execPath, '--import', 'tsx', 'app/server-agent/main.ts',
      '--appliance', `${topology.managementIp}:${listener.address.port}`, '--id', id, '--service', service,
      '--address', server.ip, '--port', '80', '--capacity', '100', '--key-file', keyFile(id),
      '--interval-ms', String(REPORT_MS), '--drain-ms', '20000', '--no-cpu',
    ];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout?.on('data', (chunk: Buffer) => process.stdout.write(`[agent ${id}] ${chunk.toString()}`));
    agents.set(id, child);
  }

  const view = (service: string, ip: string): ServerView | undefined => manager.view(service).find((s) => s.address === ip);
  const flowsOf = (serviceId: number, ip: string): number =>
    appliance.stats().servers.find((s) => s.serviceId === serviceId && s.ip === ip)?.flows ?? 0;

  beforeAll(async () => {
    for (const [id, key] of keys) writeFileSync(keyFile(id), key.toString('hex'), { mode: 0o600 });
    topology = await buildTopology({ prefix: PREFIX, servers: 2, management: true });
    nginx = await Promise.all(topology.servers.map((s) => startLoggedNginx(s.namespace, s.ip)));
    const parsed = parseConfig('services-test', JSON.stringify(config(topology)));
    const logger = pino({ level: 'warn' });
    appliance = new Appliance(logger);
    appliance.start(parsed);
    manager = new ServiceManager(appliance, parsed.services, { silenceMs: REPORT_MS * MISSED_REPORTS, logger });
    manager.start();
    listener = await startAgentListener(parsed.agents!, manager, logger);
    http = await startHttp(appliance, parsed.http, logger, [listener.registry]);
  });

  afterAll(async () => {
    for (const child of agents.values()) if (child.exitCode === null) child.kill('SIGKILL');
    await http?.close();
    await listener?.close();
    manager?.stop();
    appliance?.stop();
    for (const server of nginx) await server.stop();
    await teardownTopology(PREFIX);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('drains a de-registering server under load without a failed request', async () => {
    const [s1, s2] = topology.servers;
    startAgent('web1', 0, 'web');
    startAgent('web2', 1, 'web');
    // About 5000 connections/s: a wide range keeps the client from reusing ports in TIME_WAIT.
    await inNamespace(topology.client.namespace, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
    await until('both web servers in rotation', () => (manager.view('web').filter((s) => s.weight > 0).length === 2 ? true : undefined));

    const wrk = inNamespace(
      topology.client.namespace,
      'wrk',
      ['-t1', '-c4', '-d8s', '--timeout', '3s', '-H', 'Connection: close', `http://${VIPS.web}/`],
      { timeoutMs: 30_000 },
    );
    await sleep(3000);
    agents.get('web1')!.kill('SIGTERM');
    await until('server 1 draining', () => (view('web', s1!.ip)?.draining ? true : undefined));
    const drainedAt = Date.now();
    const flowsAtDrain = flowsOf(1, s1!.ip);
    const output = await wrk;
    console.log(output);

    const requests = Number(/(\d+) requests in/.exec(output)?.[1]);
    const fromClient = nginx[0]!.lines().filter((l) => l.client === topology.client.ip);
    const server1Before = fromClient.filter((l) => l.time * 1000 <= drainedAt);
    const server1After = fromClient.filter((l) => l.time * 1000 > drainedAt + 100);
    // A new connection reusing the source port of a closing connection to server 1 is a new
    // connection: the data plane picks a server again, so nothing new may reach server 1.
    const flows = { server1AtDrain: flowsAtDrain, server1AtEnd: flowsOf(1, s1!.ip), server2AtEnd: flowsOf(1, s2!.ip) };
    console.log(
      `drain under load: ${requests} requests; server 1: ${server1Before.length} connections before the drain, ` +
        `${server1After.length} after; flows`,
      flows,
    );
    expect(requests).toBeGreaterThan(200);
    expect(output).not.toMatch(/Non-2xx/);
    expect(output).not.toMatch(/Socket errors/);
    expect(flowsAtDrain).toBeGreaterThan(20);
    expect(flows.server1AtEnd).toBe(flowsAtDrain);
    expect(flows.server2AtEnd).toBeGreaterThan(20);
    expect(server1After).toEqual([]);
  }, 60_000);

  it('takes a failed server out of rotation within 3 s and back when it recovers', async () => {
    const [s1, s2] = topology.servers;
    expect(view('checked', s1!.ip)).toMatchObject({ healthy: true, weight: 1 });
    const stopped = Date.now();
    await nginx[0]!.stop();
    await until('server 1 out of rotation', () => (view('checked', s1!.ip)?.weight === 0 ? true : undefined), 5000);
    const outAfterMs = Date.now() - stopped;
    console.log(`health: server 1 out of rotation ${outAfterMs} ms after nginx stopped`);
    expect(outAfterMs).toBeLessThan(3000);
    const whileDown = await curlMany(topology.client.namespace, `http://${VIPS.checked}/`, 20);
    expect(whileDown).toEqual(Array.from({ length: 20 }, () => serverBody(s2!.ip)));

    const restarted = Date.now();
    nginx[0] = await startLoggedNginx(s1!.namespace, s1!.ip);
    await until('server 1 back in rotation', () => (view('checked', s1!.ip)?.weight === 1 ? true : undefined), 5000);
    console.log(`health: server 1 back in rotation ${Date.now() - restarted} ms after nginx restarted`);
    const afterRecovery = await curlMany(topology.client.namespace, `http://${VIPS.checked}/`, 40);
    expect(afterRecovery).toHaveLength(40);
    expect(new Set(afterRecovery)).toEqual(new Set([serverBody(s1!.ip), serverBody(s2!.ip)]));
  }, 30_000);

  it('sends new flows mostly to the less loaded server (least-load)', async () => {
    const [s1, s2] = topology.servers;
    // 150 idle connections to server 1's nginx: load its agent sees in /proc/net/tcp (capacity 100).
    const holder = spawn('ip', [
      'netns', 'exec', s1!.namespace, process.execPath, '-e',
      `const net=require('node:net');for(let i=0;i<150;i++)net.connect(80,'${s1!.ip}').on('error',()=>{});setInterval(()=>{},1000);`,
    ], { stdio: 'ignore' });
    try {
      startAgent('least1', 0, 'least');
      startAgent('least2', 1, 'least');
      await until('least-load weights from reports', () => {
        const [w1, w2] = [view('least', s1!.ip), view('least', s2!.ip)];
        return w1 && w2 && w1.utilisation > 1 && w2.weight === 100 ? { w1, w2 } : undefined;
      });
      const weights = manager.view('least').map((s) => `${s.address} utilisation ${s.utilisation.toFixed(2)} weight ${s.weight}`);
      const bodies = await curlMany(topology.client.namespace, `http://${VIPS.least}/`, 60);
      const toServer2 = bodies.filter((b) => b === serverBody(s2!.ip)).length;
      console.log(`least-load: ${weights.join('; ')}; ${toServer2}/${bodies.length} new connections to server 2`);
      expect(bodies).toHaveLength(60);
      // Weights about 7 vs 100 give server 2 ~93%; equal weights would give 50% (>= 45 of 60 with p < 0.01%).
      expect(toServer2).toBeGreaterThanOrEqual(45);
    } finally {
      holder.kill('SIGKILL');
    }
  }, 30_000);

  it('answers register, report, flow and deregister; refuses bad messages with reasons and counts them', async () => {
    // The other agents would keep reporting meanwhile; they are stopped so the counters show only this test.
    for (const child of agents.values()) child.kill('SIGKILL');
    const agentCounters = async (): Promise<Map<string, number>> => {
      const text = await (await fetch(`${http.url}/metrics`)).text();
      return new Map(
        text
          .split('\n')
          .filter((line) => line.startsWith('edgeplane_agent_messages_'))
          .map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))] as [string, number]),
      );
    };
    const before = await agentCounters();
    const key = keys.get('tester')!;
    const client = await AgentClient.connect('127.0.0.1', listener.address.port, 'tester', key);
    const server = { service: 'proto', address: '10.0.2.99', port: 80 };
    try {
      expect(await client.send({ type: 'register', ...server, capacity: 10 })).toEqual({ ok: true, type: 'register' });
      expect(view('proto', '10.0.2.99')).toMatchObject({ origin: 'agent', agentId: 'tester', weight: 1 });
      expect(await client.send({ type: 'report', ...server, connections: 5, cpu: 0.2 })).toEqual({ ok: true, type: 'report' });
      expect(view('proto', '10.0.2.99')?.utilisation).toBe(0.5);
      const flow = { protocol: 'tcp' as const, srcIp: topology.client.ip, srcPort: 40000, dstPort: 0, ttlSeconds: 60 };
      expect(await client.send({ type: 'flow', ...server, flow })).toEqual({ ok: true, type: 'flow' });
      const pinned = appliance.affinities({ includeLearned: false }).find((a) => a.key.srcPort === 40000 && a.key.dstIp === VIPS.proto);
      expect(pinned?.action).toMatchObject({ type: 'forward', nat: { dstIp: '10.0.2.99', dstPort: 80 } });
      expect(await client.send({ type: 'deregister', ...server, deadlineMs: 999_999 })).toEqual({ ok: true, type: 'deregister', deadlineMs: 300_000 });
      expect(view('proto', '10.0.2.99')).toMatchObject({ draining: true, weight: 0 });

      const refusals: Record<string, string> = {};
      const refuse = async (label: string, line: string) => {
        const reply = await client.sendLine(line);
        expect(reply.ok, label).toBe(false);
        if (!reply.ok) refusals[label] = `${reply.reason}: ${reply.detail}`;
        return reply;
      };
      await refuse('not JSON', '{"payload":');
      await refuse('no capacity', seal('tester', key, { type: 'register', ...server } as never));
      await refuse('unknown service', seal('tester', key, { type: 'register', ...server, service: 'nope', capacity: 1 }));
      await refuse('unknown agent', seal('stranger', key, { type: 'report', ...server, connections: 1, cpu: 0 }));
      const good = seal('tester', key, { type: 'report', ...server, connections: 1, cpu: 0 });
      const envelope = JSON.parse(good) as { payload: string; mac: string };
      await refuse('bad MAC', JSON.stringify({ ...envelope, mac: mac(keys.get('web1')!, envelope.payload) }));
      await refuse('tampered payload', JSON.stringify({ ...envelope, payload: envelope.payload.replace('"connections":1', '"connections":0') }));
      expect(await client.sendLine(good)).toEqual({ ok: true, type: 'report' });
      await refuse('replayed', good);
      await refuse('stale', seal('tester', key, { type: 'report', ...server, connections: 1, cpu: 0 }, Date.now() - 120_000));
      await refuse('not registered', seal('tester', key, { type: 'report', ...server, address: '10.0.2.98', connections: 1, cpu: 0 }));
      console.log('refusals:', refusals);
      expect(Object.fromEntries(Object.entries(refusals).map(([label, text]) => [label, text.split(':')[0]]))).toEqual({
        'not JSON': 'malformed',
        'no capacity': 'malformed',
        'unknown service': 'unknown-service',
        'unknown agent': 'unknown-agent',
        'bad MAC': 'bad-mac',
        'tampered payload': 'bad-mac',
        replayed: 'replayed',
        stale: 'stale',
        'not registered': 'not-registered',
      });
      expect(refusals['no capacity']).toMatch(/capacity/);
    } finally {
      client.close();
    }

    const after = await agentCounters();
    const counted = Object.fromEntries([...after].map(([series, n]) => [series, n - (before.get(series) ?? 0)]).filter(([, n]) => n !== 0));
    console.log('agent message counters during this test:', counted);
    expect(counted).toEqual({
      'edgeplane_agent_messages_accepted_total{type="register"}': 1,
      'edgeplane_agent_messages_accepted_total{type="report"}': 2,
      'edgeplane_agent_messages_accepted_total{type="flow"}': 1,
      'edgeplane_agent_messages_accepted_total{type="deregister"}': 1,
      'edgeplane_agent_messages_refused_total{reason="malformed"}': 2,
      'edgeplane_agent_messages_refused_total{reason="unknown-service"}': 1,
      'edgeplane_agent_messages_refused_total{reason="unknown-agent"}': 1,
      'edgeplane_agent_messages_refused_total{reason="bad-mac"}': 2,
      'edgeplane_agent_messages_refused_total{reason="replayed"}': 1,
      'edgeplane_agent_messages_refused_total{reason="stale"}': 1,
      'edgeplane_agent_messages_refused_total{reason="not-registered"}': 1,
    });
  }, 30_000);
});

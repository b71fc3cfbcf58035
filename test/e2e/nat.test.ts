/* A NAT virtual service end to end: the Appliance runs in this process on two net_af_packet ports,
 * a client namespace talks HTTP to the VIP, two nginx servers answer. Everything on the wire is real. */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Appliance } from '../../app/control/appliance.js';
import { parseConfig } from '../../app/control/config.js';
import { startHttp, type HttpServer } from '../../app/control/http.js';
import { flowReport } from '../netns/flow-report.js';
import { SERVICE_NAME, natConfig } from '../netns/nat-config.js';
import { BIG_FILE_URL_PATH, bigFile, serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';

const PREFIX = 'epnat';
const REQUESTS = 40;
/** A second service on its own VIP whose weights make one server take about 90% of connections. */
const WEIGHTED = { name: 'weighted', vip: '10.0.1.101', weights: [1, 9], requests: 60 };

interface LinkCounters {
  rxPackets: number;
  txPackets: number;
}

/** Bodies of `count` GETs, and the client's source port of each (for the flow report). */
async function getMany(namespace: string, url: string, count: number): Promise<{ bodies: string[]; ports: number[] }> {
  // Connection: close makes every request a new connection.
  const urls = Array.from({ length: count }, () => url);
  const output = await inNamespace(namespace, 'curl', ['-sS', '--max-time', '30', '-H', 'Connection: close', '-w', 'port %{local_port}\n', ...urls], {
    timeoutMs: 60_000,
  });
  const pairs = [...output.matchAll(/(server [0-9.]+\n)port ([0-9]+)\n/g)];
  expect(pairs.map((m) => m[0]).join('')).toBe(output);
  return { bodies: pairs.map((m) => m[1]!), ports: pairs.map((m) => Number(m[2])) };
}

async function kernelCounters(namespace: string): Promise<LinkCounters> {
  const [link] = JSON.parse(await inNamespace(namespace, 'ip', ['-j', '-s', 'link', 'show', 'dev', 'eth0']));
  return { rxPackets: link.stats64.rx.packets, txPackets: link.stats64.tx.packets };
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('NAT virtual service through the data plane', () => {
  let topology: Topology;
  let servers: NginxServer[] = [];
  let appliance: Appliance;
  let http: HttpServer;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ep-nat-'));

  beforeAll(async () => {
    bigFile();
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    servers = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
    const document = natConfig(topology, { filePrefix: PREFIX, httpPort: 0 });
    const [web] = document.services as Record<string, unknown>[];
    const weighted = {
      ...web,
      name: WEIGHTED.name,
      vip: WEIGHTED.vip,
      servers: topology.servers.map((server, i) => ({ address: server.ip, port: 80, weight: WEIGHTED.weights[i] })),
    };
    document.services = [web, weighted];
    const config = parseConfig('nat-test', JSON.stringify(document));
    const logger = pino({ level: 'warn' });
    appliance = new Appliance(logger);
    appliance.start(config);
    http = await startHttp(appliance, config.http, logger);
  });

  afterAll(async () => {
    await http?.close();
    appliance?.stop();
    for (const server of servers) await server.stop();
    await teardownTopology(PREFIX);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('reports healthy with both ports up', async () => {
    const response = await fetch(`${http.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      state: 'running',
      ports: [
        { device: 'net_af_packet0', linkUp: true },
        { device: 'net_af_packet1', linkUp: true },
      ],
    });
  });

  it('spreads connections to the VIP over both servers, one flow per connection', async () => {
    const { bodies } = await getMany(topology.client.namespace, `http://${VIP}/`, REQUESTS);
    expect(bodies).toHaveLength(REQUESTS);
    expect(new Set(bodies)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));

    const stats = appliance.stats();
    const flows = stats.servers.filter((s) => s.serviceId === 1).map((s) => ({ ip: s.ip, flows: s.flows }));
    expect(flows.reduce((sum, s) => sum + s.flows, 0)).toBe(REQUESTS);
    for (const server of servers) {
      const answered = bodies.filter((body) => body === serverBody(server.ip)).length;
      expect({ ip: server.ip, flows: answered }).toEqual(flows.find((f) => f.ip === server.ip));
      expect(server.requests()).toBe(answered);
    }
  });

  it('delivers a 100 MiB download intact', async () => {
    const data = bigFile();
    const file = path.join(scratch, 'download.bin');
    const written = await inNamespace(
      topology.client.namespace,
      'curl',
      ['-sS', '--max-time', '150', '-o', file, '-w', '%{http_code} %{size_download}', `http://${VIP}${BIG_FILE_URL_PATH}`],
      { timeoutMs: 160_000 },
    );
    expect(written).toBe(`200 ${data.bytes}`);
    expect(await sha256(file)).toBe(data.sha256);

    const stats = appliance.stats();
    const webFlows = stats.servers.filter((s) => s.serviceId === 1).reduce((sum, s) => sum + s.flows, 0);
    expect(webFlows).toBe(REQUESTS + 1);
    const [clientSide, serverSide] = stats.ports;
    expect(serverSide!.rxBytes).toBeGreaterThan(data.bytes);
    expect(clientSide!.txBytes).toBeGreaterThan(data.bytes);
  }, 180_000);

  it('honours server weights of a second service', async () => {
    const { bodies, ports } = await getMany(topology.client.namespace, `http://${WEIGHTED.vip}/`, WEIGHTED.requests);
    const light = bodies.filter((body) => body === serverBody(topology.servers[0]!.ip)).length;
    const heavy = bodies.filter((body) => body === serverBody(topology.servers[1]!.ip)).length;
    expect(light + heavy).toBe(WEIGHTED.requests);
    // Expected 6 vs 54; equal weights would give 30 each (below 20 with probability < 1%).
    expect(light).toBeLessThan(20);
    const stats = appliance.stats();
    const flows = Object.fromEntries(stats.servers.filter((s) => s.serviceId === 2).map((s) => [s.ip, s.flows]));
    const expected = { [topology.servers[0]!.ip]: light, [topology.servers[1]!.ip]: heavy };
    // When the count is off (seen: one extra flow), say why: the service's flows, counters, client ports.
    const why = () =>
      flowReport({ vip: WEIGHTED.vip, port: 80, serviceId: 2, stats, entries: appliance.affinities({ includeLearned: true }), clientPorts: ports });
    expect(flows, JSON.stringify(flows) === JSON.stringify(expected) ? undefined : why()).toEqual(expected);
  });

  it('counts on its ports what the client kernel counted on the wire', async () => {
    const client = await kernelCounters(topology.client.namespace);
    const [clientSide] = appliance.stats().ports;
    // Everything the client received came out of port 0; everything port 0 received came from the client.
    expect(clientSide!.txPackets).toBeGreaterThanOrEqual(client.rxPackets);
    expect(clientSide!.rxPackets + clientSide!.rxMissed).toBeLessThanOrEqual(client.txPackets);
    expect(clientSide!.rxPackets).toBeGreaterThan(0.9 * client.txPackets);
  });

  it('exports the same counters as Prometheus metrics', async () => {
    const response = await fetch(`${http.url}/metrics`);
    expect(response.status).toBe(200);
    const lines = (await response.text()).split('\n');
    const stats = appliance.stats();
    for (const server of stats.servers) {
      const service = server.serviceId === 1 ? SERVICE_NAME : WEIGHTED.name;
      expect(lines).toContain(`edgeplane_server_flows_total{service="${service}",server="${server.ip}:80"} ${server.flows}`);
    }
    const txBytes = lines.find((line) => line.startsWith('edgeplane_port_tx_bytes_total{port="net_af_packet0"} '));
    expect(Number(txBytes?.split(' ')[1])).toBeGreaterThan(bigFile().bytes);
    expect(lines.some((line) => line.startsWith('edgeplane_drops_total{reason="'))).toBe(true);
  });

  it('stops cleanly: unhealthy, and the VIP no longer answers', async () => {
    appliance.stop();
    expect(appliance.state).toBe('stopped');
    const health = await fetch(`${http.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'unavailable', state: 'stopped' });
    expect((await fetch(`${http.url}/metrics`)).status).toBe(503);
    await expect(inNamespace(topology.client.namespace, 'curl', ['-sS', '--max-time', '2', `http://${VIP}/`])).rejects.toThrow(/failed/);
  });
});

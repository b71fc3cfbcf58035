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
import { SERVICE_NAME, natConfig } from '../netns/nat-config.js';
import { BIG_FILE_URL_PATH, bigFile, serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';

const PREFIX = 'epnat';
const REQUESTS = 40;

interface LinkCounters {
  rxPackets: number;
  txPackets: number;
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
    const urls = Array.from({ length: REQUESTS }, () => `http://${VIP}/`);
    // Connection: close makes every request a new connection from a new source port.
    const output = await inNamespace(topology.client.namespace, 'curl', ['-sS', '--max-time', '30', '-H', 'Connection: close', ...urls], {
      timeoutMs: 60_000,
    });
    const bodies = output.match(/server [0-9.]+\n/g) ?? [];
    expect(bodies.join('')).toBe(output);
    expect(bodies).toHaveLength(REQUESTS);
    expect(new Set(bodies)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));

    const stats = appliance.stats();
    const flows = stats.servers.map((s) => ({ ip: s.ip, flows: s.flows }));
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
    expect(stats.servers.reduce((sum, s) => sum + s.flows, 0)).toBe(REQUESTS + 1);
    const [clientSide, serverSide] = stats.ports;
    expect(serverSide!.rxBytes).toBeGreaterThan(data.bytes);
    expect(clientSide!.txBytes).toBeGreaterThan(data.bytes);
  }, 180_000);

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
      expect(lines).toContain(`edgeplane_server_flows_total{service="${SERVICE_NAME}",server="${server.ip}:80"} ${server.flows}`);
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

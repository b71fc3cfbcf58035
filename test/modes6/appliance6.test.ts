/* A dual-stack appliance from its configuration file: the control application's Appliance (in this
 * process) runs a config document through parseConfig with IPv6 port addresses (ports[].address6)
 * and an IPv6 service beside the IPv4 one, on two net_af_packet ports. The client reaches both VIPs,
 * each served by both servers' nginx of that family; the IPv6 one by full NAT from the port's address6. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Appliance } from '../../app/control/appliance.js';
import { parseConfig } from '../../app/control/config.js';
import { natConfig } from '../netns/nat-config.js';
import { serverBody, startNginx, urlHost, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { CLIENT_GATEWAY6, SERVERS6, SERVER_GATEWAY6, addIpv6 } from '../netns/topology6.js';

const PREFIX = 'epapp6';
const VIP6 = 'fd00:1::100';
const REQUESTS = 20;

async function getMany(namespace: string, url: string, family: '-4' | '-6'): Promise<string[]> {
  const urls = Array.from({ length: REQUESTS }, () => url);
  const output = await inNamespace(namespace, 'curl', [family, '-g', '-sS', '--max-time', '10', '-H', 'Connection: close', ...urls], { timeoutMs: 60_000 });
  const bodies = output.match(/server [0-9a-f.:]+\n/g) ?? [];
  expect(bodies.join('')).toBe(output);
  return bodies;
}

describe('dual-stack appliance from its configuration', () => {
  let topology: Topology;
  const servers: NginxServer[] = [];
  let appliance: Appliance;

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    await addIpv6(topology);
    for (const [i, server] of topology.servers.entries()) {
      // nginx's [::]:80 is IPv6-only, so each family has its own server process
      servers.push(await startNginx(server.namespace, server.ip));
      servers.push(await startNginx(server.namespace, SERVERS6[i]!, { everyAddress: true }));
    }
    const document = natConfig(topology, { filePrefix: PREFIX, httpPort: 0 });
    const ports = document.ports as Record<string, unknown>[];
    ports[0]!.address6 = CLIENT_GATEWAY6;
    ports[1]!.address6 = SERVER_GATEWAY6;
    const [web] = document.services as Record<string, unknown>[];
    document.services = [
      web,
      { ...web, name: 'web6', vip: VIP6, mode: 'fullnat', snat: { ip: SERVER_GATEWAY6, portMin: 40000, portMax: 49999 }, servers: SERVERS6.map((address) => ({ address, port: 80 })) },
    ];
    const config = parseConfig('dual-stack', JSON.stringify(document));
    appliance = new Appliance(pino({ level: 'warn' }));
    appliance.start(config);
  }, 120_000);

  afterAll(async () => {
    appliance?.stop();
    for (const server of servers) await server.stop();
    await teardownTopology(PREFIX);
  });

  it('serves the IPv6 VIP from both IPv6 servers and the IPv4 VIP from both IPv4 servers', async () => {
    const bodies6 = await getMany(topology.client.namespace, `http://${urlHost(VIP6)}/`, '-6');
    expect(new Set(bodies6)).toEqual(new Set(SERVERS6.map((ip) => serverBody(ip))));
    const bodies4 = await getMany(topology.client.namespace, `http://${VIP}/`, '-4');
    expect(new Set(bodies4)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));

    const stats = appliance.stats().servers;
    const flowsOf = (serviceId: number) => stats.filter((s) => s.serviceId === serviceId).reduce((sum, s) => sum + s.flows, 0);
    expect(flowsOf(1)).toBe(REQUESTS);
    expect(flowsOf(2)).toBe(REQUESTS);
    expect(new Set(stats.filter((s) => s.serviceId === 2).map((s) => s.ip))).toEqual(new Set(SERVERS6));
    const listed = appliance.services().find((s) => s.name === 'web6')!;
    expect(listed.definition.vip).toBe(VIP6);
  });
});

/* The harness itself, without an appliance: the pieces the end-to-end tests rely on. */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverBody, startNginx, type NginxServer } from './nginx.js';
import { inNamespace, run } from './run.js';
import { buildTopology, teardownTopology, type Topology } from './topology.js';

const PREFIX = 'eptopo';

async function namespaces(): Promise<string[]> {
  return (await run('ip', ['netns', 'list'])).split('\n').map((line) => line.split(' ')[0] ?? '').filter((ns) => ns.startsWith(`${PREFIX}-`));
}

async function offloads(namespace: string | undefined, iface: string): Promise<Record<string, string>> {
  const text = namespace ? await inNamespace(namespace, 'ethtool', ['-k', iface]) : await run('ethtool', ['-k', iface]);
  return Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([a-z-]+): (on|off)/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1], match[2]]),
  );
}

describe('network namespace topology', () => {
  let topology: Topology;
  let nginx: NginxServer | undefined;

  beforeAll(async () => {
    // Building over a previous build stands in for the leftovers of a crashed run.
    await buildTopology({ prefix: PREFIX, servers: 2 });
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
  });

  afterAll(async () => {
    await nginx?.stop();
    await teardownTopology(PREFIX);
  });

  it('creates a namespace per host and the appliance-side veths in the root namespace', async () => {
    expect((await namespaces()).sort()).toEqual([`${PREFIX}-client`, `${PREFIX}-srv1`, `${PREFIX}-srv2`, `${PREFIX}-sw`]);
    expect(topology.vdevs).toEqual([`net_af_packet0,iface=${PREFIX}-c`, `net_af_packet1,iface=${PREFIX}-s`]);
    for (const iface of [topology.applianceInterfaces.client, topology.applianceInterfaces.servers]) {
      const link = JSON.parse(await run('ip', ['-j', 'address', 'show', 'dev', iface]))[0];
      expect(link.flags).toContain('UP');
      expect(link.addr_info).toEqual([]);
    }
  });

  it('turns checksum and segmentation offloads off on every veth end', async () => {
    const ends: [string | undefined, string][] = [
      [undefined, topology.applianceInterfaces.client],
      [undefined, topology.applianceInterfaces.servers],
      [topology.client.namespace, 'eth0'],
      [topology.switchNamespace, 'uplink'],
      ...topology.servers.flatMap((server, i): [string | undefined, string][] => [
        [server.namespace, 'eth0'],
        [topology.switchNamespace, `s${i + 1}`],
      ]),
    ];
    for (const [namespace, iface] of ends) {
      const features = await offloads(namespace, iface);
      for (const feature of ['tx-checksumming', 'rx-checksumming', 'tcp-segmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload']) {
        expect(`${namespace ?? 'root'}/${iface} ${feature}: ${features[feature]}`).toBe(`${namespace ?? 'root'}/${iface} ${feature}: off`);
      }
    }
  });

  it('addresses the hosts and points their default routes at the appliance', async () => {
    const clientRoutes = JSON.parse(await inNamespace(topology.client.namespace, 'ip', ['-j', 'route', 'show', 'default']));
    expect(clientRoutes[0].gateway).toBe('10.0.1.1');
    expect(topology.servers.map((s) => s.ip)).toEqual(['10.0.2.11', '10.0.2.12']);
    const serverRoutes = JSON.parse(await inNamespace(topology.servers[1]!.namespace, 'ip', ['-j', 'route', 'show', 'default']));
    expect(serverRoutes[0].gateway).toBe('10.0.2.1');
  });

  it('switches between servers, and nothing answers for the appliance while it is not running', async () => {
    const [first, second] = topology.servers;
    const ping = await inNamespace(first!.namespace, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', second!.ip]);
    expect(ping).toContain('2 received');
    await expect(inNamespace(topology.client.namespace, 'ping', ['-c', '1', '-W', '1', '10.0.1.1'])).rejects.toThrow(/failed/);
  });

  it('runs nginx in a server namespace that names itself and logs each request', async () => {
    const server = topology.servers[0]!;
    nginx = await startNginx(server.namespace, server.ip);
    expect(nginx.requests()).toBe(0);
    const body = await inNamespace(server.namespace, 'curl', ['-sf', `http://${server.ip}/`]);
    expect(body).toBe(serverBody(server.ip));
    expect(nginx.requests()).toBe(1);
  });

  it('tears down idempotently, ending processes left in its namespaces', async () => {
    const pidFile = `${nginx!.dir}/nginx.pid`;
    expect(existsSync(pidFile)).toBe(true);
    await teardownTopology(PREFIX);
    await teardownTopology(PREFIX);
    await nginx!.stop();
    expect(await namespaces()).toEqual([]);
    expect(existsSync(`/sys/class/net/${PREFIX}-c`)).toBe(false);
    expect(existsSync(`/sys/class/net/${PREFIX}-s`)).toBe(false);
  });
});

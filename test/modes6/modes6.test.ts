/* IPv6 virtual services end to end (issue 3, SR-R7 "every forwarding mode, IPv4 and IPv6"): the
 * topology of test/modes with IPv6 switched on in its namespaces, one in-process data plane on two
 * net_af_packet ports with IPv6 port addresses, a service per IPv6 mode on its own IPv6 VIP, two
 * real nginx servers listening on IPv6, curl -6 from the client. Nothing is configured statically
 * on the data plane's side of the network: the client and the servers find it, and it finds them,
 * by neighbour discovery. NAT and full NAT answer through the appliance; DSR answers the client
 * over the topology's direct return path. */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane, type ForwardingMode, type WildcardAffinity } from '../../firmware/dataplane.js';
import { BIG_FILE_URL_PATH, bigFile, serverBody, startNginx, urlHost, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { CLIENT_GATEWAY, SERVER_GATEWAY, addDirectReturnPath, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { CLIENT6, CLIENT_GATEWAY6, SERVERS6, SERVER_GATEWAY6, addIpv6 } from '../netns/topology6.js';

const PREFIX = 'epmode6';
const TUNNEL_SETUP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../app/server-agent/tunnel-setup.sh');
const REQUESTS = 20;
const DOWNLOAD_BYTES = 10 * 1024 * 1024;
const SNAT6 = { ip: 'fd00:2::250', portMin: 20000, portMax: 29999 };
const MODES: { mode: ForwardingMode; vip: string }[] = [
  { mode: 'nat', vip: 'fd00:1::100' },
  { mode: 'fullnat', vip: 'fd00:1::101' },
  { mode: 'dsr', vip: 'fd00:1::102' },
];

async function sha256(file: string, bytes?: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, bytes === undefined ? {} : { end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Client addresses of the nginx access-log lines written since `from` lines. */
function loggedClients(server: NginxServer, from: number): string[] {
  const lines = readFileSync(`${server.dir}/access.log`, 'utf8').split('\n').filter(Boolean);
  return lines.slice(from).map((line) => line.split(' ')[0]!);
}

describe('IPv6 virtual services end to end', () => {
  let topology: Topology;
  let servers: NginxServer[] = [];
  let dp: Dataplane;
  let clientPort: number;
  let serverPort: number;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ep-modes6-'));
  const downloadSha256 = sha256(bigFile().path, DOWNLOAD_BYTES);

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    const { routerNamespace } = await addDirectReturnPath(topology);
    await addIpv6(topology, routerNamespace);
    servers = await Promise.all(topology.servers.map((s, i) => startNginx(s.namespace, SERVERS6[i]!, { everyAddress: true })));

    dp = Dataplane.init({ lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: PREFIX, vdevs: topology.vdevs });
    const ports = dp.ports();
    clientPort = ports.find((p) => p.name === 'net_af_packet0')!.id;
    serverPort = ports.find((p) => p.name === 'net_af_packet1')!.id;
    dp.configurePort(clientPort, { address: CLIENT_GATEWAY, prefixLength: 24, address6: CLIENT_GATEWAY6, prefixLength6: 64 });
    dp.configurePort(serverPort, { address: SERVER_GATEWAY, prefixLength: 24, address6: SERVER_GATEWAY6, prefixLength6: 64 });
    dp.addLocalAddress(serverPort, SNAT6.ip);
    const wildcards: WildcardAffinity[] = [];
    MODES.forEach(({ mode, vip }, i) => {
      dp.setService({
        id: i + 1,
        vip,
        port: 80,
        protocol: 'tcp',
        mode,
        servers: SERVERS6.map((ip) => ({ ip, port: 80, weight: 1 })),
        ...(mode === 'fullnat' ? { snat: SNAT6 } : {}),
      });
      dp.addLocalAddress(clientPort, vip);
      wildcards.push({
        protocol: 'tcp',
        srcIp: '::',
        srcMask: '::',
        dstIp: vip,
        dstMask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
        srcPort: 0,
        dstPort: 80,
        precedence: 100,
        action: { type: 'service', serviceId: i + 1 },
      });
    });
    dp.setWildcards(wildcards);
    dp.start();
    for (const ip of SERVERS6) dp.resolve(ip);
    await sleep(300);
  }, 120_000);

  afterAll(async () => {
    dp?.close();
    for (const server of servers) await server.stop();
    await teardownTopology(PREFIX);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('answers ICMPv6 echo for its port address and the VIPs (found by neighbour discovery)', async () => {
    const before = dp.stats();
    for (const target of [CLIENT_GATEWAY6, ...MODES.map((m) => m.vip)]) {
      const output = await inNamespace(topology.client.namespace, 'ping', ['-6', '-n', '-c', '2', '-i', '0.2', '-W', '3', target], { timeoutMs: 20_000 });
      expect(output).toMatch(/2 packets transmitted, 2 received/);
    }
    const after = dp.stats();
    expect(after.actions.local - before.actions.local).toBeGreaterThanOrEqual(2 * (1 + MODES.length));
  });

  MODES.forEach(({ mode, vip }, i) => {
    const serviceId = i + 1;
    const directReturn = mode === 'dsr';

    describe(mode, () => {
      beforeAll(async () => {
        if (!directReturn) return;
        // The VIP on lo: the servers accept packets for it and answer from it.
        for (const server of topology.servers) {
          const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--mode', 'dsr', '--vip', vip]);
          expect(output).toContain(`added ${vip}/128 to lo`);
          expect(output).toContain('dsr ready');
        }
      });

      it('answers from both servers, one flow per connection, the servers see the right client', async () => {
        const logged = servers.map((s) => s.requests());
        const urls = Array.from({ length: REQUESTS }, () => `http://${urlHost(vip)}/`);
        const output = await inNamespace(topology.client.namespace, 'curl', ['-6', '-g', '-sSf', '--max-time', '10', '-H', 'Connection: close', ...urls], {
          timeoutMs: 60_000,
        });
        const bodies = output.match(/server [0-9a-f:]+\n/g) ?? [];
        expect(bodies.join('')).toBe(output);
        expect(bodies).toHaveLength(REQUESTS);
        expect(new Set(bodies)).toEqual(new Set(SERVERS6.map((ip) => serverBody(ip))));
        const stats = dp.stats().servers.filter((s) => s.serviceId === serviceId);
        expect(new Set(stats.map((s) => s.ip))).toEqual(new Set(SERVERS6));
        expect(stats.reduce((sum, s) => sum + s.flows, 0)).toBe(REQUESTS);
        for (const s of stats) expect(s.packets).toBeGreaterThan(0);

        const clients = servers.flatMap((s, k) => loggedClients(s, logged[k]!));
        expect(clients).toHaveLength(REQUESTS);
        expect(new Set(clients)).toEqual(new Set([mode === 'fullnat' ? SNAT6.ip : CLIENT6]));
      });

      it(`delivers 10 MiB intact, the reply ${directReturn ? 'bypassing' : 'passing through'} the appliance`, async () => {
        const file = path.join(scratch, `${mode}.bin`);
        const before = dp.stats();
        const clientBefore = before.ports.find((p) => p.id === clientPort)!;
        const written = await inNamespace(
          topology.client.namespace,
          'curl',
          ['-6', '-g', '-sS', '--max-time', '60', '-r', `0-${DOWNLOAD_BYTES - 1}`, '-o', file, '-w', '%{http_code} %{size_download}', `http://${urlHost(vip)}${BIG_FILE_URL_PATH}`],
          { timeoutMs: 70_000 },
        );
        expect(written).toBe(`206 ${DOWNLOAD_BYTES}`);
        expect(await sha256(file)).toBe(await downloadSha256);
        const after = dp.stats();
        const sentToClient = after.ports.find((p) => p.id === clientPort)!.txBytes - clientBefore.txBytes;
        if (directReturn) expect(sentToClient).toBeLessThan(DOWNLOAD_BYTES / 10);
        else expect(sentToClient).toBeGreaterThan(DOWNLOAD_BYTES);
        // the servers' byte counters saw the download: both directions in NAT modes, the requests in DSR
        const served = (s: typeof after) => s.servers.filter((x) => x.serviceId === serviceId).reduce((sum, x) => sum + x.bytes, 0);
        if (directReturn) expect(served(after) - served(before)).toBeGreaterThan(0);
        else expect(served(after) - served(before)).toBeGreaterThan(DOWNLOAD_BYTES);
        expect(after.flows.created - before.flows.created).toBe(1);
      }, 90_000);

      if (directReturn) {
        it('stops answering once tunnel-setup.sh --undo took the VIP off the servers', async () => {
          for (const server of topology.servers) {
            expect(await inNamespace(server.namespace, TUNNEL_SETUP, ['--mode', 'dsr', '--vip', vip])).not.toContain('added');
            const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--undo', '--vip', vip]);
            expect(output).toContain(`removed ${vip}/128 from lo`);
          }
          await expect(inNamespace(topology.client.namespace, 'curl', ['-6', '-g', '-sS', '--max-time', '2', `http://${urlHost(vip)}/`])).rejects.toThrow(/timed out/i);
        });
      }
    });
  });
});

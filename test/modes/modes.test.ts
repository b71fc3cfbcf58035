/* Every forwarding mode end to end (issue 3, SR-R7): one in-process data plane on two
 * net_af_packet ports, a service per mode on its own VIP, two real nginx servers set up with
 * app/server-agent/tunnel-setup.sh, curl from the client. NAT modes answer through the appliance;
 * DSR and the tunnel modes answer the client directly over the topology's direct return path.
 * What each mode puts on the wire is read back from captures and logs on the servers. */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_GUE_PORT, Dataplane, type ForwardingMode, type WildcardAffinity } from '../../firmware/dataplane.js';
import { capture } from '../netns/capture.js';
import { flowReport } from '../netns/flow-report.js';
import { BIG_FILE_URL_PATH, bigFile, serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { CLIENT_GATEWAY, SERVER_GATEWAY, addDirectReturnPath, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';

const PREFIX = 'epmodes';
const TUNNEL_SETUP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../app/server-agent/tunnel-setup.sh');
const REQUESTS = 20;
const DOWNLOAD_BYTES = 10 * 1024 * 1024;
/* Full NAT's source address: on the servers' subnet, so servers reach it without a route change. */
const SNAT = { ip: '10.0.2.250', portMin: 20000, portMax: 29999 };
const MODES: { mode: ForwardingMode; vip: string }[] = [
  { mode: 'nat', vip: '10.0.1.100' },
  { mode: 'fullnat', vip: '10.0.1.101' },
  { mode: 'dsr', vip: '10.0.1.102' },
  { mode: 'ipip', vip: '10.0.1.103' },
  { mode: 'gre', vip: '10.0.1.104' },
  { mode: 'gue', vip: '10.0.1.105' },
];
const IPPROTO = { ipip: 4, tcp: 6, udp: 17, gre: 47 } as const;
const TUNNEL_CAPTURE_FILTER: Partial<Record<ForwardingMode, string>> = {
  ipip: 'ip proto 4',
  gre: 'ip proto 47',
  gue: `udp dst port ${DEFAULT_GUE_PORT}`,
};

function ipv4(bytes: Buffer, at: number): string {
  return [...bytes.subarray(at, at + 4)].join('.');
}

async function sha256(file: string, bytes?: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, bytes === undefined ? {} : { end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function macOf(namespace: string, iface: string): Promise<string> {
  const [link] = JSON.parse(await inNamespace(namespace, 'ip', ['-j', 'link', 'show', 'dev', iface]));
  return link.address;
}

/** Client addresses of the nginx access-log lines written since `from` lines. */
function loggedClients(server: NginxServer, from: number): string[] {
  const lines = readFileSync(`${server.dir}/access.log`, 'utf8').split('\n').filter(Boolean);
  return lines.slice(from).map((line) => line.split(' ')[0]!);
}

describe('forwarding modes end to end', () => {
  let topology: Topology;
  let servers: NginxServer[] = [];
  let dp: Dataplane;
  let clientPort: number;
  let serverPort: number;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ep-modes-'));
  const downloadSha256 = sha256(bigFile().path, DOWNLOAD_BYTES);

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    await addDirectReturnPath(topology);
    // Every address: the VIPs that tunnel-setup.sh puts on lo in the direct-return modes.
    servers = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip, { everyAddress: true })));

    dp = Dataplane.init({ lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: PREFIX, vdevs: topology.vdevs });
    const ports = dp.ports();
    clientPort = ports.find((p) => p.name === 'net_af_packet0')!.id;
    serverPort = ports.find((p) => p.name === 'net_af_packet1')!.id;
    dp.configurePort(clientPort, { address: CLIENT_GATEWAY, prefixLength: 24 });
    dp.configurePort(serverPort, { address: SERVER_GATEWAY, prefixLength: 24 });
    dp.addLocalAddress(serverPort, SNAT.ip);
    const wildcards: WildcardAffinity[] = [];
    MODES.forEach(({ mode, vip }, i) => {
      dp.setService({
        id: i + 1,
        vip,
        port: 80,
        protocol: 'tcp',
        mode,
        servers: topology.servers.map((s) => ({ ip: s.ip, port: 80, weight: 1 })),
        ...(mode === 'fullnat' ? { snat: SNAT } : {}),
      });
      dp.addLocalAddress(clientPort, vip);
      wildcards.push({
        protocol: 'tcp',
        srcIp: '0.0.0.0',
        srcMask: '0.0.0.0',
        dstIp: vip,
        dstMask: '255.255.255.255',
        srcPort: 0,
        dstPort: 80,
        precedence: 100,
        action: { type: 'service', serviceId: i + 1 },
      });
    });
    dp.setWildcards(wildcards);
    dp.start();
    for (const server of topology.servers) dp.resolve(server.ip);
    await sleep(300);
  });

  afterAll(async () => {
    dp?.close();
    for (const server of servers) await server.stop();
    await teardownTopology(PREFIX);
    rmSync(scratch, { recursive: true, force: true });
  });

  MODES.forEach(({ mode, vip }, i) => {
    const serviceId = i + 1;
    const directReturn = mode !== 'nat' && mode !== 'fullnat';

    describe(mode, () => {
      beforeAll(async () => {
        if (!directReturn) return;
        for (const server of topology.servers) {
          const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--mode', mode, '--vip', vip]);
          expect(output).toContain(`${mode} ready`);
        }
      });

      it('answers from both servers, one flow per connection', async () => {
        const logged = servers.map((s) => s.requests());
        const urls = Array.from({ length: REQUESTS }, () => `http://${vip}/`);
        const output = await inNamespace(
          topology.client.namespace,
          'curl',
          ['-sSf', '--max-time', '10', '-H', 'Connection: close', '-w', 'port %{local_port}\n', ...urls],
          { timeoutMs: 60_000 },
        );
        const pairs = [...output.matchAll(/(server [0-9.]+\n)port ([0-9]+)\n/g)];
        expect(pairs.map((m) => m[0]).join('')).toBe(output);
        const bodies = pairs.map((m) => m[1]!);
        expect(bodies).toHaveLength(REQUESTS);
        expect(new Set(bodies)).toEqual(new Set(topology.servers.map((s) => serverBody(s.ip))));
        const stats = dp.stats();
        const flows = stats.servers.filter((s) => s.serviceId === serviceId).reduce((sum, s) => sum + s.flows, 0);
        // When the count is off (seen: 21 for 20 in nat), say why: the service's flows, counters, client ports.
        const why = () =>
          flowReport({
            vip,
            port: 80,
            serviceId,
            stats,
            entries: dp.listAffinities({ includeLearned: true }),
            clientPorts: pairs.map((m) => Number(m[2])),
          });
        expect(flows, flows === REQUESTS ? undefined : why()).toBe(REQUESTS);

        // Who the servers saw as the client: the client itself, except in full NAT (the unit's address).
        const clients = servers.flatMap((s, k) => loggedClients(s, logged[k]!));
        expect(clients).toHaveLength(REQUESTS);
        expect(new Set(clients)).toEqual(new Set([mode === 'fullnat' ? SNAT.ip : topology.client.ip]));
      });

      it(`delivers 10 MiB intact, the reply ${directReturn ? 'bypassing' : 'passing through'} the appliance`, async () => {
        const file = path.join(scratch, `${mode}.bin`);
        const before = dp.stats().ports.find((p) => p.id === clientPort)!;
        const written = await inNamespace(
          topology.client.namespace,
          'curl',
          ['-sS', '--max-time', '60', '-r', `0-${DOWNLOAD_BYTES - 1}`, '-o', file, '-w', '%{http_code} %{size_download}', `http://${vip}${BIG_FILE_URL_PATH}`],
          { timeoutMs: 70_000 },
        );
        expect(written).toBe(`206 ${DOWNLOAD_BYTES}`);
        expect(await sha256(file)).toBe(await downloadSha256);
        const after = dp.stats().ports.find((p) => p.id === clientPort)!;
        const sentToClient = after.txBytes - before.txBytes;
        if (directReturn) expect(sentToClient).toBeLessThan(DOWNLOAD_BYTES / 10);
        else expect(sentToClient).toBeGreaterThan(DOWNLOAD_BYTES);
      }, 90_000);

      if (mode === 'dsr') {
        it('hands the client packet to the server MAC unchanged (VIP still the destination)', async () => {
          const server = topology.servers[0]!;
          const serverMac = await macOf(server.namespace, 'eth0');
          const { frames } = await capture(scratch, server.namespace, 'eth0', `tcp dst port 80 and dst host ${vip}`, () =>
            inNamespace(topology.client.namespace, 'curl', ['-sSf', '--max-time', '10', '-H', 'Connection: close', ...Array.from({ length: 8 }, () => `http://${vip}/`)]),
          );
          expect(frames.length).toBeGreaterThan(0);
          for (const frame of frames) {
            expect([...frame.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')).toBe(serverMac);
            expect(frame.readUInt16BE(12)).toBe(0x0800);
            expect({ proto: frame[14 + 9], src: ipv4(frame, 14 + 12), dst: ipv4(frame, 14 + 16) }).toEqual({ proto: IPPROTO.tcp, src: topology.client.ip, dst: vip });
          }
        });
      }

      const tunnelFilter = TUNNEL_CAPTURE_FILTER[mode];
      if (tunnelFilter) {
        it(`tunnels to the server: outer ${mode} header from the appliance port, inner packet for the VIP`, async () => {
          const server = topology.servers[0]!;
          const { frames } = await capture(scratch, server.namespace, 'eth0', tunnelFilter, () =>
            inNamespace(topology.client.namespace, 'curl', ['-sSf', '--max-time', '10', '-H', 'Connection: close', ...Array.from({ length: 8 }, () => `http://${vip}/`)]),
          );
          expect(frames.length).toBeGreaterThan(0);
          for (const frame of frames) {
            const outer = frame.subarray(14);
            expect({ src: ipv4(outer, 12), dst: ipv4(outer, 16), ihl: outer[0]! & 0xf }).toEqual({ src: SERVER_GATEWAY, dst: server.ip, ihl: 5 });
            let inner: Buffer;
            if (mode === 'ipip') {
              expect(outer[9]).toBe(IPPROTO.ipip);
              inner = outer.subarray(20);
            } else if (mode === 'gre') {
              expect(outer[9]).toBe(IPPROTO.gre);
              expect([...outer.subarray(20, 24)]).toEqual([0, 0, 0x08, 0x00]);
              inner = outer.subarray(24);
            } else {
              expect(outer[9]).toBe(IPPROTO.udp);
              expect(outer.readUInt16BE(22)).toBe(DEFAULT_GUE_PORT);
              expect([...outer.subarray(28, 32)]).toEqual([0x00, 0x04, 0x00, 0x00]);
              inner = outer.subarray(32);
            }
            expect({ proto: inner[9], src: ipv4(inner, 12), dst: ipv4(inner, 16), dport: inner.readUInt16BE(22) }).toEqual({
              proto: IPPROTO.tcp,
              src: topology.client.ip,
              dst: vip,
              dport: 80,
            });
          }
        });
      }

      if (directReturn) {
        it('stops answering once tunnel-setup.sh --undo took the server setup away', async () => {
          for (const server of topology.servers) {
            const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--undo', '--vip', vip]);
            expect(output).toContain(`removed ${vip}/32 from lo`);
          }
          await expect(inNamespace(topology.client.namespace, 'curl', ['-sS', '--max-time', '2', `http://${vip}/`])).rejects.toThrow(/timed out/i);
        });
      }
    });
  });

  // IPv6 (nat, fullnat, dsr): test/modes6/modes6.test.ts.
});

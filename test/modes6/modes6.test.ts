/* IPv6 virtual services end to end (issue 3, SR-R7 "every forwarding mode, IPv4 and IPv6"): the
 * topology of test/modes with IPv6 switched on in its namespaces, one in-process data plane on two
 * net_af_packet ports with IPv6 port addresses, a service per mode on its own IPv6 VIP, two real
 * nginx servers listening on IPv6, curl -6 from the client. Nothing is configured statically on
 * the data plane's side of the network: the client and the servers find it, and it finds them, by
 * neighbour discovery. NAT and full NAT answer through the appliance; DSR and the tunnel modes
 * (IPv6 in IPv6, GRE and GUE over IPv6, decapsulated on the servers by tunnel-setup.sh) answer the
 * client over the topology's direct return path. What a tunnel puts on the wire is read back from
 * captures on a server. */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipv6ToBuffer } from '../../firmware/addressing.js';
import { DEFAULT_GUE_PORT, Dataplane, type ForwardingMode, type WildcardAffinity } from '../../firmware/dataplane.js';
import { capture } from '../netns/capture.js';
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
  { mode: 'ipip', vip: 'fd00:1::103' },
  { mode: 'gre', vip: 'fd00:1::104' },
  { mode: 'gue', vip: 'fd00:1::105' },
];
const NEXT_HEADER = { tcp: 6, udp: 17, ipv6: 41, gre: 47 } as const;
/* The outer header each tunnel mode puts in front of the client's packet (next header, bytes). */
const TUNNELS: Partial<Record<ForwardingMode, { filter: string; nextHeader: number; outerBytes: number }>> = {
  ipip: { filter: 'ip6 proto 41', nextHeader: NEXT_HEADER.ipv6, outerBytes: 40 },
  gre: { filter: 'ip6 proto 47', nextHeader: NEXT_HEADER.gre, outerBytes: 44 },
  gue: { filter: `ip6 and udp dst port ${DEFAULT_GUE_PORT}`, nextHeader: NEXT_HEADER.udp, outerBytes: 52 },
};

function hex6(address: string): string {
  return ipv6ToBuffer(address).toString('hex');
}

/** The UDP checksum of the IPv6 packet ip6 (no extension headers) verifies: pseudo header and
 * segment sum to 0xffff. */
function udpChecksumValid(ip6: Buffer): boolean {
  const length = ip6.readUInt16BE(4);
  let sum = length + NEXT_HEADER.udp;
  for (let i = 8; i < 40; i += 2) sum += ip6.readUInt16BE(i);
  const segment = ip6.subarray(40, 40 + length);
  for (let i = 0; i < segment.length; i += 2) sum += i + 1 < segment.length ? segment.readUInt16BE(i) : segment[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

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
    const directReturn = mode !== 'nat' && mode !== 'fullnat';
    const tunnel = TUNNELS[mode];

    describe(mode, () => {
      beforeAll(async () => {
        if (!directReturn) return;
        // The VIP on lo: the servers accept packets for it and answer from it; tunnels: decapsulation.
        for (const server of topology.servers) {
          const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--mode', mode, '--vip', vip], { timeoutMs: 60_000 });
          expect(output).toContain(`added ${vip}/128 to lo`);
          expect(output).toContain(`${mode} ready`);
        }
      }, 120_000);

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

      if (tunnel) {
        it(`tunnels to the server: outer IPv6 from the port's address6${mode === 'ipip' ? '' : `, ${mode.toUpperCase()} header`}, the client's packet inside`, async () => {
          const server = topology.servers[0]!;
          const { frames } = await capture(
            scratch,
            server.namespace,
            'eth0',
            tunnel.filter,
            () => inNamespace(topology.client.namespace, 'curl', ['-6', '-g', '-sSf', '--max-time', '10', '-H', 'Connection: close', ...Array.from({ length: 8 }, () => `http://${urlHost(vip)}/`)]),
            2048,
          );
          expect(frames.length).toBeGreaterThan(0);
          for (const frame of frames) {
            expect(frame.readUInt16BE(12)).toBe(0x86dd);
            const outer = frame.subarray(14);
            expect({
              version: outer[0]! >> 4,
              payloadLength: outer.readUInt16BE(4),
              nextHeader: outer[6],
              src: outer.subarray(8, 24).toString('hex'),
              dst: outer.subarray(24, 40).toString('hex'),
            }).toEqual({ version: 6, payloadLength: outer.length - 40, nextHeader: tunnel.nextHeader, src: hex6(SERVER_GATEWAY6), dst: hex6(SERVERS6[0]!) });
            if (mode === 'gre') expect([...outer.subarray(40, 44)]).toEqual([0, 0, 0x86, 0xdd]);
            if (mode === 'gue') {
              expect({ dport: outer.readUInt16BE(42), length: outer.readUInt16BE(44), gue: [...outer.subarray(48, 52)] }).toEqual({
                dport: DEFAULT_GUE_PORT,
                length: outer.length - 40,
                gue: [0x00, NEXT_HEADER.ipv6, 0x00, 0x00],
              });
              // IPv6 makes the UDP checksum mandatory: present and right
              expect(outer.readUInt16BE(46)).not.toBe(0);
              expect(udpChecksumValid(outer)).toBe(true);
            }
            const inner = outer.subarray(tunnel.outerBytes);
            expect({
              version: inner[0]! >> 4,
              length: 40 + inner.readUInt16BE(4),
              nextHeader: inner[6],
              hopLimit: inner[7],
              src: inner.subarray(8, 24).toString('hex'),
              dst: inner.subarray(24, 40).toString('hex'),
              dport: inner.readUInt16BE(42),
            }).toEqual({ version: 6, length: inner.length, nextHeader: NEXT_HEADER.tcp, hopLimit: 63, src: hex6(CLIENT6), dst: hex6(vip), dport: 80 });
          }
        });
      }

      if (directReturn) {
        it('stops answering once tunnel-setup.sh --undo took the VIP off the servers', async () => {
          for (const server of topology.servers) {
            expect(await inNamespace(server.namespace, TUNNEL_SETUP, ['--mode', mode, '--vip', vip], { timeoutMs: 60_000 })).not.toContain('added');
            const output = await inNamespace(server.namespace, TUNNEL_SETUP, ['--undo', '--vip', vip]);
            expect(output).toContain(`removed ${vip}/128 from lo`);
            // the decapsulator goes too: the BPF program (this CI kernel) or the kernel's tunnel device
            if (tunnel) expect(output).toMatch(new RegExp(`removed the BPF decapsulator decap6-${mode}-${DEFAULT_GUE_PORT}\\.o from eth0 ingress|deleted eptun6-`));
          }
          await expect(inNamespace(topology.client.namespace, 'curl', ['-6', '-g', '-sS', '--max-time', '2', `http://${urlHost(vip)}/`])).rejects.toThrow(/timed out/i);
        });
      }
    });
  });
});

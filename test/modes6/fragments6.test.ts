/* IPv6 fragments through a NAT66 service (issue 3: "fragments of a flow reach the same server as the
 * first fragment"): the client's kernel fragments UDP datagrams larger than the 1500-byte link MTU
 * (a fragment header in each piece, only the first with the UDP header); the data plane must send
 * every later fragment to the server its first fragment picked, with the destination translated,
 * or that server's kernel cannot reassemble the datagram. A UDP listener on each server reports
 * what it reassembled: length and SHA-256, compared with what the client sent. */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../../firmware/dataplane.js';
import { inNamespace } from '../netns/run.js';
import { CLIENT_GATEWAY, SERVER_GATEWAY, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { CLIENT_GATEWAY6, SERVERS6, SERVER_GATEWAY6, addIpv6 } from '../netns/topology6.js';

const PREFIX = 'epfrag6';
const VIP = 'fd00:1::110';
const PORT = 9000;
const DATAGRAMS = 12;
const DATAGRAM_BYTES = 4000; // three fragments at MTU 1500

/* Prints "<length> <sha256>" for every datagram it receives on [::]:PORT until killed. */
const LISTENER = `
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(('::', ${PORT}))
print('ready', flush=True)
while True:
    data, _ = s.recvfrom(65535)
    print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
`;

/* Sends DATAGRAMS datagrams of distinct content, each from its own socket (its own source port), and
 * prints "<length> <sha256>" of each. */
const SENDER = `
import hashlib, socket, time
for i in range(${DATAGRAMS}):
    data = bytes((i * 31 + k * 7) % 251 for k in range(${DATAGRAM_BYTES}))
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.sendto(data, ('${VIP}', ${PORT}))
    s.close()
    print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
    time.sleep(0.02)
`;

interface Listener {
  process: ChildProcess;
  lines: string[];
}

function startListener(namespace: string): Promise<Listener> {
  const child = spawn('ip', ['netns', 'exec', namespace, 'python3', '-u', '-c', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listener: Listener = { process: child, lines: [] };
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        if (line === 'ready') resolve(listener);
        else listener.lines.push(line);
      }
    });
    child.on('exit', (code) => reject(new Error(`UDP listener in ${namespace} exited (${code})`)));
  });
}

describe('IPv6 fragments through a NAT66 service', () => {
  let topology: Topology;
  let dp: Dataplane;
  let listeners: Listener[] = [];
  let serverPort: number;

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    await addIpv6(topology);
    listeners = await Promise.all(topology.servers.map((s) => startListener(s.namespace)));
    dp = Dataplane.init({ lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: PREFIX, vdevs: topology.vdevs });
    const ports = dp.ports();
    const clientPort = ports.find((p) => p.name === 'net_af_packet0')!.id;
    serverPort = ports.find((p) => p.name === 'net_af_packet1')!.id;
    dp.configurePort(clientPort, { address: CLIENT_GATEWAY, prefixLength: 24, address6: CLIENT_GATEWAY6, prefixLength6: 64 });
    dp.configurePort(serverPort, { address: SERVER_GATEWAY, prefixLength: 24, address6: SERVER_GATEWAY6, prefixLength6: 64 });
    dp.setService({ id: 1, vip: VIP, port: PORT, protocol: 'udp', mode: 'nat', servers: SERVERS6.map((ip) => ({ ip, port: PORT, weight: 1 })) });
    dp.addLocalAddress(clientPort, VIP);
    dp.setWildcards([
      {
        protocol: 'udp',
        srcIp: '::',
        srcMask: '::',
        dstIp: VIP,
        dstMask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
        srcPort: 0,
        dstPort: PORT,
        precedence: 100,
        action: { type: 'service', serviceId: 1 },
      },
    ]);
    dp.start();
    for (const ip of SERVERS6) dp.resolve(ip);
    await sleep(500);
  }, 120_000);

  afterAll(async () => {
    for (const listener of listeners) listener.process.kill();
    dp?.close();
    await teardownTopology(PREFIX);
  });

  it('delivers every fragmented datagram reassembled and intact to one server', async () => {
    const before = dp.stats();
    const sent = (await inNamespace(topology.client.namespace, 'python3', ['-c', SENDER], { timeoutMs: 30_000 })).trim().split('\n');
    expect(sent).toHaveLength(DATAGRAMS);
    const received = () => listeners.flatMap((l) => l.lines);
    for (let waited = 0; received().length < DATAGRAMS && waited < 5000; waited += 100) await sleep(100);
    const after = dp.stats();
    const fragmentDrops = (after.drops.fragment ?? 0) - (before.drops.fragment ?? 0);
    expect(received().sort(), `fragment drops ${fragmentDrops}, drops ${JSON.stringify(after.drops)}`).toEqual([...sent].sort());
    // Three fragments a datagram went through the data plane, spread over both servers by flow.
    expect(listeners.every((l) => l.lines.length > 0), `per server: ${listeners.map((l) => l.lines.length).join(', ')}`).toBe(true);
    const flows = after.servers.filter((s) => s.serviceId === 1).reduce((sum, s) => sum + s.flows, 0);
    expect(flows).toBe(DATAGRAMS);
    expect(after.ports.find((p) => p.id === serverPort)!.txPackets - before.ports.find((p) => p.id === serverPort)!.txPackets).toBeGreaterThanOrEqual(3 * DATAGRAMS);
  });
});

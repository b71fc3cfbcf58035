/* QoS marks of virtual services (SR-R5) on real packets: the control application's config (services[].qos)
 * -> data plane flows -> what arrives at the servers and the client, captured with tcpdump and
 * dissected with scapy. DSCP marks ride on a full HTTP exchange; the servers' kernel has no 802.1Q
 * or MPLS, so tagged and labelled frames are checked as they arrive (the server cannot answer them),
 * and pops are fed with frames scapy tags on the client. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Appliance } from '../../app/control/appliance.js';
import { parseConfig } from '../../app/control/config.js';
import { capture } from '../netns/capture.js';
import { natConfig } from '../netns/nat-config.js';
import { serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { CommandError, inNamespace } from '../netns/run.js';
import { buildTopology, teardownTopology, type Topology } from '../netns/topology.js';

const PREFIX = 'epqos';
const FRAME_FIELDS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../netns/frame-fields.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface FrameFields {
  vlan: { vid: number; pcp: number }[];
  mpls: { label: number; tc: number; bottom: number; ttl: number }[];
  ip?: { src: string; dst: string; dscp: number; ecn: number; checksumOk: boolean };
  tcp?: { sport: number; dport: number; flags: string };
}

const SERVICES = {
  marked: { vip: '10.0.1.100', qos: { toServer: { dscp: 46 }, toClient: { dscp: 26 } } },
  tagged: { vip: '10.0.1.101', qos: { toServer: { vlan: 100, pcp: 5, dscp: 8 } } },
  labelled: { vip: '10.0.1.102', qos: { toServer: { mplsLabel: 1000, pcp: 3 } } },
  untagged: { vip: '10.0.1.103', qos: { toServer: { vlanPop: true, dscp: 34 } } },
  unlabelled: { vip: '10.0.1.104', qos: { toServer: { mplsPop: true } } },
} as const;

/** Asynchronous: scapy takes seconds on a loaded host and must not block the vitest worker's RPC. */
async function frameFields(file: string): Promise<FrameFields[]> {
  const { stdout } = await promisify(execFile)(PYTHON, [FRAME_FIELDS, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as FrameFields);
}

/** A SYN the server cannot answer (it drops tagged frames): curl gives up quickly. */
async function connectOnce(namespace: string, vip: string): Promise<void> {
  try {
    await inNamespace(namespace, 'curl', ['-sS', '--max-time', '1', `http://${vip}/`]);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
  }
}

describe('service QoS marks on the wire', () => {
  let topology: Topology;
  let servers: NginxServer[] = [];
  let appliance: Appliance;
  let applianceMac: string;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ep-qos-'));

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 1 });
    servers = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
    const document = natConfig(topology, { filePrefix: PREFIX, httpPort: 0 });
    const [template] = document.services as Record<string, unknown>[];
    document.services = Object.entries(SERVICES).map(([name, { vip, qos }]) => ({ ...template, name, vip, qos }));
    const config = parseConfig('qos-test', JSON.stringify(document));
    appliance = new Appliance(pino({ level: 'warn' }));
    appliance.start(config);
    applianceMac = appliance.dataplane().ports().find((p) => p.name === 'net_af_packet0')!.mac;
  });

  afterAll(async () => {
    appliance?.stop();
    for (const server of servers) await server.stop();
    await teardownTopology(PREFIX);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('marks DSCP both ways of an HTTP exchange: 46 towards the server, 26 towards the client', async () => {
    const [server] = topology.servers;
    const { vip } = SERVICES.marked;
    const atClient = await capture(scratch, topology.client.namespace, 'eth0', `tcp and src host ${vip}`, async () =>
      capture(scratch, server!.namespace, 'eth0', 'tcp dst port 80', () =>
        inNamespace(topology.client.namespace, 'curl', ['-sSf', '--max-time', '10', '-H', 'Connection: close', `http://${vip}/`, `http://${vip}/`]),
      ),
    );
    const atServer = atClient.result;
    expect(atServer.result).toBe(serverBody(server!.ip).repeat(2));
    const toServer = await frameFields(atServer.file);
    const toClient = await frameFields(atClient.file);
    expect(toServer.length).toBeGreaterThanOrEqual(6); // two handshakes, requests, FINs
    expect(toClient.length).toBeGreaterThanOrEqual(6);
    for (const frame of toServer) {
      expect(frame).toMatchObject({ vlan: [], mpls: [], ip: { src: topology.client.ip, dst: server!.ip, dscp: 46, ecn: 0, checksumOk: true } });
    }
    for (const frame of toClient) {
      expect(frame).toMatchObject({ vlan: [], mpls: [], ip: { src: vip, dst: topology.client.ip, dscp: 26, checksumOk: true } });
    }
  });

  it('pushes an 802.1Q tag (VLAN 100, priority 5) on what goes to the server, DSCP 8 inside', async () => {
    const [server] = topology.servers;
    const { vip } = SERVICES.tagged;
    const { file } = await capture(scratch, server!.namespace, 'eth0', 'vlan 100', () => connectOnce(topology.client.namespace, vip));
    const frames = await frameFields(file);
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) {
      expect(frame).toMatchObject({
        vlan: [{ vid: 100, pcp: 5 }],
        mpls: [],
        ip: { src: topology.client.ip, dst: server!.ip, dscp: 8, checksumOk: true },
        tcp: { dport: 80, flags: 'S' },
      });
    }
  });

  it('pushes MPLS label 1000 (traffic class 3, bottom of stack) on what goes to the server', async () => {
    const [server] = topology.servers;
    const { vip } = SERVICES.labelled;
    const { file } = await capture(scratch, server!.namespace, 'eth0', 'mpls 1000', () => connectOnce(topology.client.namespace, vip));
    const frames = await frameFields(file);
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) {
      expect(frame).toMatchObject({
        vlan: [],
        mpls: [{ label: 1000, tc: 3, bottom: 1, ttl: 63 }],
        ip: { src: topology.client.ip, dst: server!.ip, dscp: 0, checksumOk: true },
        tcp: { dport: 80, flags: 'S' },
      });
    }
  });

  /** Sends three SYNs from the client in scapy-built frames (`layers` between Ethernet and IP). */
  async function sendWrapped(vip: string, layers: string, sport: number): Promise<void> {
    const script = [
      'from scapy.all import Ether, Dot1Q, IP, TCP, sendp',
      'from scapy.contrib.mpls import MPLS',
      `frame = Ether(dst='${applianceMac}', type=${layers.startsWith('MPLS') ? '0x8847' : '0x8100'})/${layers}/IP(src='${topology.client.ip}', dst='${vip}')/TCP(sport=${sport}, dport=80, flags='S', seq=1000)`,
      "sendp(frame, iface='eth0', count=3, inter=0.2, verbose=False)",
    ].join('\n');
    await inNamespace(topology.client.namespace, PYTHON, ['-c', script]);
  }

  it('pops the 802.1Q tag a client frame arrived with, marking DSCP 34', async () => {
    const [server] = topology.servers;
    const { vip } = SERVICES.untagged;
    const { file } = await capture(scratch, server!.namespace, 'eth0', 'tcp dst port 80 or vlan', () => sendWrapped(vip, 'Dot1Q(vlan=200, prio=6)', 41001));
    const frames = await frameFields(file);
    // the three SYNs (and the resets the client's kernel sends for the SYN-ACKs it did not expect)
    expect(frames.filter((frame) => frame.tcp?.flags === 'S')).toHaveLength(3);
    for (const frame of frames) {
      expect(frame).toMatchObject({ vlan: [], mpls: [], ip: { src: topology.client.ip, dst: server!.ip, dscp: 34, checksumOk: true }, tcp: { sport: 41001, dport: 80 } });
    }
  });

  it('pops the MPLS label a client frame arrived with: plain IPv4 to the server', async () => {
    const [server] = topology.servers;
    const { vip } = SERVICES.unlabelled;
    const { file } = await capture(scratch, server!.namespace, 'eth0', 'tcp dst port 80 or mpls', () => sendWrapped(vip, 'MPLS(label=77, s=1, ttl=64)', 41002));
    const frames = await frameFields(file);
    // the three SYNs (and the resets the client's kernel sends for the SYN-ACKs it did not expect)
    expect(frames.filter((frame) => frame.tcp?.flags === 'S')).toHaveLength(3);
    for (const frame of frames) {
      expect(frame).toMatchObject({ vlan: [], mpls: [], ip: { src: topology.client.ip, dst: server!.ip, dscp: 0, checksumOk: true }, tcp: { sport: 41002, dport: 80 } });
    }
  });
});

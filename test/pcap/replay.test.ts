/* pcap replay: known frames in (built by scapy), the data plane's output pcaps compared field by
 * field (decoded and checksummed by scapy). Port 0 faces clients, port 1 faces servers; each
 * scenario runs in its own process on two net_pcap ports. */
import { describe, expect, it } from 'vitest';
import { replay, type Frame, type FrameSpec, type ReplayOutcome, type ScenarioSetup } from '../support/pcap.js';

const CLIENT = { ip: '10.1.0.50', mac: '02:c1:00:00:00:01' };
const VIP = '10.0.0.100';
const SERVERS = [
  { ip: '10.2.0.11', mac: '02:5e:00:00:00:11' },
  { ip: '10.2.0.12', mac: '02:5e:00:00:00:12' },
];
const PORT0_IP = '10.1.0.1';
const PORT1_IP = '10.2.0.1';
const CONNECTIONS = 40;

const ports: ScenarioSetup['ports'] = [
  { id: 0, address: PORT0_IP, prefixLength: 24 },
  { id: 1, address: PORT1_IP, prefixLength: 24 },
];

/** NAT virtual service VIP:80 -> both servers on 8080, static neighbours on both sides. */
const natService: ScenarioSetup = {
  ports,
  neighbors: [{ ip: CLIENT.ip, port: 0, mac: CLIENT.mac }, ...SERVERS.map((s) => ({ ip: s.ip, port: 1, mac: s.mac }))],
  services: [
    { id: 1, vip: VIP, port: 80, protocol: 'tcp', servers: SERVERS.map((s) => ({ ip: s.ip, port: 8080, weight: 1 })) },
  ],
  wildcards: [
    {
      protocol: 'tcp',
      srcIp: '0.0.0.0',
      srcMask: '0.0.0.0',
      dstIp: VIP,
      dstMask: '255.255.255.255',
      srcPort: 0,
      dstPort: 80,
      precedence: 10,
      action: { type: 'service', serviceId: 1 },
    },
  ],
};

function syn(sport: number, extra: Partial<FrameSpec> = {}): FrameSpec {
  return { kind: 'tcp', srcMac: CLIENT.mac, src: CLIENT.ip, dst: VIP, sport, dport: 80, tcpFlags: 'S', ...extra };
}

function expectChecksumsValid(frame: Frame): void {
  expect(frame.ip?.checksumOk, 'IPv4 header checksum').toBe(true);
  if (frame.inner) expect(frame.inner.checksumOk, 'inner IPv4 header checksum').toBe(true);
  if (frame.tcp) expect(frame.tcp.checksumOk, 'TCP checksum').toBe(true);
  if (frame.icmp) expect(frame.icmp.checksumOk, 'ICMP checksum').toBe(true);
}

function byKey<T>(frames: T[], key: (f: T) => number): Map<number, T> {
  return new Map(frames.map((f) => [key(f), f]));
}

describe('pcap replay: virtual service NAT', () => {
  // Every client port gets a SYN-ACK from both servers (seq 1 and 2): only the one from the server
  // the data plane chose belongs to a flow; the other misses and is dropped.
  const sports = Array.from({ length: CONNECTIONS }, (_, i) => 40000 + i);
  const replies = sports.flatMap((dport) =>
    SERVERS.map((s, n) => ({
      kind: 'tcp',
      srcMac: s.mac,
      src: s.ip,
      dst: CLIENT.ip,
      sport: 8080,
      dport,
      tcpFlags: 'SA',
      seq: n + 1,
      payload: 'c0ffee',
    })),
  );
  let run: ReplayOutcome;

  it('sends client SYNs to VIP:80 out of port 1, DNATed to one of the servers', async () => {
    run = await replay('nat', [sports.map((p) => syn(p, { payload: '0102030405' })), replies], natService);
    expect(run.received).toBe(CONNECTIONS * 3);
    const out = byKey(run.out[1], (f) => f.tcp!.sport);
    expect(run.out[1]).toHaveLength(CONNECTIONS);
    expect([...out.keys()].sort()).toEqual(sports);
    for (const frame of run.out[1]) {
      const server = SERVERS.find((s) => s.ip === frame.ip!.dst);
      expect(server, `destination ${frame.ip!.dst}`).toBeDefined();
      expect(frame.tcp!.dport).toBe(8080);
      expect(frame.ip!.src).toBe(CLIENT.ip);
      expect(frame.ip!.ttl).toBe(63);
      expect(frame.tcp!.flags).toBe('S');
      expect(frame.tcp!.payload).toBe('0102030405');
      expect(frame.eth.dst).toBe(server!.mac);
      expect(frame.eth.src).toBe(run.macs[1]);
      expectChecksumsValid(frame);
    }
    const used = new Set(run.out[1].map((f) => f.ip!.dst));
    expect(used.size, 'both servers get connections').toBe(2);
    expect(run.stats.flows.created).toBe(CONNECTIONS);
    const perServer = run.stats.servers.map((s) => s.flows).reduce((a, b) => a + b, 0);
    expect(perServer).toBe(CONNECTIONS);
  });

  it('sends the chosen servers\' replies out of port 0 with source VIP:80, drops the others', () => {
    const chosen = new Map(run.out[1].map((f) => [f.tcp!.sport, SERVERS.findIndex((s) => s.ip === f.ip!.dst) + 1]));
    expect(run.out[0]).toHaveLength(CONNECTIONS);
    for (const frame of run.out[0]) {
      expect(frame.ip!.src).toBe(VIP);
      expect(frame.tcp!.sport).toBe(80);
      expect(frame.ip!.dst).toBe(CLIENT.ip);
      expect(frame.tcp!.seq, `reply to port ${frame.tcp!.dport} from the chosen server`).toBe(chosen.get(frame.tcp!.dport));
      expect(frame.tcp!.flags).toBe('SA');
      expect(frame.tcp!.payload).toBe('c0ffee');
      expect(frame.ip!.ttl).toBe(63);
      expect(frame.eth.dst).toBe(CLIENT.mac);
      expect(frame.eth.src).toBe(run.macs[0]);
      expectChecksumsValid(frame);
    }
    expect(new Set(run.out[0].map((f) => f.tcp!.dport)).size).toBe(CONNECTIONS);
    expect(run.stats.drops.no_match).toBe(CONNECTIONS);
  });
});

describe('pcap replay: fixed affinities with tunnel dispatch', () => {
  const tunnelEnds = [
    { ip: '10.2.0.21', mac: '02:5e:00:00:00:21', mode: 'ipip' as const, sport: 1000 },
    { ip: '10.2.0.22', mac: '02:5e:00:00:00:22', mode: 'gre' as const, sport: 1001 },
  ];
  const DST = '10.0.0.200';

  it('wraps the packet in an outer IPv4 (IP-in-IP, GRE) to the forward IP, inner packet intact', async () => {
    const frames = tunnelEnds.map((t) => syn(t.sport, { dst: DST, dport: 443, tcpFlags: 'PA', payload: 'deadbeef00112233', ttl: 30 }));
    const run = await replay('dispatch', [frames, []], {
      ports,
      neighbors: tunnelEnds.map((t) => ({ ip: t.ip, port: 1, mac: t.mac })),
      affinities: tunnelEnds.map((t) => ({
        key: { protocol: 'tcp', srcIp: CLIENT.ip, srcPort: t.sport, dstIp: DST, dstPort: 443 },
        action: { type: 'forward', dispatch: { mode: t.mode, forwardIp: t.ip } },
        ttlSeconds: 60,
      })),
    });
    expect(run.out[0]).toHaveLength(0);
    expect(run.out[1]).toHaveLength(2);
    const original = byKey(run.in[0], (f) => f.tcp!.sport);
    for (const t of tunnelEnds) {
      const frame = run.out[1].find((f) => f.tcp?.sport === t.sport);
      expect(frame, `${t.mode} frame`).toBeDefined();
      const sent = original.get(t.sport)!;
      const outer = frame!.ip!;
      const greLen = t.mode === 'gre' ? 4 : 0;
      expect(outer.proto).toBe(t.mode === 'gre' ? 47 : 4);
      expect(outer.src).toBe(PORT1_IP);
      expect(outer.dst).toBe(t.ip);
      expect(outer.ihl).toBe(5);
      expect(outer.len).toBe(20 + greLen + sent.ip!.len);
      expect(outer.ttl).toBe(64);
      if (t.mode === 'gre') expect(frame!.gre).toEqual({ proto: 0x0800, flags: '0000' });
      // inner: the original datagram, TTL one less (and its checksum fixed), every other byte equal
      const inner = frame!.inner!;
      expect(inner.ttl).toBe(29);
      const strip = (hex: string) => hex.slice(0, 16) + hex.slice(18, 20) + hex.slice(24);
      expect(strip(inner.hex)).toBe(strip(sent.ip!.hex));
      expect(frame!.eth.dst).toBe(t.mac);
      expect(frame!.eth.src).toBe(run.macs[1]);
      expectChecksumsValid(frame!);
    }
    expect(run.stats.actions.forward).toBe(2);
  });
});

describe('pcap replay: malformed frames', () => {
  const IP = 14; // IPv4 header offset in an untagged frame
  const TCP = IP + 20;
  // [what, frame, drop reason]
  const cases: [string, FrameSpec, string][] = [
    ['10 bytes', syn(2000, { truncate: 10 }), 'truncated_l2'],
    ['Ethernet header only', syn(2001, { truncate: 14 }), 'truncated_l3'],
    ['19 bytes of IPv4 header', syn(2002, { truncate: 33 }), 'truncated_l3'],
    ['total length beyond the frame (cut at 40)', syn(2003, { truncate: 40 }), 'bad_ip_total_len'],
    ['total length 256 in a 54-byte frame', syn(2004, { patch: [{ offset: IP + 2, hex: '0100' }] }), 'bad_ip_total_len'],
    ['IHL 4', syn(2005, { patch: [{ offset: IP, hex: '44' }] }), 'bad_ip_header_len'],
    ['IHL 15 beyond the datagram', syn(2006, { patch: [{ offset: IP, hex: '4f' }] }), 'bad_ip_header_len'],
    ['total length 10, below the header', syn(2007, { patch: [{ offset: IP + 2, hex: '000a' }] }), 'bad_ip_header_len'],
    ['IP version 6 in an IPv4 frame', syn(2008, { patch: [{ offset: IP, hex: '65' }] }), 'bad_ip_version'],
    ['no TCP header (total length 20)', syn(2009, { patch: [{ offset: IP + 2, hex: '0014' }], truncate: 34 }), 'truncated_l4'],
    ['6 bytes of TCP header', syn(2010, { patch: [{ offset: IP + 2, hex: '001a' }], truncate: 40 }), 'truncated_l4'],
    ['TCP data offset 4', syn(2011, { patch: [{ offset: TCP + 12, hex: '40' }] }), 'bad_l4_header'],
    ['TCP data offset 15 beyond the segment', syn(2012, { patch: [{ offset: TCP + 12, hex: 'f0' }] }), 'bad_l4_header'],
    ['IPv4 options', syn(2013, { options: '01010101' }), 'ip_options'],
    ['later fragment whose first fragment never came', syn(2015, { frag: 100 }), 'fragment'],
    ['LLDP ethertype', { kind: 'other-ethertype', srcMac: CLIENT.mac, type: 0x88cc }, 'unsupported_l2'],
    ['IPX ethertype', { kind: 'other-ethertype', srcMac: CLIENT.mac, type: 0x8137 }, 'unsupported_l2'],
  ];

  it('drops every malformed frame under its reason, forwards the valid one, exits cleanly', async () => {
    const frames = [...cases.map(([, frame]) => frame), syn(2100)];
    // replay() throws when the child process fails or crashes
    const run = await replay('malformed', [frames, []], natService);
    expect(run.received).toBe(frames.length);
    expect(run.out[0]).toHaveLength(0);
    expect(run.out[1]).toHaveLength(1);
    expect(run.out[1][0]!.tcp!.sport).toBe(2100);
    const expected: Record<string, number> = {};
    for (const [, , reason] of cases) expected[reason] = (expected[reason] ?? 0) + 1;
    const nonZero = Object.fromEntries(Object.entries(run.stats.drops).filter(([, n]) => n > 0));
    expect(nonZero).toEqual(expected);
    expect(run.punted).toHaveLength(0);
  });
});

describe('pcap replay: fragments', () => {
  it('sends a later fragment to the server its first fragment went to, addresses rewritten', async () => {
    const first = syn(3000, { flags: 'MF', id: 4242, payload: '00112233445566778899aabbccddeeff' });
    const later: FrameSpec = { kind: 'ip-payload', srcMac: CLIENT.mac, src: CLIENT.ip, dst: VIP, id: 4242, frag: 5, proto: 6, payload: 'a0a1a2a3a4a5a6a7' };
    const run = await replay('fragments', [[first, later], []], natService);
    expect(run.out[1]).toHaveLength(2);
    const [head, tail] = run.out[1];
    expect(head!.tcp!.sport).toBe(3000);
    expect(tail!.tcp).toBeUndefined();
    expect(tail!.ip).toMatchObject({ src: CLIENT.ip, dst: head!.ip!.dst, id: 4242, frag: 5 });
    expect(SERVERS.map((s) => s.ip)).toContain(head!.ip!.dst);
    expect(tail!.ip!.checksumOk).toBe(true);
    expectChecksumsValid(head!);
    expect(run.stats.drops.fragment ?? 0).toBe(0);
  });
});

describe('pcap replay: ICMP errors', () => {
  it('sends "fragmentation needed" about a reply to the connection\'s server, quote translated back', async () => {
    const client = CLIENT.ip;
    const first = syn(3100);
    // a router on the client's side could not forward the server's reply VIP:80 -> client:3100
    const error: FrameSpec = {
      kind: 'icmp-error', srcMac: CLIENT.mac, src: '10.1.0.254', dst: VIP, icmpType: 3, icmpCode: 4, mtu: 1400,
      quoted: { src: VIP, dst: client, sport: 80, dport: 3100 },
    };
    const run = await replay('icmp-error', [[first, error], []], natService);
    expect(run.out[1]).toHaveLength(2);
    const [syn1, err] = run.out[1];
    const server = syn1!.ip!.dst;
    expect(err!.icmpError).toEqual({ type: 3, code: 4, checksumOk: true });
    expect(err!.ip).toMatchObject({ src: '10.1.0.254', dst: server, checksumOk: true });
    expect(err!.inner).toMatchObject({ src: server, dst: client, checksumOk: true });
    expect(err!.tcp).toMatchObject({ sport: syn1!.tcp!.dport, dport: 3100 });
  });
});

describe('pcap replay: local replies', () => {
  it('answers ARP for the VIP and the port address, and ICMP echo to the port address', async () => {
    const run = await replay(
      'local',
      [
        [
          { kind: 'arp-request', srcMac: CLIENT.mac, senderIp: CLIENT.ip, targetIp: VIP },
          { kind: 'icmp-echo', srcMac: CLIENT.mac, src: CLIENT.ip, dst: PORT0_IP, icmpId: 0x1234, icmpSeq: 7, payload: '000102030405060708090a0b0c0d0e0f1011' },
          { kind: 'arp-request', srcMac: CLIENT.mac, senderIp: CLIENT.ip, targetIp: '10.1.0.99' },
        ],
        [],
      ],
      { ports, localAddresses: [{ port: 0, ip: VIP }] },
    );
    expect(run.out[1]).toHaveLength(0);
    expect(run.out[0]).toHaveLength(2);
    const arp = run.out[0].find((f) => f.arp)!;
    expect(arp.arp).toEqual({ op: 2, hwsrc: run.macs[0], psrc: VIP, hwdst: CLIENT.mac, pdst: CLIENT.ip });
    expect(arp.eth).toEqual({ src: run.macs[0], dst: CLIENT.mac, type: 0x0806 });
    const echo = run.out[0].find((f) => f.icmp)!;
    expect(echo.eth).toEqual({ src: run.macs[0], dst: CLIENT.mac, type: 0x0800 });
    expect(echo.ip).toMatchObject({ src: PORT0_IP, dst: CLIENT.ip, proto: 1 });
    expect(echo.icmp).toMatchObject({ type: 0, code: 0, id: 0x1234, seq: 7, payload: '000102030405060708090a0b0c0d0e0f1011' });
    expect(echo.len).toBe(run.in[0][1]!.len);
    expectChecksumsValid(echo);
    expect(run.stats.drops.arp_ignored).toBe(1);
    expect(run.stats.actions.local).toBe(2);
  });
});

describe('pcap replay: miss policy', () => {
  const unmatched: FrameSpec[] = Array.from({ length: 5 }, (_, i) => ({
    kind: 'udp',
    srcMac: CLIENT.mac,
    src: CLIENT.ip,
    dst: `10.3.0.${i + 1}`,
    sport: 5000 + i,
    dport: 53,
    payload: 'ab'.repeat(i + 1),
  }));

  it('drop: frames that match nothing are counted and dropped', async () => {
    const run = await replay('miss-drop', [unmatched, []], { ports, missPolicy: 'drop' });
    expect(run.out[0]).toHaveLength(0);
    expect(run.out[1]).toHaveLength(0);
    expect(run.stats.drops.no_match).toBe(unmatched.length);
    expect(run.punted).toHaveLength(0);
  });

  it('punt: frames that match nothing arrive through onPunt byte for byte', async () => {
    const run = await replay('miss-punt', [unmatched, []], { ports, missPolicy: 'punt' });
    expect(run.out[0]).toHaveLength(0);
    expect(run.out[1]).toHaveLength(0);
    expect(run.stats.drops.no_match).toBe(0);
    expect(run.stats.punted).toBe(unmatched.length);
    expect(run.punted.map((p) => p.port)).toEqual(unmatched.map(() => 0));
    expect(run.punted.map((p) => p.hex).sort()).toEqual(run.in[0].map((f) => f.hex).sort());
  });
});

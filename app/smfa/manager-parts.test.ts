import { describe, expect, it } from 'vitest';
import { birdConfig } from './bird-config.js';
import { FlowDecisions } from './flow-decisions.js';
import { interestReasons, InterestBit } from './interest.js';
import { frameOfIpPacket, ipPacketOfFrame, parseIpPacket } from './ip-packet.js';
import { chooseServer } from './server-choice.js';

/** IPv4 + TCP SYN 10.0.1.2:40000 -> 10.0.1.100:80, no payload. */
const SYN = Buffer.from('45000028000140004006000' + '00a0001020a0001649c4000500000000100000000500200000000' + '0000', 'hex');

describe('IP packets', () => {
  it('parses the key and flags, and survives the frame round trip', () => {
    const parsed = parseIpPacket(SYN)!;
    expect(parsed.key).toEqual({ protocol: 6, srcIp: '10.0.1.2', dstIp: '10.0.1.100', srcPort: 40000, dstPort: 80 });
    expect(parsed.tcpFlags).toBe(0x02);
    expect(parsed.payloadLength).toBe(0);
    const frame = frameOfIpPacket(SYN, Buffer.alloc(6, 0xaa));
    expect(ipPacketOfFrame(Buffer.concat([frame, Buffer.alloc(6)]))).toEqual(SYN);
  });

  it('parses IPv6 (canonical addresses, payload length from the header) and frames it with its own ethertype', () => {
    // IPv6 + TCP SYN-ACK fd00:2::11:80 -> fd00:1::2:40000 with 3 payload bytes.
    const header = Buffer.from('6000000000170640' + 'fd000002000000000000000000000011' + 'fd000001000000000000000000000002', 'hex');
    const tcp = Buffer.from('00509c40' + '00000001' + '00000000' + '5012ffff' + '00000000' + '616263', 'hex');
    const packet = Buffer.concat([header, tcp]);
    const parsed = parseIpPacket(packet)!;
    expect(parsed.key).toEqual({ protocol: 6, srcIp: 'fd00:2::11', dstIp: 'fd00:1::2', srcPort: 80, dstPort: 40000 });
    expect(parsed.tcpFlags).toBe(0x12);
    expect(parsed.payloadLength).toBe(3);
    const frame = frameOfIpPacket(packet, Buffer.alloc(6, 0xaa));
    expect(frame.readUInt16BE(12)).toBe(0x86dd);
    expect(ipPacketOfFrame(Buffer.concat([frame, Buffer.alloc(6)]))).toEqual(packet);
  });
});

describe('interest criteria (SMFA-R15)', () => {
  const reasons = interestReasons(parseIpPacket(SYN)!);
  const syn = 1 << InterestBit.syn;
  it('maps TCP flags to bits 0-5 and always sets "all packets"', () => {
    expect(reasons).toBe(syn | (1 << InterestBit.all));
  });
});

describe('server choice', () => {
  const servers = [{ ip: '10.0.2.11', port: 80 }, { ip: '10.0.2.12', port: 80 }, { ip: '10.0.2.13', port: 80 }];
  const keys = Array.from({ length: 3000 }, (_, i) => ({ protocol: 6, srcIp: '10.0.1.2', dstIp: '10.0.1.100', srcPort: 1024 + i, dstPort: 80 }));
  it('spreads flows, and removing a server moves only its own flows', () => {
    const before = keys.map((k) => chooseServer(servers, k).ip);
    for (const s of servers) expect(before.filter((ip) => ip === s.ip).length).toBeGreaterThan(800);
    const after = keys.map((k) => chooseServer(servers.slice(0, 2), k).ip);
    before.forEach((ip, i) => ip !== '10.0.2.13' && expect(after[i]).toBe(ip));
  });
});

describe('FlowDecisions (SMFA-R22, R23)', () => {
  const key = { protocol: 6, srcIp: '10.0.1.2', dstIp: '10.0.1.100', srcPort: 40000, dstPort: 80 };
  const server = { ip: '10.0.2.11', port: 80 };
  it('keeps a decision while its flow is seen, then only the sticky time after a FIN', () => {
    const decisions = new FlowDecisions(60_000, 5_000);
    decisions.record(key, server, 0);
    decisions.touch(key, 50_000);
    decisions.expire(100_000);
    expect(decisions.get(key)).toEqual(server);
    decisions.closing(key, 100_000);
    decisions.touch(key, 104_000);
    decisions.expire(104_999);
    expect(decisions.get(key)).toEqual(server);
    decisions.expire(105_000);
    expect(decisions.get(key)).toBeUndefined();
  });
});

describe('bird2 configuration', () => {
  it('exports exactly the advertised prefixes to each neighbour', () => {
    const config = birdConfig({ routerId: '10.0.9.1', localAs: 65001, neighbors: [{ address: '10.0.9.2', as: 65002 }] }, ['10.0.1.100/32']);
    expect(config).toContain('route 10.0.1.100/32 blackhole;');
    expect(config).toContain('neighbor 10.0.9.2 as 65002;');
    expect(config).toContain('export where proto = "advertised";');
  });
});

import { describe, expect, it } from 'vitest';
import { announcement, gratuitousArp, unsolicitedAdvert } from './cluster-garp.js';

/** One's-complement sum over the IPv6 pseudo header and the ICMPv6 message: 0xffff when valid. */
function icmp6ChecksumSum(frame: Buffer): number {
  const ip = frame.subarray(14);
  const length = ip.readUInt16BE(4);
  const pseudo = Buffer.alloc(8);
  pseudo.writeUInt32BE(length, 0);
  pseudo.writeUInt8(ip.readUInt8(6), 7);
  const bytes = Buffer.concat([ip.subarray(8, 40), pseudo, ip.subarray(40, 40 + length)]);
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

describe('cluster address announcements', () => {
  it('an IPv6 address: unsolicited neighbour advertisement to all nodes, override, target MAC option, valid checksum', () => {
    const frame = unsolicitedAdvert('03:65:70:00:01:64', 'fd00:1::100', '02:00:00:00:00:07');
    expect(frame.subarray(0, 6).toString('hex')).toBe('333300000001');
    expect(frame.subarray(6, 12).toString('hex')).toBe('020000000007');
    expect(frame.readUInt16BE(12)).toBe(0x86dd);
    expect([frame.readUInt8(20), frame.readUInt8(21)]).toEqual([58, 255]); // ICMPv6, hop limit 255
    expect(frame.subarray(22, 38).toString('hex')).toBe('fd000001000000000000000000000100'); // from the address
    expect(frame.subarray(38, 54).toString('hex')).toBe('ff020000000000000000000000000001');
    expect([frame.readUInt8(54), frame.readUInt8(58)]).toEqual([136, 0x20]); // advertisement, override only
    expect(frame.subarray(62, 78).toString('hex')).toBe('fd000001000000000000000000000100'); // target
    expect(frame.subarray(78, 86).toString('hex')).toBe('0201036570000164'); // target link-layer address
    expect(icmp6ChecksumSum(frame)).toBe(0xffff);
    expect(frame).toHaveLength(86);
  });

  it('picks the announcement by family and refuses the other family', () => {
    expect(announcement('02:65:70:00:01:64', '10.0.1.100')).toEqual(gratuitousArp('02:65:70:00:01:64', '10.0.1.100'));
    expect(announcement('02:65:70:00:01:64', 'fd00:1::100')).toEqual(unsolicitedAdvert('02:65:70:00:01:64', 'fd00:1::100'));
    expect(() => gratuitousArp('02:65:70:00:01:64', 'fd00:1::100')).toThrow('"fd00:1::100" is not an IPv4 address: gratuitous ARP is for IPv4');
    expect(() => unsolicitedAdvert('02:65:70:00:01:64', '10.0.1.100')).toThrow('"10.0.1.100" is not an IPv6 address: a neighbour advertisement is for IPv6');
  });
});

/* Conversions between the strings the control application uses and the binary forms of the
 * native binding. Every parser throws InvalidRuleError naming what was wrong. */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidRuleError } from './errors.js';
import type { FlowKey, Protocol } from './dataplane-types.js';

export function ipv4ToNumber(ip: string, what = 'address'): number {
  if (!isIPv4(ip)) throw new InvalidRuleError('EINVAL', `${what} "${ip}" is not an IPv4 address`);
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

export type AddressFamily = 4 | 6;

/** 4 or 6 for an address string, with a clear error for anything else. */
export function familyOf(ip: string, what = 'address'): AddressFamily {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip) && !ip.includes('%')) return 6;
  throw new InvalidRuleError('EINVAL', `${what} "${ip}" is not an IPv4 or IPv6 address`);
}

/** The 16 network-order bytes of an IPv6 address ("::" and a trailing dotted IPv4 part allowed). */
export function ipv6ToBuffer(ip: string, what = 'address'): Buffer {
  if (!isIPv6(ip) || ip.includes('%')) throw new InvalidRuleError('EINVAL', `${what} "${ip}" is not an IPv6 address`);
  // a trailing dotted IPv4 part is two groups
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const gap = text.indexOf('::');
  const words =
    gap < 0
      ? groups(text)
      : (() => {
          const before = groups(text.slice(0, gap));
          const after = groups(text.slice(gap + 2));
          return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
        })();
  const buf = Buffer.alloc(16);
  words.forEach((w, i) => buf.writeUInt16BE(w, i * 2));
  return buf;
}

/** RFC 5952 text of 16 bytes: lower case, the longest run of two or more zero groups as "::". */
export function bufferToIpv6(bytes: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => (bytes[i * 2]! << 8) | bytes[i * 2 + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((w) => w.toString(16)).join(':');
  if (bestAt < 0) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}

export function parseMac(mac: string, what = 'MAC'): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) {
    throw new InvalidRuleError('EINVAL', `${what} "${mac}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  }
  return Buffer.from(mac.split(':').map((b) => parseInt(b, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

const protocolNumbers: Record<Protocol, number> = { tcp: 6, udp: 17, icmp: 1 };
const protocolNames = new Map<number, Protocol>([
  [6, 'tcp'],
  [17, 'udp'],
  [1, 'icmp'],
]);

export function protocolNumber(protocol: Protocol | number, what = 'protocol'): number {
  const value = typeof protocol === 'number' ? protocol : protocolNumbers[protocol];
  if (value === undefined || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new InvalidRuleError('EINVAL', `${what} "${protocol}" is not tcp, udp, icmp or 0-255`);
  }
  return value;
}

export function protocolName(value: number): Protocol | number {
  return protocolNames.get(value) ?? value;
}

export function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidRuleError('EINVAL', `${what} ${port} is not a port number (0-65535)`);
  }
  return port;
}

/* Layout of struct ep_flow_key (firmware/native/src/flow_key.h): src[16] dst[16] sport dport
 * (network order) proto family pad[2]; IPv4 addresses fill the first 4 bytes of src and dst. */
export const FLOW_KEY_BYTES = 40;

export function encodeFlowKey(key: FlowKey): Buffer {
  const buf = Buffer.alloc(FLOW_KEY_BYTES);
  const family = familyOf(key.srcIp, 'key.srcIp');
  if (familyOf(key.dstIp, 'key.dstIp') !== family) {
    throw new InvalidRuleError('EINVAL', `key.srcIp "${key.srcIp}" and key.dstIp "${key.dstIp}" are of different address families`);
  }
  if (family === 4) {
    buf.writeUInt32BE(ipv4ToNumber(key.srcIp, 'key.srcIp'), 0);
    buf.writeUInt32BE(ipv4ToNumber(key.dstIp, 'key.dstIp'), 16);
  } else {
    ipv6ToBuffer(key.srcIp, 'key.srcIp').copy(buf, 0);
    ipv6ToBuffer(key.dstIp, 'key.dstIp').copy(buf, 16);
  }
  buf.writeUInt16BE(checkPort(key.srcPort, 'key.srcPort'), 32);
  buf.writeUInt16BE(checkPort(key.dstPort, 'key.dstPort'), 34);
  buf.writeUInt8(protocolNumber(key.protocol, 'key.protocol'), 36);
  buf.writeUInt8(family, 37);
  return buf;
}

export function decodeFlowKey(buf: Buffer): FlowKey {
  const v6 = buf.readUInt8(37) === 6;
  return {
    protocol: protocolName(buf.readUInt8(36)),
    srcIp: v6 ? bufferToIpv6(buf.subarray(0, 16)) : numberToIpv4(buf.readUInt32BE(0)),
    dstIp: v6 ? bufferToIpv6(buf.subarray(16, 32)) : numberToIpv4(buf.readUInt32BE(16)),
    srcPort: buf.readUInt16BE(32),
    dstPort: buf.readUInt16BE(34),
  };
}

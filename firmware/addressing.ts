/* Conversions between the strings the control application uses and the binary forms of the
 * native binding. Every parser throws InvalidRuleError naming what was wrong. */
import { isIPv4 } from 'node:net';
import { InvalidRuleError } from './errors.js';
import type { FlowKey, Protocol } from './dataplane-types.js';

export function ipv4ToNumber(ip: string, what = 'address'): number {
  if (!isIPv4(ip)) throw new InvalidRuleError('EINVAL', `${what} "${ip}" is not an IPv4 address`);
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
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
 * (network order) proto family pad[2]. IPv4 only for now; IPv6 keys come with IPv6 services. */
export const FLOW_KEY_BYTES = 40;

export function encodeFlowKey(key: FlowKey): Buffer {
  const buf = Buffer.alloc(FLOW_KEY_BYTES);
  buf.writeUInt32BE(ipv4ToNumber(key.srcIp, 'key.srcIp'), 0);
  buf.writeUInt32BE(ipv4ToNumber(key.dstIp, 'key.dstIp'), 16);
  buf.writeUInt16BE(checkPort(key.srcPort, 'key.srcPort'), 32);
  buf.writeUInt16BE(checkPort(key.dstPort, 'key.dstPort'), 34);
  buf.writeUInt8(protocolNumber(key.protocol, 'key.protocol'), 36);
  buf.writeUInt8(4, 37);
  return buf;
}

export function decodeFlowKey(buf: Buffer): FlowKey {
  return {
    protocol: protocolName(buf.readUInt8(36)),
    srcIp: numberToIpv4(buf.readUInt32BE(0)),
    dstIp: numberToIpv4(buf.readUInt32BE(16)),
    srcPort: buf.readUInt16BE(32),
    dstPort: buf.readUInt16BE(34),
  };
}

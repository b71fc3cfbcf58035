/* The IP packets the forwarding agent carries between the data plane (Ethernet frames) and the
 * managers (IP packet segments): frame <-> packet, and the affinity key of a packet. IPv4 and
 * IPv6 (without extension headers before the transport header, as the data plane's key has it). */
import { addressFromBytes } from './ip-address.js';
import type { AffinityKey } from './types.js';

const ETHERNET_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const VLAN_TAG = 4;
const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;
export const PROTOCOL_TCP = 6;
export const PROTOCOL_UDP = 17;
const IPV6_FRAGMENT_HEADER = 44;

/** The IP packet inside an Ethernet frame (one 802.1Q tag allowed), or undefined for anything else. */
export function ipPacketOfFrame(frame: Buffer): Buffer | undefined {
  let offset = 12;
  let ethertype = frame.length >= ETHERNET_HEADER ? frame.readUInt16BE(offset) : 0;
  if (ethertype === ETHERTYPE_VLAN && frame.length >= ETHERNET_HEADER + VLAN_TAG) {
    offset += VLAN_TAG;
    ethertype = frame.readUInt16BE(offset);
  }
  const packet = frame.subarray(offset + 2);
  // Ethernet padding of short frames is not part of the packet.
  if (ethertype === ETHERTYPE_IPV4 && packet.length >= IPV4_MIN_HEADER && packet[0]! >> 4 === 4) {
    return packet.subarray(0, Math.min(packet.length, packet.readUInt16BE(2)));
  }
  if (ethertype === ETHERTYPE_IPV6 && packet.length >= IPV6_HEADER && packet[0]! >> 4 === 6) {
    return packet.subarray(0, Math.min(packet.length, IPV6_HEADER + packet.readUInt16BE(4)));
  }
  return undefined;
}

/** An Ethernet frame around an IP packet, addressed to `dstMac` (the port that will process it). */
export function frameOfIpPacket(packet: Buffer, dstMac: Buffer): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER + packet.length);
  dstMac.copy(frame, 0);
  frame.writeUInt16BE(packet[0]! >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4, 12);
  packet.copy(frame, ETHERNET_HEADER);
  return frame;
}

export interface ParsedPacket {
  key: AffinityKey;
  /** TCP flags byte (0 for other protocols). */
  tcpFlags: number;
  /** Transport payload bytes. */
  payloadLength: number;
  fragment: boolean;
}

/** Ports, flags and payload of a TCP or UDP header at the start of `transport`. */
function transportFields(key: AffinityKey, transport: Buffer, parsed: ParsedPacket): void {
  if ((key.protocol !== PROTOCOL_TCP && key.protocol !== PROTOCOL_UDP) || transport.length < 8) return;
  key.srcPort = transport.readUInt16BE(0);
  key.dstPort = transport.readUInt16BE(2);
  if (key.protocol === PROTOCOL_UDP) parsed.payloadLength -= 8;
  if (key.protocol === PROTOCOL_TCP && transport.length >= 20) {
    parsed.tcpFlags = transport[13]!;
    parsed.payloadLength -= (transport[12]! >> 4) * 4;
  }
}

function parseIpv4(packet: Buffer): ParsedPacket | undefined {
  if (packet.length < IPV4_MIN_HEADER) return undefined;
  const headerLength = (packet[0]! & 0x0f) * 4;
  const totalLength = Math.min(packet.readUInt16BE(2), packet.length);
  const fragmentField = packet.readUInt16BE(6);
  const firstFragment = (fragmentField & 0x1fff) === 0;
  const key: AffinityKey = {
    protocol: packet[9]!, srcIp: addressFromBytes(packet.subarray(12, 16)), dstIp: addressFromBytes(packet.subarray(16, 20)), srcPort: 0, dstPort: 0,
  };
  const parsed: ParsedPacket = { key, tcpFlags: 0, payloadLength: totalLength - headerLength, fragment: (fragmentField & 0x3fff) !== 0 };
  if (firstFragment) transportFields(key, packet.subarray(headerLength, totalLength), parsed);
  parsed.payloadLength = Math.max(0, parsed.payloadLength);
  return parsed;
}

function parseIpv6(packet: Buffer): ParsedPacket | undefined {
  if (packet.length < IPV6_HEADER) return undefined;
  const end = Math.min(packet.length, IPV6_HEADER + packet.readUInt16BE(4));
  const key: AffinityKey = {
    protocol: packet[6]!, srcIp: addressFromBytes(packet.subarray(8, 24)), dstIp: addressFromBytes(packet.subarray(24, 40)), srcPort: 0, dstPort: 0,
  };
  const parsed: ParsedPacket = { key, tcpFlags: 0, payloadLength: end - IPV6_HEADER, fragment: key.protocol === IPV6_FRAGMENT_HEADER };
  transportFields(key, packet.subarray(IPV6_HEADER, end), parsed);
  parsed.payloadLength = Math.max(0, parsed.payloadLength);
  return parsed;
}

/** Key and flags of an IP packet; ports are 0 for non-TCP/UDP and for non-first fragments. */
export function parseIpPacket(packet: Buffer): ParsedPacket | undefined {
  const version = packet.length > 0 ? packet[0]! >> 4 : 0;
  if (version === 4) return parseIpv4(packet);
  if (version === 6) return parseIpv6(packet);
  return undefined;
}

export function reverseKey(key: AffinityKey): AffinityKey {
  return { protocol: key.protocol, srcIp: key.dstIp, dstIp: key.srcIp, srcPort: key.dstPort, dstPort: key.srcPort };
}

export function keyText(key: AffinityKey): string {
  return `${key.protocol}/${key.srcIp}:${key.srcPort}>${key.dstIp}:${key.dstPort}`;
}

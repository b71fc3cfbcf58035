/* The IPv4 packets the forwarding agent carries between the data plane (Ethernet frames) and the
 * managers (IP packet segments): frame <-> packet, and the affinity key of a packet. */
import type { AffinityKey } from './types.js';

const ETHERNET_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const VLAN_TAG = 4;
const IPV4_MIN_HEADER = 20;
export const PROTOCOL_TCP = 6;
export const PROTOCOL_UDP = 17;

/** The IPv4 packet inside an Ethernet frame (one 802.1Q tag allowed), or undefined for anything else. */
export function ipPacketOfFrame(frame: Buffer): Buffer | undefined {
  let offset = 12;
  let ethertype = frame.length >= ETHERNET_HEADER ? frame.readUInt16BE(offset) : 0;
  if (ethertype === ETHERTYPE_VLAN && frame.length >= ETHERNET_HEADER + VLAN_TAG) {
    offset += VLAN_TAG;
    ethertype = frame.readUInt16BE(offset);
  }
  if (ethertype !== ETHERTYPE_IPV4) return undefined;
  const packet = frame.subarray(offset + 2);
  if (packet.length < IPV4_MIN_HEADER || packet[0]! >> 4 !== 4) return undefined;
  // Ethernet padding of short frames is not part of the packet.
  return packet.subarray(0, Math.min(packet.length, packet.readUInt16BE(2)));
}

/** An Ethernet frame around an IPv4 packet, addressed to `dstMac` (the port that will process it). */
export function frameOfIpPacket(packet: Buffer, dstMac: Buffer): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER + packet.length);
  dstMac.copy(frame, 0);
  frame.writeUInt16BE(ETHERTYPE_IPV4, 12);
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

function ipv4Text(packet: Buffer, offset: number): string {
  return `${packet[offset]}.${packet[offset + 1]}.${packet[offset + 2]}.${packet[offset + 3]}`;
}

/** Key and flags of an IPv4 packet; ports are 0 for non-TCP/UDP and for non-first fragments. */
export function parseIpPacket(packet: Buffer): ParsedPacket | undefined {
  if (packet.length < IPV4_MIN_HEADER || packet[0]! >> 4 !== 4) return undefined;
  const headerLength = (packet[0]! & 0x0f) * 4;
  const totalLength = Math.min(packet.readUInt16BE(2), packet.length);
  const fragmentField = packet.readUInt16BE(6);
  const fragment = (fragmentField & 0x3fff) !== 0;
  const firstFragment = (fragmentField & 0x1fff) === 0;
  const protocol = packet[9]!;
  const key: AffinityKey = { protocol, srcIp: ipv4Text(packet, 12), dstIp: ipv4Text(packet, 16), srcPort: 0, dstPort: 0 };
  let tcpFlags = 0;
  let payloadLength = totalLength - headerLength;
  const transport = packet.subarray(headerLength, totalLength);
  if (firstFragment && (protocol === PROTOCOL_TCP || protocol === PROTOCOL_UDP) && transport.length >= 8) {
    key.srcPort = transport.readUInt16BE(0);
    key.dstPort = transport.readUInt16BE(2);
    if (protocol === PROTOCOL_UDP) payloadLength -= 8;
    if (protocol === PROTOCOL_TCP && transport.length >= 20) {
      tcpFlags = transport[13]!;
      payloadLength -= (transport[12]! >> 4) * 4;
    }
  }
  return { key, tcpFlags, payloadLength: Math.max(0, payloadLength), fragment };
}

export function reverseKey(key: AffinityKey): AffinityKey {
  return { protocol: key.protocol, srcIp: key.dstIp, dstIp: key.srcIp, srcPort: key.dstPort, dstPort: key.srcPort };
}

export function keyText(key: AffinityKey): string {
  return `${key.protocol}/${key.srcIp}:${key.srcPort}>${key.dstIp}:${key.dstPort}`;
}

/* Announcements of the cluster addresses (cluster.md CL-R2): a new master, and a master that won a
 * split-brain tie-break, announces that the cluster addresses are at the cluster MAC, so the
 * segment's switches and neighbours (re)learn where they live. IPv4: gratuitous ARP, an RFC 5227
 * announcement (a broadcast ARP request whose sender and target address are both the announced
 * one). IPv6: an unsolicited neighbour advertisement (RFC 4861 7.2.6) to all nodes with the
 * override flag, which makes a neighbour holding an entry for the address take the new MAC. */
import ipaddr from 'ipaddr.js';

export interface ClusterAddresses {
  /** Data plane port the announcement leaves by. */
  port: number;
  /** The cluster MAC the addresses answer at: shared by every member (unicast- and multicast-MAC
   * delivery); absent with forwarding delivery (the master's port MAC). */
  mac?: string;
  addresses: string[];
}

const ETH_MIN_FRAME = 60;

export function parseMac(mac: string): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new Error(`"${mac}" is not a MAC address`);
  return Buffer.from(mac.split(':').map((part) => Number.parseInt(part, 16)));
}

/** `from`: the frame's Ethernet source (default `mac`; a multicast MAC cannot be one). */
export function gratuitousArp(mac: string, address: string, from = mac): Buffer {
  if (!ipaddr.IPv4.isValidFourPartDecimal(address)) throw new Error(`"${address}" is not an IPv4 address: gratuitous ARP is for IPv4`);
  const sender = parseMac(mac);
  const ip = Buffer.from(ipaddr.IPv4.parse(address).toByteArray());
  const frame = Buffer.alloc(ETH_MIN_FRAME);
  frame.fill(0xff, 0, 6); // broadcast
  parseMac(from).copy(frame, 6);
  frame.writeUInt16BE(0x0806, 12);
  frame.writeUInt16BE(1, 14); // Ethernet
  frame.writeUInt16BE(0x0800, 16); // IPv4
  frame.writeUInt8(6, 18);
  frame.writeUInt8(4, 19);
  frame.writeUInt16BE(1, 20); // request
  sender.copy(frame, 22);
  ip.copy(frame, 28);
  // target hardware address stays zero; target protocol address = the announced address
  ip.copy(frame, 38);
  return frame;
}

const ICMPV6 = 58;
const ALL_NODES = Buffer.from(ipaddr.IPv6.parse('ff02::1').toByteArray());
const NA_OVERRIDE = 0x20;

/** One's-complement sum of 16-bit big-endian words (even lengths). */
function sum16(bytes: Buffer, sum = 0): number {
  for (let i = 0; i < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  return sum;
}

/** Unsolicited neighbour advertisement of `address` at `mac` (target link-layer option), from the
 * address itself to all nodes; `from`: the frame's Ethernet source (default `mac`). */
export function unsolicitedAdvert(mac: string, address: string, from = mac): Buffer {
  if (!ipaddr.IPv6.isValid(address)) throw new Error(`"${address}" is not an IPv6 address: a neighbour advertisement is for IPv6`);
  const target = Buffer.from(ipaddr.IPv6.parse(address).toByteArray());
  const icmp = Buffer.alloc(32);
  icmp.writeUInt8(136, 0); // neighbour advertisement
  icmp.writeUInt8(NA_OVERRIDE, 4); // not solicited, not a router
  target.copy(icmp, 8);
  icmp.writeUInt8(2, 24); // target link-layer address option, 8 bytes
  icmp.writeUInt8(1, 25);
  parseMac(mac).copy(icmp, 26);
  let sum = sum16(icmp, sum16(ALL_NODES, sum16(target)) + icmp.length + ICMPV6);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  icmp.writeUInt16BE(~sum & 0xffff, 2);
  const frame = Buffer.alloc(14 + 40 + icmp.length);
  Buffer.from([0x33, 0x33, 0, 0, 0, 1]).copy(frame, 0);
  parseMac(from).copy(frame, 6);
  frame.writeUInt16BE(0x86dd, 12);
  frame.writeUInt32BE(0x60000000, 14);
  frame.writeUInt16BE(icmp.length, 18);
  frame.writeUInt8(ICMPV6, 20);
  frame.writeUInt8(255, 21); // hop limit: neighbour discovery is refused from beyond the link
  target.copy(frame, 22);
  ALL_NODES.copy(frame, 38);
  icmp.copy(frame, 54);
  return frame;
}

/** The announcement of a cluster address of either family. */
export function announcement(mac: string, address: string, from = mac): Buffer {
  return address.includes(':') ? unsolicitedAdvert(mac, address, from) : gratuitousArp(mac, address, from);
}

/* Gratuitous ARP for the cluster addresses (cluster.md CL-R2): a new master, and a master that won
 * a split-brain tie-break, announces that the cluster addresses are at the cluster MAC, so the
 * segment's switches and neighbours (re)learn where they live. RFC 5227 announcement: a broadcast
 * ARP request whose sender and target address are both the announced one. */
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

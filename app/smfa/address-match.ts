/* Wildcard matching (SMFA-R3): (mask & rule) == (mask & packet) per address, port 0 and protocol 0 match any. */
import { isIPv4 } from 'node:net';
import type { AffinityKey, WildcardAffinity } from './types.js';

export function ipv4Number(ip: string): number {
  if (!isIPv4(ip)) throw new RangeError(`"${ip}" is not an IPv4 address`);
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function masked(ip: string, mask: string): number {
  return (ipv4Number(ip) & ipv4Number(mask)) >>> 0;
}

export function wildcardMatches(w: WildcardAffinity, key: AffinityKey): boolean {
  if (!isIPv4(key.srcIp) || !isIPv4(w.srcIp)) return false;
  return (
    (w.protocol === 0 || w.protocol === key.protocol) &&
    (w.srcPort === 0 || w.srcPort === key.srcPort) &&
    (w.dstPort === 0 || w.dstPort === key.dstPort) &&
    masked(w.srcIp, w.srcMask) === masked(key.srcIp, w.srcMask) &&
    masked(w.dstIp, w.dstMask) === masked(key.dstIp, w.dstMask)
  );
}

/** Two wildcards with the same filter are "identical" (SMFA-R7): the newer replaces the stored one. */
export function filterText(w: WildcardAffinity): string {
  return [w.protocol, w.srcIp, w.srcMask, w.srcPort, w.dstIp, w.dstMask, w.dstPort].join('|');
}

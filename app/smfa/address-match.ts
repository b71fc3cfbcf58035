/* Wildcard matching (SMFA-R3): (mask & rule) == (mask & packet) per address, port 0 and protocol 0
 * match any. IPv4 and IPv6 alike: a rule matches only keys of its own family. */
import { isIP } from 'node:net';
import { addressToBytes, type AddressFamily } from './ip-address.js';
import type { AffinityKey, WildcardAffinity } from './types.js';

function family(ip: string): AddressFamily | undefined {
  const f = isIP(ip);
  return f === 4 || f === 6 ? f : undefined;
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function maskedEqual(ruleIp: string, mask: string, ip: string, f: AddressFamily): boolean {
  if (f === 4) {
    // Once per fixed update and wildcard of its manager: arithmetic, not address objects.
    const m = ipv4Number(mask);
    return ((ipv4Number(ruleIp) & m) >>> 0) === ((ipv4Number(ip) & m) >>> 0);
  }
  const [rule, m, value] = [ruleIp, mask, ip].map((a) => addressToBytes(a, f, 'address'));
  return rule!.every((byte, i) => (byte & m![i]!) === (value![i]! & m![i]!));
}

export function wildcardMatches(w: WildcardAffinity, key: AffinityKey): boolean {
  const f = family(key.srcIp);
  if (f === undefined || family(w.srcIp) !== f || family(key.dstIp) !== f) return false;
  return (
    (w.protocol === 0 || w.protocol === key.protocol) &&
    (w.srcPort === 0 || w.srcPort === key.srcPort) &&
    (w.dstPort === 0 || w.dstPort === key.dstPort) &&
    maskedEqual(w.srcIp, w.srcMask, key.srcIp, f) &&
    maskedEqual(w.dstIp, w.dstMask, key.dstIp, f)
  );
}

/** Two wildcards with the same filter are "identical" (SMFA-R7): the newer replaces the stored one. */
export function filterText(w: WildcardAffinity): string {
  return [w.protocol, w.srcIp, w.srcMask, w.srcPort, w.dstIp, w.dstMask, w.dstPort].join('|');
}

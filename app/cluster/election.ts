/* The mastership tie-break (CL-R6): more members wins; equal counts -> the lower address wins. */
import ipaddr from 'ipaddr.js';

export interface Candidate {
  memberCount: number;
  address: string;
}

function addressKey(address: string): string {
  const parsed = ipaddr.parse(address);
  const v6 = parsed.kind() === 'ipv4' ? (parsed as ipaddr.IPv4).toIPv4MappedAddress() : parsed;
  return Buffer.from(v6.toByteArray()).toString('hex');
}

/** True when `a` should be master rather than `b`. */
export function outranks(a: Candidate, b: Candidate): boolean {
  if (a.memberCount !== b.memberCount) return a.memberCount > b.memberCount;
  return addressKey(a.address) < addressKey(b.address);
}

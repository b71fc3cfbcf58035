import ipaddr from 'ipaddr.js';
import { EncodeError } from './errors.js';
import type { IpAddress } from './types.js';

export type AddressFamily = 4 | 6;

/** Bytes an address of this family occupies on the wire. */
export function addressLength(family: AddressFamily): number {
  return family === 4 ? 4 : 16;
}

function parse(ip: IpAddress, field: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return ipaddr.IPv4.parse(ip);
  // Zone ids are link-local host state, meaningless to a remote receiver.
  if (!ip.includes('%') && ipaddr.IPv6.isValid(ip)) return ipaddr.IPv6.parse(ip);
  throw new EncodeError(field, `"${ip}" is not an IPv4 dotted quad or an IPv6 address`);
}

export function familyOf(ip: IpAddress, field: string): AddressFamily {
  return parse(ip, field).kind() === 'ipv4' ? 4 : 6;
}

export function addressToBytes(ip: IpAddress, family: AddressFamily, field: string): Buffer {
  const parsed = parse(ip, field);
  if ((parsed.kind() === 'ipv4' ? 4 : 6) !== family) {
    throw new EncodeError(field, `"${ip}" is not IPv${family} like the other addresses of its segment`);
  }
  return Buffer.from(parsed.toByteArray());
}

export function addressFromBytes(bytes: Uint8Array): IpAddress {
  const parsed = ipaddr.fromByteArray(Array.from(bytes));
  return parsed.kind() === 'ipv4' ? parsed.toString() : (parsed as ipaddr.IPv6).toRFC5952String();
}

/* The binary envelope of every cluster datagram (docs/cluster.md "Datagram envelope"): magic,
 * version, type, flags, sender unit id + address, sequence, a JSON body and, on authenticated
 * messages, an HMAC-SHA-256 over everything before it, keyed with the cluster key. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import ipaddr from 'ipaddr.js';

export const ENVELOPE_MAGIC = Buffer.from('EPCL', 'ascii');
export const ENVELOPE_VERSION = 1;
export const MAC_LENGTH = 32;
export const MAX_DATAGRAM = 16_384;
const FIXED_HEADER = 32;
const FLAG_AUTHENTICATED = 0x01;
const UNIT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface Envelope {
  type: number;
  authenticated: boolean;
  sequence: bigint;
  senderId: string;
  senderAddress: string;
  body: Buffer;
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

function addressBytes(address: string): Buffer {
  if (!ipaddr.isValid(address)) throw new EnvelopeError(`sender address '${address}' is not an IP address`);
  const parsed = ipaddr.parse(address);
  const v6 = parsed.kind() === 'ipv4' ? (parsed as ipaddr.IPv4).toIPv4MappedAddress() : parsed;
  return Buffer.from(v6.toByteArray());
}

/** IPv4-mapped addresses come back in dotted form, everything else in RFC 5952 text. */
function addressText(bytes: Buffer): string {
  return ipaddr.process(ipaddr.fromByteArray([...bytes]).toString()).toString();
}

export function computeMac(key: Buffer, covered: Buffer): Buffer {
  return createHmac('sha256', key).update(covered).digest();
}

/** Encodes an envelope; `key` is required exactly when the message is authenticated. */
export function encodeEnvelope(envelope: Envelope, key?: Buffer): Buffer {
  if (!UNIT_ID.test(envelope.senderId)) throw new EnvelopeError(`sender unit id '${envelope.senderId}' is not a DNS label`);
  if (envelope.authenticated !== (key !== undefined)) {
    throw new EnvelopeError(envelope.authenticated ? 'an authenticated message needs the cluster key' : 'an unauthenticated message takes no key');
  }
  const id = Buffer.from(envelope.senderId, 'ascii');
  const header = Buffer.alloc(FIXED_HEADER);
  ENVELOPE_MAGIC.copy(header, 0);
  header.writeUInt8(ENVELOPE_VERSION, 4);
  header.writeUInt8(envelope.type, 5);
  header.writeUInt8(envelope.authenticated ? FLAG_AUTHENTICATED : 0, 6);
  header.writeUInt8(id.length, 7);
  header.writeBigUInt64BE(envelope.sequence, 8);
  addressBytes(envelope.senderAddress).copy(header, 16);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(envelope.body.length);
  const covered = Buffer.concat([header, id, length, envelope.body]);
  const datagram = key ? Buffer.concat([covered, computeMac(key, covered)]) : covered;
  if (datagram.length > MAX_DATAGRAM) throw new EnvelopeError(`datagram of ${datagram.length} bytes exceeds ${MAX_DATAGRAM}`);
  return datagram;
}

export interface DecodedEnvelope extends Envelope {
  /** The bytes the MAC covers and the MAC itself, checked later with the cluster key. */
  covered: Buffer;
  mac?: Buffer;
}

/** Parses the layout only (no key needed); throws EnvelopeError with the reason. */
export function decodeEnvelope(datagram: Buffer): DecodedEnvelope {
  if (datagram.length < FIXED_HEADER + 2) throw new EnvelopeError(`truncated: ${datagram.length} bytes, the header needs ${FIXED_HEADER + 2}`);
  if (!datagram.subarray(0, 4).equals(ENVELOPE_MAGIC)) throw new EnvelopeError('bad magic: not a cluster message');
  const version = datagram.readUInt8(4);
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported version ${version} (expected ${ENVELOPE_VERSION})`);
  const flags = datagram.readUInt8(6);
  if ((flags & ~FLAG_AUTHENTICATED) !== 0) throw new EnvelopeError(`unknown flags 0x${flags.toString(16)}`);
  const idLength = datagram.readUInt8(7);
  const bodyAt = FIXED_HEADER + idLength + 2;
  if (datagram.length < bodyAt) throw new EnvelopeError(`truncated: unit id of ${idLength} bytes does not fit`);
  const senderId = datagram.subarray(FIXED_HEADER, FIXED_HEADER + idLength).toString('latin1');
  if (!UNIT_ID.test(senderId)) throw new EnvelopeError('sender unit id is not a DNS label');
  const bodyLength = datagram.readUInt16BE(FIXED_HEADER + idLength);
  const authenticated = (flags & FLAG_AUTHENTICATED) !== 0;
  const expected = bodyAt + bodyLength + (authenticated ? MAC_LENGTH : 0);
  if (datagram.length !== expected) {
    throw new EnvelopeError(`length mismatch: ${datagram.length} bytes, header and body length say ${expected}`);
  }
  const covered = datagram.subarray(0, bodyAt + bodyLength);
  return {
    type: datagram.readUInt8(5),
    authenticated,
    sequence: datagram.readBigUInt64BE(8),
    senderId,
    senderAddress: addressText(datagram.subarray(16, 32)),
    body: datagram.subarray(bodyAt, bodyAt + bodyLength),
    covered,
    ...(authenticated ? { mac: datagram.subarray(covered.length) } : {}),
  };
}

export function macMatches(key: Buffer, envelope: DecodedEnvelope): boolean {
  return envelope.mac !== undefined && timingSafeEqual(computeMac(key, envelope.covered), envelope.mac);
}

import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { EncodeError } from './errors.js';
import { familyOf, type AddressFamily } from './ip-address.js';
import type { AffinityKey, Segment, SegmentValue } from './types.js';
import {
  DispatchMethodCode,
  HMAC_SHA256_LENGTH,
  REQUIRED_FLAG,
  SecurityTypeCode,
  invert,
  type DispatchMethod,
} from './wire-constants.js';

const INFORMATION_FLAG = 0x01;
const ADVERTISE_HAS_MASK = 0x01;
const MAX_HOST_NAME_BYTES = 255;
const dispatchByCode = invert(DispatchMethodCode);
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface BodyCodec<K extends Segment['kind']> {
  encode(value: SegmentValue<K>, name: string): Buffer;
  decode(r: ByteReader, name: string): SegmentValue<K>;
}

/** All addresses of one segment share a family; the encoder refuses a mix instead of guessing. */
function commonFamily(name: string, addresses: Record<string, string>): AddressFamily {
  const entries = Object.entries(addresses);
  const [firstField, firstIp] = entries[0]!;
  const family = familyOf(firstIp, `${name}.${firstField}`);
  for (const [field, ip] of entries) {
    if (familyOf(ip, `${name}.${field}`) !== family) {
      throw new EncodeError(`${name}.${field}`, `"${ip}" is not IPv${family} like ${name}.${firstField}`);
    }
  }
  return family;
}

function readDispatch(r: ByteReader, name: string): DispatchMethod {
  const at = r.offset;
  const code = r.u8(`${name}.dispatch`);
  const method = dispatchByCode.get(code);
  if (method === undefined) throw r.failure(`${name}.dispatch`, `method ${code} is not one of 0..4`, at);
  return method;
}

/** Leading 8 bytes shared by the three affinity segments: family, protocol, dispatch, flags, ports. */
function writeAffinityHead(w: ByteWriter, family: AddressFamily, key: Omit<AffinityKey, 'srcIp' | 'dstIp'>, dispatch: DispatchMethod, information: boolean, name: string): void {
  const dispatchCode = DispatchMethodCode[dispatch];
  if (dispatchCode === undefined) throw new EncodeError(`${name}.dispatch`, `"${String(dispatch)}" is not a dispatch method`);
  w.u8(family, `${name}.family`)
    .u8(key.protocol, `${name}.protocol`)
    .u8(dispatchCode, `${name}.dispatch`)
    .u8(information ? INFORMATION_FLAG : 0, `${name}.flags`)
    .u16(key.srcPort, `${name}.srcPort`)
    .u16(key.dstPort, `${name}.dstPort`);
}

function readAffinityHead(r: ByteReader, name: string) {
  const family = r.family(`${name}.family`);
  const protocol = r.u8(`${name}.protocol`);
  const dispatch = readDispatch(r, name);
  const information = (r.u8(`${name}.flags`) & INFORMATION_FLAG) !== 0;
  const srcPort = r.u16(`${name}.srcPort`);
  const dstPort = r.u16(`${name}.dstPort`);
  return { family, protocol, dispatch, information, srcPort, dstPort };
}

/** Interest data is the peer's own state, echoed back byte for byte; its content is not ours to check. */
const opaque = {
  encode: (value: Buffer) => Buffer.from(value),
  decode: (r: ByteReader) => r.rest(),
};

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const codecs: { [K in Segment['kind']]: BodyCodec<K> } = {
  security: {
    encode(v, name) {
      if (v.mac.length !== HMAC_SHA256_LENGTH) throw new EncodeError(`${name}.mac`, `must be ${HMAC_SHA256_LENGTH} bytes, got ${v.mac.length}`);
      return new ByteWriter()
        .u8(SecurityTypeCode['hmac-sha256'], `${name}.securityType`)
        .zeros(1)
        .u16(v.keyId, `${name}.keyId`)
        .u32(v.senderId, `${name}.senderId`)
        .u64(v.sequence, `${name}.sequence`)
        .bytes(v.mac)
        .finish();
    },
    decode(r, name) {
      const at = r.offset;
      const type = r.u8(`${name}.securityType`);
      if (type !== SecurityTypeCode['hmac-sha256']) throw r.failure(`${name}.securityType`, `${type} is not 1 (HMAC-SHA-256)`, at);
      r.skip(1, `${name}.reserved`);
      const keyId = r.u16(`${name}.keyId`);
      const senderId = r.u32(`${name}.senderId`);
      const sequence = r.u64(`${name}.sequence`);
      const mac = r.bytes(HMAC_SHA256_LENGTH, `${name}.mac`);
      r.end(name);
      return { keyId, senderId, sequence, mac };
    },
  },
  'wildcard-affinity': {
    encode(v, name) {
      const family = commonFamily(name, { srcIp: v.srcIp, srcMask: v.srcMask, dstIp: v.dstIp, dstMask: v.dstMask });
      const w = new ByteWriter();
      writeAffinityHead(w, family, v, v.dispatch, v.information, name);
      return w
        .u32(v.ttlSeconds, `${name}.ttlSeconds`)
        .address(v.srcIp, family, `${name}.srcIp`)
        .address(v.srcMask, family, `${name}.srcMask`)
        .address(v.dstIp, family, `${name}.dstIp`)
        .address(v.dstMask, family, `${name}.dstMask`)
        .finish();
    },
    decode(r, name) {
      const { family, ...head } = readAffinityHead(r, name);
      const ttlSeconds = r.u32(`${name}.ttlSeconds`);
      const srcIp = r.address(family, `${name}.srcIp`);
      const srcMask = r.address(family, `${name}.srcMask`);
      const dstIp = r.address(family, `${name}.dstIp`);
      const dstMask = r.address(family, `${name}.dstMask`);
      r.end(name);
      return {
        protocol: head.protocol, srcIp, srcMask, dstIp, dstMask, srcPort: head.srcPort, dstPort: head.dstPort,
        dispatch: head.dispatch, information: head.information, ttlSeconds,
      };
    },
  },
  'fixed-affinity': {
    encode(v, name) {
      const family = commonFamily(name, { srcIp: v.key.srcIp, dstIp: v.key.dstIp });
      const forwardFamily = familyOf(v.forwardIp, `${name}.forwardIp`);
      const w = new ByteWriter();
      writeAffinityHead(w, family, v.key, v.dispatch, v.information, name);
      return w
        .u32(v.ttlSeconds, `${name}.ttlSeconds`)
        .u8(forwardFamily, `${name}.forwardFamily`)
        .zeros(3)
        .address(v.key.srcIp, family, `${name}.srcIp`)
        .address(v.key.dstIp, family, `${name}.dstIp`)
        .address(v.forwardIp, forwardFamily, `${name}.forwardIp`)
        .finish();
    },
    decode(r, name) {
      const { family, protocol, dispatch, information, srcPort, dstPort } = readAffinityHead(r, name);
      const ttlSeconds = r.u32(`${name}.ttlSeconds`);
      const forwardFamily = r.family(`${name}.forwardFamily`);
      r.skip(3, `${name}.reserved`);
      const srcIp = r.address(family, `${name}.srcIp`);
      const dstIp = r.address(family, `${name}.dstIp`);
      const forwardIp = r.address(forwardFamily, `${name}.forwardIp`);
      r.end(name);
      return { key: { protocol, srcIp, dstIp, srcPort, dstPort }, dispatch, information, forwardIp, ttlSeconds };
    },
  },
  'affinity-identifier': {
    encode(v, name) {
      const family = commonFamily(name, { srcIp: v.key.srcIp, dstIp: v.key.dstIp });
      const w = new ByteWriter();
      writeAffinityHead(w, family, v.key, v.dispatch, v.information, name);
      return w
        .u16(v.interestReasons, `${name}.interestReasons`)
        .zeros(2)
        .address(v.key.srcIp, family, `${name}.srcIp`)
        .address(v.key.dstIp, family, `${name}.dstIp`)
        .finish();
    },
    decode(r, name) {
      const { family, protocol, dispatch, information, srcPort, dstPort } = readAffinityHead(r, name);
      const interestReasons = r.u16(`${name}.interestReasons`);
      r.skip(2, `${name}.reserved`);
      const srcIp = r.address(family, `${name}.srcIp`);
      const dstIp = r.address(family, `${name}.dstIp`);
      r.end(name);
      return { key: { protocol, srcIp, dstIp, srcPort, dstPort }, dispatch, information, interestReasons };
    },
  },
  'service-precedence': {
    encode(v, name) {
      if (v.searchOrder !== 'lower-first' && v.searchOrder !== 'higher-first') {
        throw new EncodeError(`${name}.searchOrder`, `"${String(v.searchOrder)}" is neither lower-first nor higher-first`);
      }
      return new ByteWriter()
        .u8(v.searchOrder === 'lower-first' ? 0 : 1, `${name}.searchOrder`)
        .zeros(3)
        .u32(v.value, `${name}.value`)
        .finish();
    },
    decode(r, name) {
      const at = r.offset;
      const order = r.u8(`${name}.searchOrder`);
      if (order > 1) throw r.failure(`${name}.searchOrder`, `${order} is neither 0 (lower-first) nor 1 (higher-first)`, at);
      r.skip(3, `${name}.reserved`);
      const value = r.u32(`${name}.value`);
      r.end(name);
      return { searchOrder: order === 0 ? 'lower-first' : 'higher-first', value };
    },
  },
  'backup-precedence': {
    encode: (v, name) => new ByteWriter().u32(v, `${name}.value`).finish(),
    decode(r, name) {
      const value = r.u32(`${name}.value`);
      r.end(name);
      return value;
    },
  },
  'sm-interest-data': opaque,
  'fa-interest-data': opaque,
  identity: {
    encode(v, name) {
      const family = familyOf(v.ip, `${name}.ip`);
      const host = Buffer.from(v.hostName, 'utf8');
      if (host.length > MAX_HOST_NAME_BYTES) throw new EncodeError(`${name}.hostName`, `${host.length} bytes exceeds ${MAX_HOST_NAME_BYTES}`);
      return new ByteWriter().u8(family, `${name}.family`).zeros(3).address(v.ip, family, `${name}.ip`).bytes(host).finish();
    },
    decode(r, name) {
      const family = r.family(`${name}.family`);
      r.skip(3, `${name}.reserved`);
      const ip = r.address(family, `${name}.ip`);
      const at = r.offset;
      const host = r.rest();
      if (host.length > MAX_HOST_NAME_BYTES) throw r.failure(`${name}.hostName`, `${host.length} bytes exceeds ${MAX_HOST_NAME_BYTES}`, at);
      const hostName = decodeUtf8(host);
      if (hostName === undefined) throw r.failure(`${name}.hostName`, 'is not valid UTF-8', at);
      return { ip, hostName };
    },
  },
  'action-list': {
    encode(entries, name) {
      const w = new ByteWriter();
      entries.forEach((e, i) => {
        if (e.segmentType === 0) throw new EncodeError(`${name}[${i}].segmentType`, '0 is not a segment type');
        w.u8(e.segmentType, `${name}[${i}].segmentType`).u8(e.required ? REQUIRED_FLAG : 0, `${name}[${i}].flags`);
      });
      return w.finish();
    },
    decode(r, name) {
      if (r.remaining % 2 !== 0) throw r.failure(name, `body of ${r.remaining} bytes is not a whole number of 2-byte entries`);
      const entries = [];
      for (let i = 0; r.remaining > 0; i++) {
        const at = r.offset;
        const segmentType = r.u8(`${name}[${i}].segmentType`);
        if (segmentType === 0) throw r.failure(`${name}[${i}].segmentType`, '0 is not a segment type', at);
        const required = (r.u8(`${name}[${i}].flags`) & REQUIRED_FLAG) !== 0;
        entries.push({ segmentType, required });
      }
      return entries;
    },
  },
  'ip-packet': {
    encode(packet, name) {
      const version = packet.length > 0 ? packet[0]! >> 4 : undefined;
      if (version !== 4 && version !== 6) throw new EncodeError(name, 'must start with an IPv4 or IPv6 header');
      return Buffer.from(packet);
    },
    decode(r, name) {
      const at = r.offset;
      const packet = r.rest();
      if (packet.length === 0) throw r.failure(name, 'is empty', at);
      const version = packet[0]! >> 4;
      if (version !== 4 && version !== 6) throw r.failure(name, `IP version nibble ${version} is neither 4 nor 6`, at);
      return packet;
    },
  },
  nat: {
    encode(v, name) {
      const family = commonFamily(name, { srcIp: v.srcIp, dstIp: v.dstIp });
      return new ByteWriter()
        .u8(family, `${name}.family`)
        .zeros(1)
        .u16(v.srcPort, `${name}.srcPort`)
        .u16(v.dstPort, `${name}.dstPort`)
        .zeros(2)
        .address(v.srcIp, family, `${name}.srcIp`)
        .address(v.dstIp, family, `${name}.dstIp`)
        .finish();
    },
    decode(r, name) {
      const family = r.family(`${name}.family`);
      r.skip(1, `${name}.reserved`);
      const srcPort = r.u16(`${name}.srcPort`);
      const dstPort = r.u16(`${name}.dstPort`);
      r.skip(2, `${name}.reserved`);
      const srcIp = r.address(family, `${name}.srcIp`);
      const dstIp = r.address(family, `${name}.dstIp`);
      r.end(name);
      return { srcIp, srcPort, dstIp, dstPort };
    },
  },
  'sequence-adjust': {
    encode: (v, name) =>
      new ByteWriter()
        .u32(v.seqDelta, `${name}.seqDelta`)
        .u32(v.initialSeq, `${name}.initialSeq`)
        .u32(v.ackDelta, `${name}.ackDelta`)
        .u32(v.initialAck, `${name}.initialAck`)
        .finish(),
    decode(r, name) {
      const seqDelta = r.u32(`${name}.seqDelta`);
      const initialSeq = r.u32(`${name}.initialSeq`);
      const ackDelta = r.u32(`${name}.ackDelta`);
      const initialAck = r.u32(`${name}.initialAck`);
      r.end(name);
      return { seqDelta, initialSeq, ackDelta, initialAck };
    },
  },
  advertise: {
    encode(v, name) {
      const family = commonFamily(name, v.mask === undefined ? { address: v.address } : { address: v.address, mask: v.mask });
      const w = new ByteWriter()
        .u8(family, `${name}.family`)
        .u8(v.mask === undefined ? 0 : ADVERTISE_HAS_MASK, `${name}.flags`)
        .zeros(2)
        .address(v.address, family, `${name}.address`);
      if (v.mask !== undefined) w.address(v.mask, family, `${name}.mask`);
      return w.finish();
    },
    decode(r, name) {
      const family = r.family(`${name}.family`);
      const hasMask = (r.u8(`${name}.flags`) & ADVERTISE_HAS_MASK) !== 0;
      r.skip(2, `${name}.reserved`);
      const address = r.address(family, `${name}.address`);
      const mask = hasMask ? r.address(family, `${name}.mask`) : undefined;
      r.end(name);
      return mask === undefined ? { address } : { address, mask };
    },
  },
  'interest-criteria': {
    encode(v, name) {
      const family = familyOf(v.ip, `${name}.ip`);
      return new ByteWriter()
        .u8(family, `${name}.family`)
        .zeros(1)
        .u16(v.port, `${name}.port`)
        .u16(v.mask, `${name}.mask`)
        .u16(v.data, `${name}.data`)
        .u16(v.copy, `${name}.copy`)
        .u16(v.hold, `${name}.hold`)
        .address(v.ip, family, `${name}.ip`)
        .finish();
    },
    decode(r, name) {
      const family = r.family(`${name}.family`);
      r.skip(1, `${name}.reserved`);
      const port = r.u16(`${name}.port`);
      const mask = r.u16(`${name}.mask`);
      const data = r.u16(`${name}.data`);
      const copy = r.u16(`${name}.copy`);
      const hold = r.u16(`${name}.hold`);
      const ip = r.address(family, `${name}.ip`);
      r.end(name);
      return { ip, port, mask, data, copy, hold };
    },
  },
};

export function encodeSegmentBody(segment: Segment): Buffer {
  const codec = codecs[segment.kind] as BodyCodec<Segment['kind']>;
  return codec.encode(segment.value, segment.kind);
}

export function decodeSegmentBody<K extends Segment['kind']>(kind: K, reader: ByteReader): SegmentValue<K> {
  return codecs[kind].decode(reader, kind);
}

import fc from 'fast-check';
import { addressFromBytes, type AddressFamily } from '../ip-address.js';
import type * as T from '../types.js';
import { DispatchMethodCode, type DispatchMethod } from '../wire-constants.js';

/** Generators of canonical typed values, so decode(encode(x)) must equal x exactly. */

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const family = fc.constantFrom<AddressFamily>(4, 6);
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));

export function address(fam: AddressFamily): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength: fam === 4 ? 4 : 16, maxLength: fam === 4 ? 4 : 16 }).map(addressFromBytes);
}
const anyAddress = family.chain(address);
const dispatch = fc.constantFrom(...(Object.keys(DispatchMethodCode) as DispatchMethod[]));

const key = (fam: AddressFamily): fc.Arbitrary<T.AffinityKey> =>
  fc.record({ protocol: u8, srcIp: address(fam), dstIp: address(fam), srcPort: u16, dstPort: u16 });

export const wildcardAffinity: fc.Arbitrary<T.WildcardAffinity> = family.chain((f) =>
  fc.record({
    protocol: u8, srcIp: address(f), srcMask: address(f), dstIp: address(f), dstMask: address(f),
    srcPort: u16, dstPort: u16, dispatch, information: fc.boolean(), ttlSeconds: u32,
  }),
);
export const fixedAffinity: fc.Arbitrary<T.FixedAffinity> = family.chain((f) =>
  fc.record({ key: key(f), dispatch, information: fc.boolean(), forwardIp: anyAddress, ttlSeconds: u32 }),
);
export const affinityIdentifier: fc.Arbitrary<T.AffinityIdentifier> = family.chain((f) =>
  fc.record({ key: key(f), dispatch, information: fc.boolean(), interestReasons: u16 }),
);
export const servicePrecedence: fc.Arbitrary<T.ServicePrecedence> = fc.record({
  searchOrder: fc.constantFrom('lower-first' as const, 'higher-first' as const),
  value: u32,
});
export const identity: fc.Arbitrary<T.Identity> = fc.record({
  ip: anyAddress,
  hostName: fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => Buffer.byteLength(s) <= 255),
});
export const nat: fc.Arbitrary<T.Nat> = family.chain((f) => fc.record({ srcIp: address(f), srcPort: u16, dstIp: address(f), dstPort: u16 }));
export const sequenceAdjust: fc.Arbitrary<T.SequenceAdjust> = fc.record({ seqDelta: u32, initialSeq: u32, ackDelta: u32, initialAck: u32 });
export const advertise: fc.Arbitrary<T.Advertise> = family.chain((f) =>
  fc.record({ address: address(f), mask: address(f) }, { requiredKeys: ['address'] }),
);
export const interestCriteria: fc.Arbitrary<T.InterestCriteria> = fc.record({ ip: anyAddress, port: u16, mask: u16, data: u16, copy: u16, hold: u16 });
export const actionList: fc.Arbitrary<T.ActionListEntry[]> = fc.array(
  fc.record({ segmentType: fc.integer({ min: 1, max: 0xff }), required: fc.boolean() }),
  { maxLength: 8 },
);
export const ipPacket: fc.Arbitrary<Buffer> = fc
  .tuple(fc.constantFrom(0x45, 0x60), bytes(200))
  .map(([first, rest]) => Buffer.concat([Buffer.of(first), rest]));
export const security: fc.Arbitrary<T.Security> = fc.record({
  keyId: u16,
  senderId: u32,
  sequence: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  mac: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
});

const segmentValues: { [K in T.Segment['kind']]: fc.Arbitrary<T.SegmentValue<K>> } = {
  security,
  'wildcard-affinity': wildcardAffinity,
  'fixed-affinity': fixedAffinity,
  'affinity-identifier': affinityIdentifier,
  'service-precedence': servicePrecedence,
  'backup-precedence': u32,
  'sm-interest-data': bytes(64),
  'fa-interest-data': bytes(64),
  identity,
  'action-list': actionList,
  'ip-packet': ipPacket,
  nat,
  'sequence-adjust': sequenceAdjust,
  advertise,
  'interest-criteria': interestCriteria,
};

export function segmentOfKind<K extends T.Segment['kind']>(kind: K): fc.Arbitrary<T.Segment> {
  return (segmentValues[kind] as fc.Arbitrary<T.SegmentValue<K>>).map((value) => ({ kind, value }) as T.Segment);
}

export const segmentKinds = Object.keys(segmentValues) as T.Segment['kind'][];

const fixedActions = fc.record({ nat, sequenceAdjust, interestCriteria }, { requiredKeys: [] });
const echoed = { identity, smInterestData: bytes(64), faInterestData: bytes(64) };

export const affinityUpdateWildcard: fc.Arbitrary<T.AffinityUpdateWildcard> = fc.record(
  {
    type: fc.constant('affinity-update-wildcard' as const),
    wildcard: wildcardAffinity,
    actionList,
    servicePrecedence,
    backupPrecedence: u32,
    identity,
    smInterestData: bytes(64),
    actions: fc.record({ nat, sequenceAdjust, interestCriteria, advertise }, { requiredKeys: [] }),
  },
  { requiredKeys: ['type', 'wildcard', 'actions'] },
);
export const affinityUpdateFixed: fc.Arbitrary<T.AffinityUpdateFixed> = fc.record(
  {
    type: fc.constant('affinity-update-fixed' as const),
    fixed: fixedAffinity,
    servicePrecedence,
    backupPrecedence: u32,
    ...echoed,
    ipPacket,
    actions: fixedActions,
  },
  { requiredKeys: ['type', 'fixed', 'actions'] },
);
export const affinityUpdateDeny: fc.Arbitrary<T.AffinityUpdateDeny> = fc.record(
  {
    type: fc.constant('affinity-update-deny' as const),
    actionList,
    originalAffinity: fc.oneof(
      wildcardAffinity.map((affinity) => ({ kind: 'wildcard' as const, affinity })),
      fixedAffinity.map((affinity) => ({ kind: 'fixed' as const, affinity })),
    ),
    ...echoed,
  },
  { requiredKeys: ['type', 'actionList'] },
);
export const interestMatch: fc.Arbitrary<T.InterestMatch> = fc.record(
  {
    type: fc.constantFrom('interest-match-wildcard' as const, 'interest-match-fixed' as const),
    affinity: affinityIdentifier,
    ...echoed,
    ipPacket,
  },
  { requiredKeys: ['type', 'affinity'] },
);
export const ipPacketOnly: fc.Arbitrary<T.IpPacketOnly> = fc.record({ type: fc.constant('ip-packet-only' as const), ipPacket });

export const message: fc.Arbitrary<T.Message> = fc.oneof(affinityUpdateWildcard, affinityUpdateFixed, affinityUpdateDeny, interestMatch, ipPacketOnly);

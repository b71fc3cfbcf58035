import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, decodeSegment, encodeMessage, encodeSegment, type DecodeResult } from './codec.js';
import { EncodeError } from './errors.js';
import * as arb from './test-support/arbitraries.js';
import type { AffinityUpdateWildcard, Message } from './types.js';

const wildcardUpdate: AffinityUpdateWildcard = {
  type: 'affinity-update-wildcard',
  wildcard: {
    protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '192.0.2.10', dstMask: '255.255.255.255',
    srcPort: 0, dstPort: 80, dispatch: 'gre', information: true, ttlSeconds: 30,
  },
  actions: {},
};

function errorOf(result: DecodeResult) {
  if (result.ok) throw new Error(`expected a decode error, got ${JSON.stringify(result.message)}`);
  return result.error;
}

/** Appends a raw segment and fixes up the header's total length. */
function withExtraSegment(datagram: Buffer, segment: Buffer): Buffer {
  const out = Buffer.concat([datagram, segment]);
  out.writeUInt16BE(out.length, 2);
  return out;
}

function rawSegment(type: number, flags: number, body: Buffer): Buffer {
  const length = 4 + body.length;
  const out = Buffer.alloc(Math.ceil(length / 4) * 4);
  out.writeUInt8(type, 0);
  out.writeUInt8(flags, 1);
  out.writeUInt16BE(length, 2);
  body.copy(out, 4);
  return out;
}

describe('round trip', () => {
  it('every message type decodes to what was encoded', () => {
    fc.assert(
      fc.property(arb.message, (msg) => {
        const result = decodeMessage(encodeMessage(msg));
        expect(result).toEqual({ ok: true, message: msg, skipped: [] });
      }),
      { numRuns: 2000 },
    );
  });

  it('a sealed message carries its security fields back out', () => {
    fc.assert(
      fc.property(arb.message, arb.security, (msg, sec) => {
        const result = decodeMessage(encodeMessage(msg, { seal: { keyId: sec.keyId, senderId: sec.senderId, sequence: sec.sequence, secret: sec.mac } }));
        expect(result.ok && result.message).toEqual(msg);
        expect(result.ok && result.security).toMatchObject({ keyId: sec.keyId, senderId: sec.senderId, sequence: sec.sequence });
      }),
      { numRuns: 300 },
    );
  });

  it.each(arb.segmentKinds)('segment %s decodes to what was encoded, padded to 4 bytes', (kind) => {
    fc.assert(
      fc.property(arb.segmentOfKind(kind), fc.boolean(), (segment, required) => {
        const wire = encodeSegment(segment, required);
        expect(wire.length % 4).toBe(0);
        expect(decodeSegment(wire)).toEqual({ ok: true, segment, required });
      }),
      { numRuns: 300 },
    );
  });
});

describe('required flag', () => {
  const base = encodeMessage(wildcardUpdate);

  it('skips an unknown optional segment and reports it', () => {
    const wire = withExtraSegment(base, rawSegment(0x7e, 0x00, Buffer.from('abc')));
    const result = decodeMessage(wire);
    expect(result.ok && result.skipped).toEqual([{ segmentType: 0x7e, offset: base.length, length: 7, why: 'unknown-type' }]);
    expect(result.ok && result.message).toEqual(wildcardUpdate);
  });

  it('fails an unknown required segment with its type so the sender can be told', () => {
    const wire = withExtraSegment(base, rawSegment(0x7e, 0x80, Buffer.alloc(4)));
    expect(errorOf(decodeMessage(wire))).toMatchObject({ code: 'unknown-required-segment', segmentType: 0x7e, required: true, offset: base.length });
  });

  it('skips a known segment that this message type does not carry when optional, fails it when required', () => {
    const packet = Buffer.from('4500', 'hex');
    const optional = decodeMessage(withExtraSegment(base, rawSegment(11, 0x00, packet)));
    expect(optional.ok && optional.skipped[0]?.why).toBe('not-allowed-in-message');
    expect(errorOf(decodeMessage(withExtraSegment(base, rawSegment(11, 0x80, packet))))).toMatchObject({ code: 'segment-not-allowed', segmentType: 11 });
  });
});

describe('message rules', () => {
  it('rejects a wildcard update without a wildcard affinity segment', () => {
    const headerOnly = Buffer.from('01010004', 'hex');
    expect(errorOf(decodeMessage(headerOnly))).toMatchObject({ code: 'missing-segment', reason: expect.stringContaining('wildcard-affinity') });
  });

  it('rejects a duplicated segment', () => {
    const base = encodeMessage({ ...wildcardUpdate, backupPrecedence: 3 });
    const dup = withExtraSegment(base, encodeSegment({ kind: 'backup-precedence', value: 4 }));
    expect(errorOf(decodeMessage(dup))).toMatchObject({ code: 'duplicate-segment', segmentType: 6 });
  });

  it('rejects a security segment that is not first', () => {
    const security = encodeSegment({ kind: 'security', value: { keyId: 1, senderId: 1, sequence: 1n, mac: Buffer.alloc(32) } });
    expect(errorOf(decodeMessage(withExtraSegment(encodeMessage(wildcardUpdate), security)))).toMatchObject({ code: 'security-not-first' });
  });

  it('rejects a deny carrying both a wildcard and a fixed original affinity', () => {
    const deny = encodeMessage({ type: 'affinity-update-deny', actionList: [{ segmentType: 0x20, required: true }], originalAffinity: { kind: 'wildcard', affinity: wildcardUpdate.wildcard } });
    const fixed = encodeSegment({ kind: 'fixed-affinity', value: { key: { protocol: 6, srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 1, dstPort: 2 }, dispatch: 'none', information: false, forwardIp: '0.0.0.0', ttlSeconds: 0 } });
    expect(errorOf(decodeMessage(withExtraSegment(deny, fixed)))).toMatchObject({ code: 'duplicate-segment', reason: expect.stringContaining('at most one original affinity') });
  });
});

describe('malformed input is rejected with a reason', () => {
  const good = encodeMessage(wildcardUpdate);
  const mutate = (at: number, value: number) => {
    const b = Buffer.from(good);
    b[at] = value;
    return b;
  };

  it('every truncation of a valid message is an error, never a throw', () => {
    for (let n = 0; n < good.length; n++) expect(decodeMessage(good.subarray(0, n)).ok).toBe(false);
  });

  it.each([
    ['unsupported-version', 0, 2, 'version 2'],
    ['unknown-message-type', 1, 9, 'message type 9'],
    ['bad-field', 8, 5, 'wildcard-affinity.family: address family 5'],
    ['bad-field', 10, 7, 'wildcard-affinity.dispatch: method 7'],
  ] as const)('%s at byte %i = %i says "%s"', (code, at, value, reason) => {
    expect(errorOf(decodeMessage(mutate(at, value)))).toMatchObject({ code, reason: expect.stringContaining(reason) });
  });

  it('rejects a header length that disagrees with the datagram', () => {
    expect(errorOf(decodeMessage(Buffer.concat([good, Buffer.alloc(4)])))).toMatchObject({ code: 'length-mismatch' });
  });

  it('rejects a segment length shorter than its header or past the end', () => {
    const short = Buffer.from(good);
    short.writeUInt16BE(2, 6);
    expect(errorOf(decodeMessage(short))).toMatchObject({ code: 'bad-segment-length', offset: 4 });
    const long = Buffer.from(good);
    long.writeUInt16BE(200, 6);
    expect(errorOf(decodeMessage(long))).toMatchObject({ code: 'bad-segment-length', offset: 4 });
  });

  it('names the field of an invalid host name and of a non-IP packet', () => {
    const identity = rawSegment(9, 0, Buffer.concat([Buffer.from('04000000c0000201', 'hex'), Buffer.from([0xff, 0xfe])]));
    expect(errorOf(decodeMessage(withExtraSegment(good, identity)))).toMatchObject({ reason: 'identity.hostName: is not valid UTF-8', segmentType: 9 });
    const notIp = Buffer.from('0106000c0b800005' + '15000000', 'hex');
    expect(errorOf(decodeMessage(notIp))).toMatchObject({ code: 'bad-field', reason: expect.stringContaining('ip-packet: IP version nibble 1') });
  });

  it('rejects a fixed-size segment with trailing bytes', () => {
    expect(errorOf(decodeMessage(withExtraSegment(good, rawSegment(6, 0x80, Buffer.alloc(8)))))).toMatchObject({ reason: 'backup-precedence: 4 unexpected trailing bytes' });
  });
});

describe('encoder refuses what the wire cannot carry', () => {
  it.each([
    ['mixed families', { ...wildcardUpdate, wildcard: { ...wildcardUpdate.wildcard, dstIp: '2001:db8::1' } }, 'wildcard-affinity.dstIp'],
    ['a port above 65535', { ...wildcardUpdate, wildcard: { ...wildcardUpdate.wildcard, dstPort: 70000 } }, 'wildcard-affinity.dstPort'],
    ['a non-address', { ...wildcardUpdate, wildcard: { ...wildcardUpdate.wildcard, srcIp: '300.1.1.1' } }, 'wildcard-affinity.srcIp'],
  ])('%s', (_name, msg, field) => {
    expect(() => encodeMessage(msg as Message)).toThrow(expect.objectContaining({ field }) as EncodeError);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, encodeSegment } from './codec.js';
import { MessageAuthenticator, type AuthenticatorOptions } from './message-authenticator.js';
import { MAC_OFFSET, computeMessageMac } from './message-mac.js';
import type { Message } from './types.js';

const secret = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const keys = new Map([[7, secret]]);
const msg: Message = {
  type: 'interest-match-fixed',
  affinity: { key: { protocol: 17, srcIp: '198.51.100.7', dstIp: '192.0.2.10', srcPort: 5353, dstPort: 53 }, dispatch: 'none', information: false, interestReasons: 1 << 15 },
};

function pair(overrides: Partial<AuthenticatorOptions> = {}) {
  const sender = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 1, ...overrides });
  const receiver = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 2 });
  return { sender, receiver };
}

describe('MessageAuthenticator', () => {
  it('accepts a sealed message once and counts it', () => {
    const { sender, receiver } = pair();
    const result = receiver.open(sender.seal(msg));
    expect(result).toMatchObject({ ok: true, message: msg, authenticated: true });
    expect(receiver.counters.accepted).toBe(1);
  });

  it('ignores and counts a replayed message', () => {
    const { sender, receiver } = pair();
    const datagram = sender.seal(msg);
    receiver.open(datagram);
    expect(receiver.open(datagram)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(receiver.counters).toMatchObject({ accepted: 1, replayed: 1 });
  });

  it('refuses a message older than the replay window even if never seen', () => {
    let clock = 1000n;
    const { sender } = pair({ nowMicros: () => clock++ });
    const receiver = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 2, replayWindowSize: 4 });
    const sent = Array.from({ length: 6 }, () => sender.seal(msg));
    expect(receiver.open(sent[5]!).ok).toBe(true);
    expect(receiver.open(sent[1]!)).toMatchObject({ ok: false, reason: 'too-old' });
    expect(receiver.open(sent[2]!).ok).toBe(true);
  });

  it('ignores and counts a message whose MAC was made with another secret', () => {
    const forger = new MessageAuthenticator({ keys: new Map([[7, Buffer.from('not the secret')]]), sendKeyId: 7, senderId: 1 });
    const { receiver } = pair();
    expect(receiver.open(forger.seal(msg))).toMatchObject({ ok: false, reason: 'bad-mac', authenticated: false });
    expect(receiver.counters['bad-mac']).toBe(1);
  });

  it('rejects every single-bit change of a sealed message', () => {
    const { sender } = pair();
    const datagram = sender.seal(msg);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: datagram.length * 8 - 1 }), (bit) => {
        const receiver = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 2 });
        const tampered = Buffer.from(datagram);
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expect(receiver.open(tampered).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('distinguishes a missing security segment and an unknown key', () => {
    const { receiver } = pair();
    expect(receiver.open(encodeMessage(msg))).toMatchObject({ ok: false, reason: 'missing-security' });
    const otherKey = new MessageAuthenticator({ keys: new Map([[8, secret]]), sendKeyId: 8, senderId: 1 });
    expect(receiver.open(otherKey.seal(msg))).toMatchObject({ ok: false, reason: 'unknown-key' });
  });

  it('keeps one replay window per sender, so a sender with a slower clock is not taken for a replayer', () => {
    const fast = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 10, nowMicros: () => 1_000_000n });
    const slow = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 11, nowMicros: () => 5n });
    const { receiver } = pair();
    expect(receiver.open(fast.seal(msg)).ok).toBe(true);
    expect(receiver.open(slow.seal(msg)).ok).toBe(true);
  });

  it('marks an authentic but undecodable message as authenticated so an error reply is allowed', () => {
    const datagram = Buffer.concat([
      encodeMessage(msg, { seal: { keyId: 7, secret, senderId: 3, sequence: 9n } }),
      encodeSegment({ kind: 'backup-precedence', value: 1 }).fill(0x7f, 0, 1),
    ]);
    datagram.writeUInt16BE(datagram.length, 2);
    computeMessageMac(datagram, secret).copy(datagram, MAC_OFFSET);
    const { receiver } = pair();
    expect(receiver.open(datagram)).toMatchObject({ ok: false, reason: 'malformed', authenticated: true, decodeError: { code: 'unknown-required-segment', segmentType: 0x7f } });
  });

  it('accepts unsealed messages when security is not required', () => {
    const receiver = new MessageAuthenticator({ keys, sendKeyId: 7, senderId: 2, requireSecurity: false });
    expect(receiver.open(encodeMessage(msg))).toMatchObject({ ok: true, authenticated: false });
  });
});

/* The receive path refuses malformed, forged (wrong key), unauthenticated and replayed cluster
 * datagrams with a reason and counts each, and never throws on any input. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../../app/cluster/envelope.js';
import { MessageGuard } from '../../app/cluster/message-guard.js';
import { encodeBody, MESSAGE_TYPES, type ClusterMessage } from '../../app/cluster/messages.js';

const key = randomBytes(32);
const keepalive: ClusterMessage = { name: 'client-keepalive', body: {} };

function datagram(message: ClusterMessage, sequence: bigint, options: { key?: Buffer; address?: string; authenticated?: boolean } = {}): Buffer {
  const authenticated = options.authenticated ?? true;
  return encodeEnvelope(
    { type: MESSAGE_TYPES[message.name], authenticated, sequence, senderId: 'unit-2', senderAddress: options.address ?? '10.77.0.12', body: encodeBody(message) },
    authenticated ? (options.key ?? key) : undefined,
  );
}

function guard(): MessageGuard {
  const checker = new MessageGuard();
  checker.setKey(key);
  return checker;
}

describe('cluster message guard', () => {
  it('accepts an authentic keepalive and rejects its replay', () => {
    const checker = guard();
    const packet = datagram(keepalive, 100n);
    expect(checker.check(packet, '10.77.0.12')).toMatchObject({ ok: true, received: { senderId: 'unit-2', sequence: 100n } });
    expect(checker.check(packet, '10.77.0.12')).toMatchObject({ ok: false, reason: 'replayed' });
    expect(checker.check(datagram(keepalive, 10n), '10.77.0.12')).toMatchObject({ ok: false, reason: 'too-old' });
    expect(checker.rejected).toMatchObject({ replayed: 1, 'too-old': 1 });
    expect(checker.accepted).toBe(1);
  });

  it('rejects a forged MAC, a missing MAC, a spoofed address and members-only messages before joining', () => {
    const checker = guard();
    expect(checker.check(datagram(keepalive, 1n, { key: randomBytes(32) }), '10.77.0.12')).toMatchObject({ ok: false, reason: 'bad-mac' });
    const flipped = Buffer.from(datagram(keepalive, 2n));
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    expect(checker.check(flipped, '10.77.0.12')).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(checker.check(datagram(keepalive, 3n, { authenticated: false }), '10.77.0.12')).toMatchObject({ ok: false, reason: 'unauthenticated' });
    expect(checker.check(datagram(keepalive, 4n), '10.77.0.66')).toMatchObject({ ok: false, reason: 'address-mismatch' });
    expect(new MessageGuard().check(datagram(keepalive, 5n), '10.77.0.12')).toMatchObject({ ok: false, reason: 'no-key' });
  });

  it('rejects malformed datagrams with a reason', () => {
    const checker = guard();
    const good = datagram({ name: 'discover', body: { configVersion: 3 } }, 1n, { authenticated: false });
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(3), /^truncated/],
      [Buffer.concat([Buffer.from('XXXX'), good.subarray(4)]), /bad magic/],
      [Buffer.concat([good.subarray(0, 4), Buffer.from([9]), good.subarray(5)]), /unsupported version 9/],
      [Buffer.concat([good.subarray(0, 5), Buffer.from([99]), good.subarray(6)]), /unknown message type 99/],
      [good.subarray(0, good.length - 1), /length mismatch/],
      [encodeEnvelope({ type: 1, authenticated: false, sequence: 1n, senderId: 'unit-2', senderAddress: '10.77.0.12', body: Buffer.from('{"configVersion":-1}') }), /discover body: configVersion/],
      [encodeEnvelope({ type: 1, authenticated: false, sequence: 1n, senderId: 'unit-2', senderAddress: '10.77.0.12', body: Buffer.from([0xff, 0x7b]) }), /not UTF-8 JSON/],
    ];
    for (const [packet, reason] of cases) {
      const verdict = checker.check(packet, '10.77.0.12');
      expect(verdict).toMatchObject({ ok: false, reason: 'malformed' });
      expect(verdict.ok ? '' : verdict.detail).toMatch(reason);
    }
    expect(checker.rejected.malformed).toBe(cases.length);
  });

  it('survives a fuzz round of random and mutated datagrams, counting every refusal', () => {
    const checker = guard();
    const seeds = [datagram(keepalive, 7n), datagram({ name: 'offer', body: { memberCount: 1, configVersion: 3 } }, 8n, { authenticated: false })];
    let accepted = 0;
    for (let round = 0; round < 5000; round += 1) {
      const base = Buffer.from(seeds[round % seeds.length] as Buffer);
      const packet = round % 3 === 0 ? randomBytes(round % 200) : base;
      for (let flips = 0; flips < 1 + (round % 4); flips += 1) {
        if (packet.length > 0) packet[Math.floor(Math.random() * packet.length)] = Math.floor(Math.random() * 256);
      }
      const verdict = checker.check(packet, '10.77.0.12');
      if (verdict.ok) accepted += 1;
    }
    const rejected = Object.values(checker.rejected).reduce((sum, count) => sum + count, 0);
    expect(rejected + accepted).toBe(5000);
    expect(checker.rejected.malformed).toBeGreaterThan(1000);
    console.log(`fuzz: ${JSON.stringify(checker.rejected)}, accepted ${accepted} (unchanged bytes or unauthenticated probes)`);
  });
});

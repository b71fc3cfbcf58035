import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type EncodeOptions } from './codec.js';
import { MessageAuthenticator } from './message-authenticator.js';
import type { Message } from './types.js';

interface GoldenVector {
  name: string;
  seal?: { keyId: number; secret: string; senderId: number; sequence: string };
  message: Record<string, unknown>;
  hex: string[];
}

const doc = readFileSync(new URL('../../docs/smfa-wire.md', import.meta.url), 'utf8');
const vectors = [...doc.matchAll(/```json smfa-golden\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as GoldenVector);
const BUFFER_FIELDS = ['smInterestData', 'faInterestData', 'ipPacket'];

/** JSON cannot hold Buffers; the doc writes them as hex strings. */
function revive(message: Record<string, unknown>): Message {
  const out = { ...message };
  for (const field of BUFFER_FIELDS) if (typeof out[field] === 'string') out[field] = Buffer.from(out[field], 'hex');
  return out as unknown as Message;
}

function sealOf(v: GoldenVector): EncodeOptions {
  return v.seal ? { seal: { ...v.seal, secret: Buffer.from(v.seal.secret, 'hex'), sequence: BigInt(v.seal.sequence) } } : {};
}

describe('golden vectors in docs/smfa-wire.md', () => {
  it('the doc has one vector per message family, at least one sealed', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(5);
    expect(new Set(vectors.map((v) => v.message.type))).toEqual(
      new Set(['affinity-update-wildcard', 'affinity-update-fixed', 'affinity-update-deny', 'interest-match-wildcard', 'ip-packet-only']),
    );
    expect(vectors.some((v) => v.seal)).toBe(true);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const wire = Buffer.from(v.hex.join('').replace(/\s+/g, ''), 'hex');
    const message = revive(v.message);
    expect(encodeMessage(message, sealOf(v)).toString('hex')).toBe(wire.toString('hex'));
    const decoded = decodeMessage(wire);
    expect(decoded.ok && decoded.message).toEqual(message);
    if (v.seal) {
      const receiver = new MessageAuthenticator({ keys: new Map([[v.seal.keyId, Buffer.from(v.seal.secret, 'hex')]]), sendKeyId: v.seal.keyId, senderId: 0 });
      expect(receiver.open(wire)).toMatchObject({ ok: true, authenticated: true });
    }
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayWindow } from './replay-window.js';

describe('ReplayWindow', () => {
  it('accepts increasing sequences and refuses an exact repeat', () => {
    const w = new ReplayWindow();
    expect([1n, 2n, 5n].map((s) => w.accept(s))).toEqual(['fresh', 'fresh', 'fresh']);
    expect(w.accept(5n)).toBe('replayed');
    expect(w.accept(2n)).toBe('replayed');
  });

  it('accepts reordered sequences inside the window once each', () => {
    const w = new ReplayWindow(64);
    w.accept(100n);
    expect(w.accept(37n)).toBe('fresh');
    expect(w.accept(37n)).toBe('replayed');
    expect(w.accept(36n)).toBe('too-old');
  });

  it('forgets nothing it should remember when the window jumps far ahead', () => {
    const w = new ReplayWindow(64);
    w.accept(10n);
    w.accept(1000n);
    expect(w.accept(10n)).toBe('too-old');
    expect(w.accept(999n)).toBe('fresh');
    expect(w.accept(1000n)).toBe('replayed');
  });

  it('agrees with a model that remembers every sequence (within the window)', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: 200n }), { maxLength: 300 }), fc.integer({ min: 1, max: 80 }), (seqs, size) => {
        const w = new ReplayWindow(size);
        const accepted = new Set<bigint>();
        let highest = -1n;
        for (const s of seqs) {
          const expected = s > highest ? 'fresh' : highest - s >= BigInt(size) ? 'too-old' : accepted.has(s) ? 'replayed' : 'fresh';
          expect(w.accept(s)).toBe(expected);
          if (expected === 'fresh') accepted.add(s);
          if (s > highest) highest = s;
        }
      }),
      { numRuns: 500 },
    );
  });
});

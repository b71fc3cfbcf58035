import { expect, it } from 'vitest';
import { runFuzz } from './smfa-fuzz-engine.js';

it('20k mutated and random datagrams: decode never throws, decoded messages re-encode stably', () => {
  const report = runFuzz({ inputs: 20_000, seed: 42, budgetMs: 60_000 });
  expect(report.failures).toEqual([]);
  expect(report.inputs).toBe(20_000);
  // The mutator must reach deep into segment parsing, not just bounce off the header.
  expect(report.accepted).toBeGreaterThan(500);
  expect(report.rejectedByCode['bad-field']).toBeGreaterThan(100);
  expect(report.rejectedByCode['unknown-required-segment']).toBeGreaterThan(10);
});

import { parseArgs } from 'node:util';
import { runFuzz } from './smfa-fuzz-engine.js';

/** Usage: npx tsx test/fuzz/smfa-fuzz.ts [--inputs 1000000] [--seed N] [--budget-ms 600000] */
const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(Date.now() & 0x7fffffff) },
    'budget-ms': { type: 'string', default: '600000' },
  },
});
const options = { inputs: Number(values.inputs), seed: Number(values.seed), budgetMs: Number(values['budget-ms']) };
for (const [name, value] of Object.entries(options)) {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name}: "${value}" is not a non-negative integer`);
}
const report = runFuzz(options);
console.log(JSON.stringify({ seed: options.seed, ...report }, null, 2));
process.exitCode = report.failures.length === 0 ? 0 : 1;

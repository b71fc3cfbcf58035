#!/usr/bin/env node
// Entry point of the `edgeplane` CLI: `node --import tsx app/cli/edgeplane.ts ...` or dist/app/cli/edgeplane.js.
import { runEdgeplane } from './program.js';

process.exitCode = await runEdgeplane(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});

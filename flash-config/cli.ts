#!/usr/bin/env node
// Entry point: `node dist/flash-config/cli.js ...` (or `npx vite-node flash-config/cli.ts ...`).
import { runCli } from './cli-program.js';

process.exitCode = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});

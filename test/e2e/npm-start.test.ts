/* The main job as a user runs it: `npm start` (scripts/start.sh) in the background brings up the
 * three-unit cluster, the VIP answers from the client namespace, the CLI it prints works from this
 * host, and an interrupt (a terminal's Ctrl-C) stops the units and removes every namespace. */
import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

const namespaces = () => readdirSync('/run/netns').filter((name) => name.startsWith('epst-'));

function edgeplane(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'dist/app/cli/edgeplane.js'), '--url', 'https://10.77.0.12:8443', '--credentials', path.join(ROOT, 'out/cluster/operator'), ...args], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('npm start', () => {
  it('brings up a three-unit cluster the VIP and the CLI answer from, and Ctrl-C removes it', async () => {
    // Its own process group, as a terminal runs it: the interrupt goes to the whole group.
    const start = spawn('bash', [path.join(ROOT, 'scripts/start.sh')], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    start.stdout.on('data', (chunk) => (output += chunk));
    start.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 300_000;
      while (!output.includes('Ctrl-C stops the units')) {
        if (start.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output}`);
        await sleep(500);
      }
      expect(output).toMatch(/Cluster is up: unit-1 \(master\), unit-2 \(member\), unit-3 \(member\)/);
      const bodies: string[] = [];
      for (let i = 0; i < 6; i += 1) bodies.push(await inNamespace('epst-cl', 'curl', ['-sS', '--max-time', '10', 'http://10.0.1.100/']));
      expect(bodies.every((body) => /^server 10\.0\.2\.1[12]\n$/.test(body)), bodies.join('')).toBe(true);
      const status = await edgeplane(['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/cluster: 3 member\(s\), 3 healthy, master unit-1/);
      expect(namespaces().sort()).toEqual(['epst-cl', 'epst-op', 'epst-srv1', 'epst-srv2', 'epst-sw', 'epst-u1', 'epst-u2', 'epst-u3']);
    } finally {
      if (start.exitCode === null) process.kill(-start.pid!, 'SIGINT');
    }
    expect(await exited).toBe(0);
    // The group interrupt reaches the demo directly (SIGINT) or through start.sh's trap (SIGTERM).
    expect(output).toMatch(/SIG(INT|TERM): stopping the units and removing the demo network/);
    expect(namespaces()).toEqual([]);
  }, 420_000);
});

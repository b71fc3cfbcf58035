/* The real entry point, as the service manager runs it, refuses bad configurations: exit code 2 and
 * the reasons on stderr, before touching DPDK. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'app/control/main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'ep-bad-config-'));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function control(args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function configFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('main.ts with a bad configuration', () => {
  it('names every bad field with its path and exits 2', async () => {
    const file = configFile(
      'fields.json',
      JSON.stringify({
        ports: [{ device: 'net_af_packet0', address: '10.0.1.1' }],
        routes: [{ prefix: '0.0.0.0', length: 0, port: 'net_af_packet9' }],
        services: [
          {
            name: 'web',
            vip: '10.0.1.100',
            port: 80,
            protocol: 'tcp',
            servers: [
              { address: '10.0.2.11', port: 80 },
              { address: '10.0.2', port: 80, weight: 70000 },
            ],
          },
        ],
      }),
    );
    const outcome = await control(['--config', file]);
    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe('');
    expect(outcome.stderr).toContain(`config ${file} is invalid:`);
    expect(outcome.stderr).toContain('services[0].servers[1].address: "10.0.2" is not an IPv4 or IPv6 address');
    expect(outcome.stderr).toContain('services[0].servers[1].weight: Too big');
  });

  it('reports cross-field problems', async () => {
    const file = configFile(
      'routes.json',
      JSON.stringify({
        ports: [{ device: 'net_af_packet0', address: '10.0.1.1' }],
        routes: [{ prefix: '0.0.0.0', length: 0, port: 'net_af_packet9' }],
      }),
    );
    const outcome = await control(['--config', file]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain('routes[0].port: "net_af_packet9" is not a configured port (ports: net_af_packet0)');
  });

  it('reports invalid JSON with its line and column', async () => {
    const file = configFile('syntax.json', '{\n  "ports": [\n    { "device": "net_af_packet0" "address": "10.0.1.1" }\n  ]\n}\n');
    const outcome = await control(['--config', file]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(/not valid JSON: .* at line 3 column 34/);
  });

  it('reports a file it cannot read', async () => {
    const outcome = await control(['--config', path.join(dir, 'absent.json')]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain('cannot read the file: ENOENT');
  });

  it('requires --config or --flash-config', async () => {
    const outcome = await control([]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain('give exactly one of --config FILE or --flash-config DIR');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, runCli } from './cli-program.js';
import { flashConfigJsonSchemas } from './json-schemas.js';
import { policyBytes } from './test-support/fixtures.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flash-config-cli-'));
  await writeFile(join(root, 'policy.json'), policyBytes());
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('flash-config CLI', () => {
  it('provisions an authority and a unit image, then verifies it', async () => {
    expect((await cli('authority', 'init', '--out', join(root, 'authority'), '--cluster', 'lab')).code).toBe(EXIT.ok);
    const created = await cli(
      'unit', 'create', '--authority', join(root, 'authority'), '--unit-id', 'edge-1',
      '--mgmt-addr', '198.51.100.1', '--data-addr', '203.0.113.1', '--data-addr', '2001:db8::1',
      '--cluster-addr', '192.0.2.10', '--policy', join(root, 'policy.json'),
      '--out', join(root, 'edge-1'), '--image', join(root, 'edge-1.img'),
    );
    expect(created).toMatchObject({ code: EXIT.ok, err: '' });
    const verified = await cli('verify', join(root, 'edge-1.img'));
    expect(verified.code).toBe(EXIT.ok);
    expect(verified.out).toMatch(/^OK .*edge-1\.img: unit edge-1 of cluster lab/);
    expect(verified.out).toContain('config version 3, 2 service(s): web, dns');
  });

  it('refuses an altered policy with exit code 1, naming file and reason', async () => {
    const policy = join(root, 'edge-1', 'policy.json');
    const original = await readFile(policy, 'utf8');
    await writeFile(policy, original.replace('"weight": 2', '"weight": 3'));
    const result = await cli('verify', join(root, 'edge-1'));
    await writeFile(policy, original);
    expect(result.code).toBe(EXIT.refused);
    expect(result.err).toMatch(/^REFUSED policy\.json: signature in policy\.json\.sig does not verify/);
  });

  it('re-signs an updated policy with `policy sign`', async () => {
    const updated = join(root, 'updated.json');
    await writeFile(updated, (await readFile(join(root, 'edge-1', 'policy.json'), 'utf8')).replace('"weight": 2', '"weight": 3'));
    expect((await cli('policy', 'sign', '--authority', join(root, 'authority'), '--policy', updated)).code).toBe(EXIT.ok);
    expect((await readFile(`${updated}.sig`)).length).toBeGreaterThan(60);
  });

  it('rejects bad input addresses before writing anything', async () => {
    const result = await cli(
      'unit', 'create', '--authority', join(root, 'authority'), '--unit-id', 'edge-2', '--mgmt-addr', '198.51.100.300',
      '--data-addr', '203.0.113.2', '--policy', join(root, 'policy.json'), '--out', join(root, 'edge-2'),
    );
    expect(result.code).toBe(EXIT.refused);
    expect(result.err).toBe('REFUSED identity.json: schema violation at unit.mgmtAddress: must be an IPv4 or IPv6 address');
  });

  it('reports usage errors with exit code 2', async () => {
    expect((await cli('unit', 'create', '--unit-id', 'x')).code).toBe(EXIT.usage);
    expect((await cli('authority', 'init', '--out', root, '--cluster', 'lab', '--valid-days', 'soon')).code).toBe(EXIT.usage);
  });

  it('runs as a real process whose exit status tells success from refusal', async () => {
    const run = (target: string) =>
      spawnSync(join('node_modules', '.bin', 'vite-node'), ['flash-config/cli.ts', 'verify', target], { encoding: 'utf8' });
    const good = run(join(root, 'edge-1'));
    expect(good.status, good.stderr).toBe(EXIT.ok);
    const missing = run(join(root, 'nowhere'));
    expect(missing.status).toBe(EXIT.refused);
    expect(missing.stderr).toMatch(/REFUSED .*nowhere: cannot open \(ENOENT\)/);
  });
});

describe('committed JSON Schema files', () => {
  it('match the zod schemas (regenerate with `flash-config schema --out flash-config/schema`)', async () => {
    for (const [file, schema] of Object.entries(flashConfigJsonSchemas())) {
      const committed = JSON.parse(await readFile(join(import.meta.dirname, 'schema', file), 'utf8'));
      expect(committed, file).toEqual(schema);
    }
  });
});

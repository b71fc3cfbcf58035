/* The parts of the management plane that need no data plane: roles from certificates, operator
 * certificate issuance, CLI usage errors, tables, image flashing with verification. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEdgeplane } from '../../app/cli/program.js';
import { formatTable } from '../../app/cli/table.js';
import { flashImage } from '../../app/cli/image-flash.js';
import { parseOperatorUri, roleAllows } from '../../app/mgmt/roles.js';
import { createAuthority } from '../../flash-config/authority.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'ep-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runEdgeplane(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('roles', () => {
  it('reads the role from an operator URI and nothing else', () => {
    expect(parseOperatorUri('urn:edgeplane:operator:alice:role:operator')).toEqual({ name: 'alice', role: 'operator' });
    expect(parseOperatorUri('urn:edgeplane:operator:bob:role:read-only')).toEqual({ name: 'bob', role: 'read-only' });
    expect(parseOperatorUri('urn:edgeplane:operator:bob:role:admin')).toBeUndefined();
    expect(parseOperatorUri('urn:edgeplane:unit:unit1')).toBeUndefined();
    expect(roleAllows('read-only', 'operator')).toBe(false);
    expect(roleAllows('operator', 'read-only')).toBe(true);
  });
});

describe('edgeplane operator-cert', () => {
  it('issues a client-only certificate from the cluster CA with the role in its SAN URI', async () => {
    const authority = path.join(scratch, 'authority');
    await createAuthority({ dir: authority, clusterName: 'lab' });
    const out = path.join(scratch, 'victor');
    const result = await run(['operator-cert', '--authority', authority, '--name', 'victor', '--role', 'read-only', '--out', out]);
    expect(result.code, result.err).toBe(0);
    const certificate = new X509Certificate(readFileSync(path.join(out, 'operator.crt')));
    const ca = new X509Certificate(readFileSync(path.join(authority, 'ca.crt')));
    expect(certificate.verify(ca.publicKey)).toBe(true);
    expect(certificate.subjectAltName).toBe('URI:urn:edgeplane:operator:victor:role:read-only');
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(statSync(path.join(out, 'operator.key')).mode & 0o777).toBe(0o600);

    const again = await run(['operator-cert', '--authority', authority, '--name', 'victor', '--role', 'read-only', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/EEXIST/);
    const badRole = await run(['operator-cert', '--authority', authority, '--name', 'x', '--role', 'root', '--out', path.join(scratch, 'x')]);
    expect(badRole.code).toBe(2);
    expect(badRole.err).toMatch(/Allowed choices are read-only, operator/);
  });
});

describe('edgeplane usage errors', () => {
  it('exits 2 with a reason for bad arguments, before contacting anything', async () => {
    const badServer = await run(['--credentials', scratch, 'drain', 'web', '10.0.2.11']);
    expect(badServer.code).toBe(2);
    expect(badServer.err).toMatch(/"10.0.2.11" is not address:port/);
    const noCredentials = await run(['status']);
    expect(noCredentials.code).toBe(2);
    expect(noCredentials.err).toMatch(/give --credentials DIR/);
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['--help'])).code).toBe(0);
  });
});

describe('tables', () => {
  it('aligns text left and numbers right', () => {
    expect(formatTable(['name', 'n'], [['a', 1], ['bbb', 100]])).toBe('NAME    N\na       1\nbbb   100');
  });
});

describe('image flash', () => {
  it('writes, reads back and verifies, reporting progress', async () => {
    const image = path.join(scratch, 'disk.img');
    const target = path.join(scratch, 'target.img');
    const data = randomBytes(9 * 1024 * 1024 + 17);
    writeFileSync(image, data);
    const phases: string[] = [];
    const result = await flashImage(image, target, (done, total, phase) => phases.push(`${phase} ${done}/${total}`));
    expect(result.bytes).toBe(data.length);
    expect(readFileSync(target).equals(data)).toBe(true);
    expect(phases.at(-1)).toBe(`verify ${data.length}/${data.length}`);
    expect(phases.filter((p) => p.startsWith('write'))).toHaveLength(3);
  });
});

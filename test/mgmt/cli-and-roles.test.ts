/* The parts of the management plane that need no data plane: roles from certificates, operator
 * certificate issuance, CLI usage errors, tables, image flashing with verification, the image build
 * wrapper's checks and failures (never a real build), and how cluster-wide views merge members'
 * answers. */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEdgeplane, unitRanges } from '../../app/cli/program.js';
import { mergeServices, sumCounters, type UnitAnswer } from '../../app/mgmt/cluster-views.js';
import type { ServiceView } from '../../app/mgmt/views.js';
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

describe('edgeplane image build', () => {
  it('refuses bad arguments before running anything', async () => {
    const relative = await run(['image', 'build', '--out', 'out/image']);
    expect(relative.code).toBe(2);
    expect(relative.err).toMatch(/--out out\/image must be an absolute path/);
    const file = path.join(scratch, 'not-a-dir');
    writeFileSync(file, '');
    const notDir = await run(['image', 'build', '--out', file]);
    expect(notDir.code).toBe(2);
    expect(notDir.err).toMatch(/exists and is not a directory/);
    const noScript = await run(['image', 'build', '--out', path.join(scratch, 'o'), '--script', path.join(scratch, 'missing.sh')]);
    expect(noScript.code).toBe(2);
    expect(noScript.err).toMatch(/missing\.sh does not exist/);
    expect((await run(['image', 'build', '--frobnicate'])).code).toBe(2);
  });

  it("follows the build's steps and reports its own failure reason, the full output in the log", async () => {
    // A script speaking image/build.sh's progress lines (its real progress library) that fails at step 2.
    const script = path.join(scratch, 'failing-build.sh');
    const progress = path.resolve(import.meta.dirname, '../../image/lib/progress.sh');
    writeFileSync(script, `source ${progress}\nnote "arguments: $*"\nstep "1/8 build root"\nstep "2/8 control application and native addon"\ndie "missing host tool 'mmdebstrap'"\n`);
    chmodSync(script, 0o755);
    const out = path.join(scratch, 'image-out');
    const log = path.join(scratch, 'build.log');
    const result = await run(['image', 'build', '--without-app', '--out', out, '--log', log, '--script', script]);
    expect(result.code).toBe(1);
    expect(result.err).toBe(`error: image build exited with 1: missing host tool 'mmdebstrap' (full output in ${log})`);
    const logged = readFileSync(log, 'utf8');
    expect(logged).toContain(`arguments: --without-app ${out}`);
    expect(logged).toMatch(/== 2\/8 control application and native addon/);
  });
});

describe('cluster-wide views', () => {
  const service = (servers: [string, number, number, number][]): ServiceView[] => [
    {
      name: 'web',
      vip: '10.0.1.100',
      port: 80,
      protocol: 'tcp',
      activeFlows: servers.reduce((sum, [, , active]) => sum + active, 0),
      servers: servers.map(([server, weight, activeFlows, flows]) => ({
        service: 'web', address: server.split(':')[0]!, port: 80, server, weight, configuredWeight: 1, state: 'active', activeFlows, flows, packets: flows * 10, bytes: flows * 1000, handshakes: flows, handshakeMicros: flows * 50,
      })),
    },
  ];
  const answer = (id: string, services: ServiceView[]): UnitAnswer => ({
    id, address: '10.77.0.1', ok: true, answeredInMs: 1,
    value: { unit: { id, state: 'running', uptimeSeconds: 1, ports: [] }, cluster: { role: 'member', masterId: 'a', ownedUnits: 1, members: 2 }, configVersion: { configDigest: 'x', revision: 0 }, services },
  });

  it("adds every member's server counters and keeps each member's share; a drained server with connections left is draining", () => {
    const merged = mergeServices([
      answer('a', service([['10.0.2.11:80', 0, 1, 5], ['10.0.2.12:80', 1, 0, 7]])),
      answer('b', service([['10.0.2.11:80', 0, 0, 3], ['10.0.2.12:80', 1, 2, 4]])),
      { id: 'c', address: '10.77.0.13', ok: false, error: 'timeout' },
    ]);
    expect(merged[0]!.activeFlows).toBe(3);
    expect(merged[0]!.servers.map((s) => [s.server, s.state, s.activeFlows, s.flows, s.bytes])).toEqual([
      ['10.0.2.11:80', 'draining', 1, 8, 8000],
      ['10.0.2.12:80', 'active', 2, 11, 11000],
    ]);
    expect(merged[0]!.servers[0]!.units.map((u) => [u.unit, u.weight, u.flows])).toEqual([['a', 0, 5], ['b', 0, 3]]);
  });

  it('sums counters by port device and server, not identifiers', () => {
    const a = { ports: [{ id: 0, device: 'p0', rxPackets: 1 }, { id: 1, device: 'p1', rxPackets: 2 }], drops: { ttl: 1 }, servers: [{ service: 'web', server: 's:80', serviceId: 1, port: 80, flows: 2 }] };
    const b = { ports: [{ id: 1, device: 'p1', rxPackets: 5 }, { id: 0, device: 'p0', rxPackets: 7 }], drops: { ttl: 2, held: 3 }, servers: [{ service: 'web', server: 's:80', serviceId: 1, port: 80, flows: 4 }] };
    expect(sumCounters(a, b)).toEqual({
      ports: [{ id: 0, device: 'p0', rxPackets: 8 }, { id: 1, device: 'p1', rxPackets: 7 }],
      drops: { ttl: 3, held: 3 },
      servers: [{ service: 'web', server: 's:80', serviceId: 1, port: 80, flows: 6 }],
    });
  });

  it('shows work units as ranges', () => {
    expect(unitRanges([0, 1, 2, 5, 7, 8])).toBe('0-2, 5, 7-8');
    expect(unitRanges([])).toBe('');
  });
});

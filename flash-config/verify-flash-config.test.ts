import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { join } from 'node:path';
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { verifyFlashConfig } from './verify-flash-config.js';
import { provisionUnit } from './unit-provisioning.js';
import { policyBytes, samplePolicy, scratchAuthority, unitRequest } from './test-support/fixtures.js';
import { expectFlashError } from './test-support/expect-flash-error.js';
import { loadAuthority, revokeSerial, type Authority } from './authority.js';
import { signPolicy, writePolicySignature } from './policy-signing.js';
import { issueUnitCertificate, validityFromNow } from './certificate-issuer.js';
import { generateKeyPair, signDetached } from './keys.js';
import { x509 } from './x509-provider.js';

const DAY_MS = 86_400_000;
let unitCounter = 0;

/** Provisions a fresh unit directory (unit-N) and returns its path and serial. */
async function freshUnit(overrides: Parameters<typeof unitRequest>[1] = {}, from: Authority = authority) {
  unitCounter += 1;
  const dir = join(scratch.root, `unit-${unitCounter}`);
  const provisioned = await provisionUnit(from, unitRequest(`unit-${unitCounter}`, overrides), dir);
  return { dir, ...provisioned };
}

let scratch: Awaited<ReturnType<typeof scratchAuthority>>;
let authority: Authority;
beforeAll(async () => {
  scratch = await scratchAuthority();
  authority = scratch.authority;
});
afterAll(() => scratch.cleanup());

describe('verifyFlashConfig happy path', () => {
  it('accepts a freshly provisioned unit and returns its identity, policy and TLS material', async () => {
    const dir = join(scratch.root, 'u1');
    const provisioned = await provisionUnit(authority, unitRequest('unit-1'), dir);
    const verified = await verifyFlashConfig(dir);
    expect(verified.identity.unit.id).toBe('unit-1');
    expect(verified.identity.configVersion).toBe(3);
    expect(verified.policy.services.map((s) => s.name)).toEqual(['web', 'dns']);
    expect(verified.unit.serialNumber).toBe(provisioned.unitSerial);
    expect(verified.unit.addresses).toEqual(['198.51.100.1', '203.0.113.1', '2001:db8::1']);
    expect(verified.tls.key).toContain('PRIVATE KEY');
    expect((await stat(join(dir, 'unit.key'))).mode & 0o777).toBe(0o600);
  });
});

describe('verifySignedPolicy (a policy another cluster unit passes on)', () => {
  it('accepts a newer policy signed by the cluster policy key, refuses a changed, foreign-signed or invalid one', async () => {
    const { dir } = await freshUnit();
    const verified = await verifyFlashConfig(dir);
    expect(verified.verifySignedPolicy(verified.signedPolicy).configVersion).toBe(3);
    const newer = policyBytes({ ...samplePolicy, configVersion: 4 });
    const { signature } = signPolicy(authority, newer, 'policy.json');
    expect(verified.verifySignedPolicy({ bytes: newer, signature }).configVersion).toBe(4);
    const forged = policyBytes({ ...samplePolicy, configVersion: 9 });
    expect(() => verified.verifySignedPolicy({ bytes: forged, signature })).toThrow(/signature does not verify with the cluster's policy signer key/);
    const foreign = await scratchAuthority();
    try {
      const foreignSigned = signPolicy(foreign.authority, newer, 'policy.json');
      expect(() => verified.verifySignedPolicy({ bytes: newer, signature: foreignSigned.signature })).toThrow(/signed by another authority/);
    } finally {
      await foreign.cleanup();
    }
    const unsignable = Buffer.from(JSON.stringify({ ...samplePolicy, configVersion: -1 }));
    expect(() => verified.verifySignedPolicy({ bytes: unsignable, signature: signDetached(unsignable, authority.policyKeyPem) })).toThrow(/configVersion/);
  });
});

describe('verifyFlashConfig refuses a bad flash config, naming the file and reason', () => {
  it('policy changed by one byte after signing', async () => {
    const { dir } = await freshUnit();
    const policy = await readFile(join(dir, 'policy.json'), 'utf8');
    await writeFile(join(dir, 'policy.json'), policy.replace('"port": 8443', '"port": 8444'));
    await expectFlashError(verifyFlashConfig(dir), 'policy.json', /signature in policy\.json\.sig does not verify/);
  });

  it('identity changed after signing', async () => {
    const { dir } = await freshUnit();
    const identity = await readFile(join(dir, 'identity.json'), 'utf8');
    await writeFile(join(dir, 'identity.json'), identity.replace('"clusterPort": 7946', '"clusterPort": 7947'));
    await expectFlashError(verifyFlashConfig(dir), 'identity.json', /signature in identity\.json\.sig does not verify/);
  });

  it('unit certificate expired (notAfter in the past)', async () => {
    const { dir } = await freshUnit({
      validity: { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z') },
    });
    await expectFlashError(verifyFlashConfig(dir), 'unit.crt', /^expired at 2021-01-01T00:00:00\.000Z/);
  });

  it('unit certificate expired by the verification time given in options.now', async () => {
    const { dir } = await freshUnit({ validity: validityFromNow(30) });
    await expect(verifyFlashConfig(dir, { now: new Date(Date.now() + 29 * DAY_MS) })).resolves.toBeDefined();
    await expectFlashError(verifyFlashConfig(dir, { now: new Date(Date.now() + 31 * DAY_MS) }), 'unit.crt', /^expired at/);
  });

  it('unit certificate not yet valid', async () => {
    const notBefore = new Date(Date.now() + DAY_MS);
    const { dir } = await freshUnit({ validity: { notBefore, notAfter: new Date(notBefore.getTime() + DAY_MS) } });
    await expectFlashError(verifyFlashConfig(dir), 'unit.crt', new RegExp(`^not valid yet: valid from ${notBefore.toISOString().slice(0, 19)}`));
  });

  it('unit certificate from a foreign CA with the same cluster name', async () => {
    const foreign = await scratchAuthority('lab');
    try {
      const { dir } = await freshUnit();
      const stranger = await provisionUnit(foreign.authority, unitRequest('unit-1'), join(foreign.root, 'stranger'));
      expect(stranger.identity.cluster.name).toBe('lab');
      await copyFile(join(foreign.root, 'stranger', 'unit.crt'), join(dir, 'unit.crt'));
      await expectFlashError(verifyFlashConfig(dir), 'unit.crt', /signature does not verify with the cluster CA key/);
    } finally {
      await foreign.cleanup();
    }
  });

  it('unit certificate from a foreign CA of another cluster', async () => {
    const foreign = await scratchAuthority('elsewhere');
    try {
      const { dir } = await freshUnit();
      await provisionUnit(foreign.authority, unitRequest('unit-1'), join(foreign.root, 'stranger'));
      await copyFile(join(foreign.root, 'stranger', 'unit.crt'), join(dir, 'unit.crt'));
      await expectFlashError(verifyFlashConfig(dir), 'unit.crt', /issued by 'CN=elsewhere cluster CA, O=edgeplane', not by the cluster CA 'CN=lab cluster CA/);
    } finally {
      await foreign.cleanup();
    }
  });

  it('unit.key of another unit', async () => {
    const mine = await freshUnit();
    const other = await freshUnit();
    await copyFile(join(other.dir, 'unit.key'), join(mine.dir, 'unit.key'));
    await expectFlashError(verifyFlashConfig(mine.dir), 'unit.key', /private key does not match the public key in unit\.crt/);
  });

  it('unit id in the certificate differs from identity.json', async () => {
    const mine = await freshUnit();
    const other = await freshUnit();
    await copyFile(join(other.dir, 'unit.crt'), join(mine.dir, 'unit.crt'));
    await expectFlashError(
      verifyFlashConfig(mine.dir),
      'identity.json',
      new RegExp(`unit\\.id '${mine.identity.unit.id}' does not match the unit id '${other.identity.unit.id}' in unit\\.crt`),
    );
  });

  it('policy re-signed with another configVersion than identity.json', async () => {
    const { dir } = await freshUnit();
    const newer = policyBytes({ ...samplePolicy, configVersion: 4 });
    await writeFile(join(dir, 'policy.json'), newer);
    await writePolicySignature(authority, newer, 'policy.json', join(dir, 'policy.json.sig'));
    await expectFlashError(verifyFlashConfig(dir), 'policy.json', /configVersion 4 does not match configVersion 3 in identity\.json/);
  });

  it('missing required file', async () => {
    const { dir } = await freshUnit();
    await rm(join(dir, 'policy.json.sig'));
    await expectFlashError(verifyFlashConfig(dir), 'policy.json.sig', /required file is missing/);
  });

  it('policy with an invalid address names the JSON path', async () => {
    const { dir } = await freshUnit();
    const policy = await readFile(join(dir, 'policy.json'), 'utf8');
    await writeFile(join(dir, 'policy.json'), policy.replace('"2001:db8:1::1"', '"2001:db8:1::zz"'));
    await expectFlashError(verifyFlashConfig(dir), 'policy.json', /services\[1\]\.servers\[0\]\.address: must be an IPv4 or IPv6 address/);
  });

  it('identity with a wrong field type names the JSON path', async () => {
    const { dir } = await freshUnit();
    const identity = JSON.parse(await readFile(join(dir, 'identity.json'), 'utf8'));
    identity.network.clusterPort = '7946';
    await writeFile(join(dir, 'identity.json'), JSON.stringify(identity));
    await expectFlashError(verifyFlashConfig(dir), 'identity.json', /network\.clusterPort: Invalid input: expected number/);
  });

  it('identity that is not JSON at all', async () => {
    const { dir } = await freshUnit();
    const identity = await readFile(join(dir, 'identity.json'), 'utf8');
    await writeFile(join(dir, 'identity.json'), identity.slice(0, 40));
    await expectFlashError(verifyFlashConfig(dir), 'identity.json', /^not valid JSON:/);
  });

  it('unit certificate revoked by the CA', async () => {
    const { dir, unitSerial } = await freshUnit();
    await revokeSerial(scratch.authorityDir, { serial: unitSerial });
    for (const file of ['revoked.json', 'revoked.json.sig']) await copyFile(join(scratch.authorityDir, file), join(dir, file));
    await expectFlashError(verifyFlashConfig(dir), 'unit.crt', new RegExp(`serial ${unitSerial} was revoked at`));
    authority = await loadAuthority(scratch.authorityDir);
  });

  it('revocation list emptied after signing', async () => {
    const { dir, unitSerial } = await freshUnit();
    await revokeSerial(scratch.authorityDir, { serial: unitSerial });
    for (const file of ['revoked.json', 'revoked.json.sig']) await copyFile(join(scratch.authorityDir, file), join(dir, file));
    const list = JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8'));
    expect(list.revoked.map((entry: { serial: string }) => entry.serial)).toContain(unitSerial);
    await writeFile(join(dir, 'revoked.json'), JSON.stringify({ ...list, revoked: [] }, null, 2) + '\n');
    await expectFlashError(verifyFlashConfig(dir), 'revoked.json', /signature in revoked\.json\.sig does not verify/);
  });

  it('revocation list signed by another authority', async () => {
    const foreign = await scratchAuthority('lab');
    try {
      const { dir } = await freshUnit();
      for (const file of ['revoked.json', 'revoked.json.sig']) await copyFile(join(foreign.authorityDir, file), join(dir, file));
      await expectFlashError(verifyFlashConfig(dir), 'revoked.json', /signature in revoked\.json\.sig does not verify/);
    } finally {
      await foreign.cleanup();
    }
  });

  it('unit certificate without clientAuth (cannot do mutual TLS)', async () => {
    const { dir, identity } = await freshUnit();
    const keys = await generateKeyPair();
    const serverOnly = await issueUnitCertificate({
      ca: authority.ca,
      unitId: identity.unit.id,
      addresses: [identity.unit.mgmtAddress],
      publicKey: keys.publicKey,
      validity: validityFromNow(1),
      extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth],
    });
    await writeFile(join(dir, 'unit.crt'), serverOnly.toString('pem'));
    await expectFlashError(verifyFlashConfig(dir), 'unit.crt', /extendedKeyUsage lacks clientAuth/);
  });
});

describe('verifyFlashConfig property', () => {
  it('refuses policy.json after any single-byte change, blaming policy.json', async () => {
    const { dir } = await freshUnit();
    const original = await readFile(join(dir, 'policy.json'));
    await fc.assert(
      fc.asyncProperty(fc.nat(original.length - 1), fc.integer({ min: 1, max: 255 }), async (index, delta) => {
        const changed = Buffer.from(original);
        changed[index] = ((changed[index] ?? 0) + delta) % 256;
        await writeFile(join(dir, 'policy.json'), changed);
        await expectFlashError(verifyFlashConfig(dir), 'policy.json', /./);
      }),
      { numRuns: 40 },
    );
    await writeFile(join(dir, 'policy.json'), original);
    await expect(verifyFlashConfig(dir)).resolves.toBeDefined();
  });
});

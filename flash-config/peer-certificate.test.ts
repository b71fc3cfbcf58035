import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { verifyPeerCertificate } from './peer-certificate.js';
import { verifyFlashConfig } from './verify-flash-config.js';
import { provisionUnit } from './unit-provisioning.js';
import { revokeSerial } from './authority.js';
import { revokedSerials } from './revocation-list.js';
import { CertificateRejectedError } from './flash-config-error.js';
import { scratchAuthority, unitRequest } from './test-support/fixtures.js';

let home: Awaited<ReturnType<typeof scratchAuthority>>;
let foreign: Awaited<ReturnType<typeof scratchAuthority>>;
beforeAll(async () => {
  home = await scratchAuthority('lab');
  foreign = await scratchAuthority('lab');
});
afterAll(async () => {
  await home.cleanup();
  await foreign.cleanup();
});

async function rejection(promise: Promise<unknown>): Promise<CertificateRejectedError> {
  const error = await promise.then(() => undefined, (reason: unknown) => reason);
  expect(error).toBeInstanceOf(CertificateRejectedError);
  return error as CertificateRejectedError;
}

describe('verifyPeerCertificate', () => {
  it('accepts a peer of the same cluster and extracts its unit id and addresses', async () => {
    await provisionUnit(home.authority, unitRequest('unit-1'), join(home.root, 'u1'));
    await provisionUnit(home.authority, unitRequest('unit-2'), join(home.root, 'u2'));
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const peerPem = await readFile(join(home.root, 'u2', 'unit.crt'), 'utf8');
    const peer = await me.verifyPeer(peerPem);
    expect(peer.unitId).toBe('unit-2');
    expect(peer.addresses).toEqual(['198.51.100.2', '203.0.113.2', '2001:db8::2']);
    await expect(verifyPeerCertificate(Buffer.from(peerPem), { ca: me.caCertificate })).resolves.toMatchObject({ unitId: 'unit-2' });
  });

  it('refuses a peer certified by a foreign CA', async () => {
    await provisionUnit(foreign.authority, unitRequest('unit-2'), join(foreign.root, 'stranger'));
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const error = await rejection(me.verifyPeer(await readFile(join(foreign.root, 'stranger', 'unit.crt'), 'utf8')));
    expect(error.reason).toMatch(/signature does not verify with the cluster CA key/);
  });

  it('refuses an expired peer at the given time', async () => {
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const peerPem = await readFile(join(home.root, 'u2', 'unit.crt'), 'utf8');
    const error = await rejection(me.verifyPeer(peerPem, new Date(Date.now() + 6 * 365 * 86_400_000)));
    expect(error.reason).toMatch(/^expired at/);
  });

  it('refuses a revoked peer', async () => {
    const peer = await provisionUnit(home.authority, unitRequest('unit-3'), join(home.root, 'u3'));
    const list = await revokeSerial(home.authorityDir, { serial: peer.unitSerial, unitId: 'unit-3' });
    const ca = (await verifyFlashConfig(join(home.root, 'u1'))).caCertificate;
    const peerPem = await readFile(join(home.root, 'u3', 'unit.crt'), 'utf8');
    await expect(verifyPeerCertificate(peerPem, { ca })).resolves.toMatchObject({ unitId: 'unit-3' });
    const error = await rejection(verifyPeerCertificate(peerPem, { ca, revokedSerials: revokedSerials(list) }));
    expect(error.reason).toBe(`serial ${peer.unitSerial} was revoked at ${list.revoked[0]?.revokedAt}`);
  });

  it('refuses the policy signer certificate presented as a unit', async () => {
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const error = await rejection(me.verifyPeer(await readFile(join(home.root, 'u1', 'policy-signer.crt'), 'utf8')));
    expect(error.reason).toBe('extendedKeyUsage lacks serverAuth');
  });

  it('refuses the CA certificate presented as a unit', async () => {
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const error = await rejection(me.verifyPeer(await readFile(join(home.root, 'u1', 'ca.crt'), 'utf8')));
    expect(error.reason).toBe('is a CA certificate, expected an end-entity certificate');
  });

  it('refuses bytes that are not a certificate', async () => {
    const me = await verifyFlashConfig(join(home.root, 'u1'));
    const error = await rejection(me.verifyPeer('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'));
    expect(error.reason).toMatch(/^not a PEM or DER X\.509 certificate/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { verifyFlashConfig } from './verify-flash-config.js';
import { provisionUnit } from './unit-provisioning.js';
import { scratchAuthority, unitRequest } from './test-support/fixtures.js';
import type { Authority } from './authority.js';

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

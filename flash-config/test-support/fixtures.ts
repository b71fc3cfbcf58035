import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthority, loadAuthority, type Authority } from '../authority.js';
import type { UnitRequest } from '../unit-provisioning.js';

export const samplePolicy = {
  configVersion: 3,
  cluster: { keepaliveIntervalMs: 100, memberDeadAfterMs: 400, rebalanceIntervalMs: 2000 },
  services: [
    {
      name: 'web',
      vip: '192.0.2.10',
      protocol: 'tcp',
      port: 443,
      algorithm: 'maglev',
      mode: 'nat',
      servers: [
        { address: '10.1.0.11', port: 8443, weight: 1 },
        { address: '10.1.0.12', port: 8443, weight: 2 },
      ],
    },
    {
      name: 'dns',
      vip: '2001:db8::53',
      protocol: 'udp',
      port: 53,
      algorithm: 'wrr',
      mode: 'dsr',
      servers: [{ address: '2001:db8:1::1', port: 53, weight: 1 }],
    },
  ],
};

export const policyBytes = (policy: object = samplePolicy) => Buffer.from(JSON.stringify(policy, null, 2) + '\n');

export function unitRequest(unitId: string, overrides: Partial<UnitRequest> = {}): UnitRequest {
  const index = Number(unitId.replace(/\D/g, '') || '1');
  return {
    unitId,
    mgmtAddress: `198.51.100.${index}`,
    dataAddresses: [`203.0.113.${index}`, `2001:db8:0:0::${index}`],
    network: { mgmtPrefixLength: 24, mgmtGateway: '198.51.100.254', dataPrefixLength: 24, clusterAddresses: ['192.0.2.10'], clusterPort: 7946 },
    policyBytes: policyBytes(),
    policySource: 'policy.json',
    ...overrides,
  };
}

/** A scratch directory with a fresh authority; `cleanup` removes everything. */
export async function scratchAuthority(clusterName = 'lab'): Promise<{ root: string; authorityDir: string; authority: Authority; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'flash-config-test-'));
  const authorityDir = join(root, 'authority');
  await createAuthority({ dir: authorityDir, clusterName });
  return { root, authorityDir, authority: await loadAuthority(authorityDir), cleanup: () => rm(root, { recursive: true, force: true }) };
}

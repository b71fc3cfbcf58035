/* Flash configs for the cluster tests, made by the real flash-config library: a home authority,
 * a foreign one, and units that are valid, expired, revoked or on another configuration version. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthority, loadAuthority, provisionUnit, revokeSerial } from '../../../flash-config/index.js';

/** Version 4 adds a virtual service, so a member that adopted it shows it. */
export const policy = (configVersion: number) => ({
  configVersion,
  cluster: { keepaliveIntervalMs: 50, memberDeadAfterMs: 500, masterSilenceMs: 100, rebalanceIntervalMs: 2000 },
  services:
    configVersion >= 4
      ? [{ name: `web-v${configVersion}`, vip: '10.78.0.100', protocol: 'tcp', port: 80, algorithm: 'maglev', mode: 'nat', servers: [{ address: '10.78.1.1', port: 80 }] }]
      : [],
});

const DAY = 86_400_000;

export interface UnitConfig {
  unitId: string;
  dir: string;
  /** Time the unit verifies its own flash config at (an expired unit boots "in the past"). */
  flashNow?: string;
  /** The unit passes on its policy rewritten to this configuration version, keeping the old
   * signature: a forged policy (the harness stands in for a tampered unit). */
  forgeVersion?: number;
}

/** `policyOf`: the signed policy of the good units (unit-1..4) by slot instead of `policy(3)`. */
export async function provisionUnits(addressOf: (slot: number) => string, policyOf?: (slot: number) => object) {
  const root = await mkdtemp(join(tmpdir(), 'cluster-test-'));
  // Authorities from 60 days ago, so an expired unit certificate can have been valid once.
  for (const name of ['home', 'foreign']) await createAuthority({ dir: join(root, name), clusterName: 'lab', now: new Date(Date.now() - 60 * DAY) });
  const make = async (authorityName: string, slot: number, unitId: string, options: { version?: number; policy?: object; validity?: { notBefore: Date; notAfter: Date } } = {}) => {
    const authority = await loadAuthority(join(root, authorityName));
    const dir = join(root, unitId);
    const { unitSerial } = await provisionUnit(
      authority,
      {
        unitId,
        mgmtAddress: addressOf(slot),
        dataAddresses: [`10.78.0.${10 + slot}`],
        network: { mgmtPrefixLength: 24, dataPrefixLength: 24, clusterAddresses: ['10.78.0.100'], clusterPort: 7946 },
        policyBytes: Buffer.from(JSON.stringify(options.policy ?? policy(options.version ?? 3))),
        policySource: 'policy.json',
        ...(options.validity ? { validity: options.validity } : {}),
      },
      dir,
    );
    return { unitId, dir, unitSerial };
  };
  // The revoked unit is provisioned before its serial is revoked; every unit after carries the list.
  const revoked = await make('home', 9, 'unit-revoked');
  await revokeSerial(join(root, 'home'), { serial: revoked.unitSerial, unitId: revoked.unitId });
  const now = Date.now();
  const units = {
    good: await Promise.all([1, 2, 3, 4].map((slot) => make('home', slot, `unit-${slot}`, policyOf ? { policy: policyOf(slot) } : {}))),
    revoked,
    foreign: await make('foreign', 5, 'unit-foreign'),
    expired: { ...(await make('home', 6, 'unit-expired', { validity: { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) } })), flashNow: new Date(now - 10 * DAY).toISOString() },
    oldVersion: await make('home', 7, 'unit-oldversion', { version: 2 }),
    vetoed: await make('home', 8, 'unit-vetoed'),
    newVersion: await make('home', 10, 'unit-newversion', { version: 4 }),
    forged: { ...(await make('home', 11, 'unit-forged')), forgeVersion: 9 },
  };
  return { root, units, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/* Test certificates: a cluster authority with a unit (the management server's identity on
 * 127.0.0.1), operators of both roles, and an operator of a second, foreign cluster. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAuthority, loadAuthority } from '../../flash-config/authority.js';
import { policyBytes, unitRequest } from '../../flash-config/test-support/fixtures.js';
import { provisionUnit } from '../../flash-config/unit-provisioning.js';
import { issueOperatorCertificate, writeOperatorCredentials } from '../../app/mgmt/operator-certificate.js';
import type { Operator } from '../../app/mgmt/roles.js';
import type { ManagementTls } from '../../app/mgmt/server.js';

export interface TestCredentials {
  root: string;
  /** The unit's TLS material for the management server. */
  server: ManagementTls;
  /** Directories with operator.crt, operator.key, ca.crt. */
  admin: string;
  viewer: string;
  /** An operator certificate from another cluster's CA (its ca.crt is that other CA). */
  foreign: string;
  /** The unit certificate as a client: from the right CA but naming no operator. */
  unitAsClient: { cert: string; key: string; ca: string };
  cleanup(): void;
}

export async function createTestCredentials(): Promise<TestCredentials> {
  const root = mkdtempSync(path.join(tmpdir(), 'ep-mgmt-creds-'));
  const authorityDir = path.join(root, 'authority');
  const foreignDir = path.join(root, 'foreign-authority');
  await createAuthority({ dir: authorityDir, clusterName: 'lab' });
  await createAuthority({ dir: foreignDir, clusterName: 'elsewhere' });
  const unitDir = path.join(root, 'unit');
  await provisionUnit(await loadAuthority(authorityDir), unitRequest('unit1', { mgmtAddress: '127.0.0.1', policyBytes: policyBytes() }), unitDir);
  const issue = async (authority: string, operator: Operator, dir: string) => {
    await writeOperatorCredentials(path.join(root, dir), await issueOperatorCertificate(authority, operator));
    return path.join(root, dir);
  };
  const read = (file: string) => readFileSync(path.join(unitDir, file), 'utf8');
  const server = { ca: read('ca.crt'), cert: read('unit.crt'), key: read('unit.key') };
  return {
    root,
    server,
    admin: await issue(authorityDir, { name: 'alice', role: 'operator' }, 'admin'),
    viewer: await issue(authorityDir, { name: 'victor', role: 'read-only' }, 'viewer'),
    foreign: await issue(foreignDir, { name: 'mallory', role: 'operator' }, 'foreign'),
    unitAsClient: server,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

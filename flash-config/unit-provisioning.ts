import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Authority } from './authority.js';
import { claimedAddresses, identitySchema, type Identity } from './identity-schema.js';
import { PRIVATE_FILE_MODE, UNIT_FILES } from './layout.js';
import { FlashConfigError } from './flash-config-error.js';
import { parseValue } from './parse-json.js';
import { generateKeyPair, privateKeyToPem, signDetached } from './keys.js';
import { issueUnitCertificate, validityFromNow, type Validity } from './certificate-issuer.js';
import { signPolicy } from './policy-signing.js';
import { normalizeSerial } from './revocation-list.js';

export interface UnitRequest {
  unitId: string;
  mgmtAddress: string;
  dataAddresses: string[];
  /** The data NICs' IPv6 addresses in NIC order (identity.json unit.dataAddresses6). */
  dataAddresses6?: string[];
  network: Identity['network'];
  /** Exact bytes of policy.json; they are signed and copied unchanged. */
  policyBytes: Uint8Array;
  /** Names the policy in error messages (usually its path). */
  policySource: string;
  /** Certificate validity; defaults to five years from now. */
  validity?: Validity;
}

export interface ProvisionedUnit {
  identity: Identity;
  unitSerial: string;
}

const DEFAULT_UNIT_DAYS = 5 * 365;

function buildIdentity(authority: Authority, request: UnitRequest, configVersion: number): Identity {
  return parseValue(
    UNIT_FILES.identity,
    {
      schemaVersion: 1,
      cluster: { name: authority.description.clusterName, id: authority.description.clusterId },
      configVersion,
      unit: {
        id: request.unitId,
        mgmtAddress: request.mgmtAddress,
        dataAddresses: request.dataAddresses,
        ...(request.dataAddresses6?.length ? { dataAddresses6: request.dataAddresses6 } : {}),
      },
      network: request.network,
    },
    identitySchema,
  );
}

async function ensureEmptyDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0) {
    throw new FlashConfigError(dir, `output directory is not empty (${entries.join(', ')}); refusing to mix two units' files`);
  }
}

/** Writes a complete unit flash config into `outDir` (which must be empty or absent). */
export async function provisionUnit(authority: Authority, request: UnitRequest, outDir: string): Promise<ProvisionedUnit> {
  const { policy, signature: policySignature } = signPolicy(authority, request.policyBytes, request.policySource);
  const identity = buildIdentity(authority, request, policy.configVersion);
  const identityBytes = Buffer.from(JSON.stringify(identity, null, 2) + '\n');
  const keys = await generateKeyPair();
  const certificate = await issueUnitCertificate({
    ca: authority.ca,
    unitId: identity.unit.id,
    addresses: [...new Set(claimedAddresses(identity))],
    publicKey: keys.publicKey,
    validity: request.validity ?? validityFromNow(DEFAULT_UNIT_DAYS),
  });

  await ensureEmptyDirectory(outDir);
  const files: [string, string | Uint8Array, number?][] = [
    [UNIT_FILES.identity, identityBytes],
    [UNIT_FILES.identitySignature, signDetached(identityBytes, authority.policyKeyPem)],
    [UNIT_FILES.caCertificate, authority.ca.certificate.toString('pem') + '\n'],
    [UNIT_FILES.unitCertificate, certificate.toString('pem') + '\n'],
    [UNIT_FILES.unitKey, await privateKeyToPem(keys.privateKey), PRIVATE_FILE_MODE],
    [UNIT_FILES.policy, request.policyBytes],
    [UNIT_FILES.policySignature, policySignature],
    [UNIT_FILES.policySignerCertificate, authority.policySignerCertificate.toString('pem') + '\n'],
    [UNIT_FILES.revocationList, authority.revocationListFile.bytes],
    [UNIT_FILES.revocationListSignature, authority.revocationListFile.signature],
  ];
  for (const [file, data, mode] of files) {
    await writeFile(join(outDir, file), data, { mode: mode ?? 0o644, flag: 'wx' });
  }
  return { identity, unitSerial: normalizeSerial(certificate.serialNumber) };
}

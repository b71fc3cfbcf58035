import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { x509 } from './x509-provider.js';
import { AUTHORITY_FILES, PRIVATE_FILE_MODE } from './layout.js';
import { FlashConfigError, CertificateRejectedError } from './flash-config-error.js';
import { authorityDescriptionSchema, type AuthorityDescription } from './authority-schema.js';
import { parseJson, parseValue } from './parse-json.js';
import { generateKeyPair, importSigningKey, privateKeyToPem, signDetached } from './keys.js';
import { parseCertificate } from './certificate-checks.js';
import {
  createCaCertificate,
  issuePolicySignerCertificate,
  validityFromNow,
  type IssuingCa,
} from './certificate-issuer.js';
import { emptyRevocationList, normalizeSerial, revocationListBytes, withRevocation } from './revocation-list.js';
import { revocationListSchema, type RevocationList } from './revocation-schema.js';

/** The offline cluster authority: CA and policy-signing keys, never copied onto a unit. */
export interface Authority {
  description: AuthorityDescription;
  ca: IssuingCa;
  policyKeyPem: string;
  policySignerCertificate: x509.X509Certificate;
  revocationList: RevocationList;
  /** Exact bytes of revoked.json and their policy-key signature, copied onto units as they are. */
  revocationListFile: { bytes: Buffer; signature: Buffer };
}

const DEFAULT_AUTHORITY_DAYS = 20 * 365;

async function readAuthorityFile(dir: string, file: string): Promise<string>;
async function readAuthorityFile(dir: string, file: string, binary: 'binary'): Promise<Buffer>;
async function readAuthorityFile(dir: string, file: string, binary?: 'binary'): Promise<string | Buffer> {
  try {
    return binary ? await readFile(join(dir, file)) : await readFile(join(dir, file), 'utf8');
  } catch (error) {
    throw new FlashConfigError(join(dir, file), `cannot read authority file (${(error as Error).message})`, { cause: error });
  }
}

function asAuthorityFile<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof CertificateRejectedError) throw new FlashConfigError(path, error.reason, { cause: error });
    throw error;
  }
}

/** Creates a new authority in `dir`; refuses to overwrite existing key material. */
export async function createAuthority(params: {
  dir: string;
  clusterName: string;
  validDays?: number;
  now?: Date;
}): Promise<AuthorityDescription> {
  const description = parseValue(
    join(params.dir, AUTHORITY_FILES.description),
    { schemaVersion: 1, clusterName: params.clusterName, clusterId: randomUUID() },
    authorityDescriptionSchema,
  );
  const validity = validityFromNow(params.validDays ?? DEFAULT_AUTHORITY_DAYS, params.now);
  const caKeys = await generateKeyPair();
  const caCertificate = await createCaCertificate({ ...description, keys: caKeys, validity });
  const ca: IssuingCa = { certificate: caCertificate, signingKey: caKeys.privateKey };
  const policyKeys = await generateKeyPair();
  const policySigner = await issuePolicySignerCertificate({
    ca,
    ...description,
    publicKey: policyKeys.publicKey,
    validity,
  });
  const revocations = revocationListBytes(emptyRevocationList(params.now ?? new Date()));
  const policyKeyPem = await privateKeyToPem(policyKeys.privateKey);

  await mkdir(params.dir, { recursive: true });
  const write = (file: string, data: string | Buffer, mode = 0o644) =>
    writeFile(join(params.dir, file), data, { mode, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') {
        throw new FlashConfigError(join(params.dir, file), 'already exists; refusing to overwrite authority material');
      }
      throw error;
    });
  await write(AUTHORITY_FILES.caKey, await privateKeyToPem(caKeys.privateKey), PRIVATE_FILE_MODE);
  await write(AUTHORITY_FILES.policyKey, policyKeyPem, PRIVATE_FILE_MODE);
  await write(AUTHORITY_FILES.caCertificate, caCertificate.toString('pem') + '\n');
  await write(AUTHORITY_FILES.policySignerCertificate, policySigner.toString('pem') + '\n');
  await write(AUTHORITY_FILES.revocationList, revocations);
  await write(AUTHORITY_FILES.revocationListSignature, signDetached(revocations, policyKeyPem));
  await write(AUTHORITY_FILES.description, JSON.stringify(description, null, 2) + '\n');
  return description;
}

export async function loadAuthority(dir: string): Promise<Authority> {
  const path = (file: string) => join(dir, file);
  const description = parseJson(
    path(AUTHORITY_FILES.description),
    Buffer.from(await readAuthorityFile(dir, AUTHORITY_FILES.description)),
    authorityDescriptionSchema,
  );
  const caPem = await readAuthorityFile(dir, AUTHORITY_FILES.caCertificate);
  const certificate = asAuthorityFile(path(AUTHORITY_FILES.caCertificate), () => parseCertificate(caPem));
  const caKeyPem = await readAuthorityFile(dir, AUTHORITY_FILES.caKey);
  const signingKey = await importSigningKey(caKeyPem).catch((error: unknown) => {
    throw new FlashConfigError(path(AUTHORITY_FILES.caKey), `not a P-256 private key (${(error as Error).message})`);
  });
  const signerPem = await readAuthorityFile(dir, AUTHORITY_FILES.policySignerCertificate);
  const revocationBytes = await readAuthorityFile(dir, AUTHORITY_FILES.revocationList, 'binary');
  return {
    description,
    ca: { certificate, signingKey },
    policyKeyPem: await readAuthorityFile(dir, AUTHORITY_FILES.policyKey),
    policySignerCertificate: asAuthorityFile(path(AUTHORITY_FILES.policySignerCertificate), () =>
      parseCertificate(signerPem),
    ),
    revocationList: parseJson(path(AUTHORITY_FILES.revocationList), revocationBytes, revocationListSchema),
    revocationListFile: {
      bytes: revocationBytes,
      signature: await readAuthorityFile(dir, AUTHORITY_FILES.revocationListSignature, 'binary'),
    },
  };
}

/** Adds a certificate serial to the authority's revoked.json and re-signs it; idempotent per serial. */
export async function revokeSerial(
  dir: string,
  revocation: { serial: string; unitId?: string },
  now = new Date(),
): Promise<RevocationList> {
  const authority = await loadAuthority(dir);
  const listFile = join(dir, AUTHORITY_FILES.revocationList);
  if (!/^(0x)?[0-9a-fA-F:]+$/.test(revocation.serial)) {
    throw new FlashConfigError(listFile, `serial '${revocation.serial}' is not hexadecimal`);
  }
  const entry = { serial: normalizeSerial(revocation.serial), revokedAt: now.toISOString(), ...(revocation.unitId ? { unitId: revocation.unitId } : {}) };
  const list = parseValue(listFile, withRevocation(authority.revocationList, entry, now), revocationListSchema);
  const bytes = revocationListBytes(list);
  await writeFile(join(dir, AUTHORITY_FILES.revocationList), bytes);
  await writeFile(join(dir, AUTHORITY_FILES.revocationListSignature), signDetached(bytes, authority.policyKeyPem));
  return list;
}

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { x509 } from './x509-provider.js';
import { AUTHORITY_FILES, PRIVATE_FILE_MODE } from './layout.js';
import { FlashConfigError, CertificateRejectedError } from './flash-config-error.js';
import { authorityDescriptionSchema, type AuthorityDescription } from './authority-schema.js';
import { parseJson } from './parse-json.js';
import { generateKeyPair, importSigningKey, privateKeyToPem } from './keys.js';
import { parseCertificate, parseRevocationList } from './certificate-checks.js';
import {
  createCaCertificate,
  issuePolicySignerCertificate,
  validityFromNow,
  type IssuingCa,
} from './certificate-issuer.js';
import { createRevocationList, normalizeSerial, revocationsOf } from './revocation-list.js';

/** The offline cluster authority: CA and policy-signing keys, never copied onto a unit. */
export interface Authority {
  description: AuthorityDescription;
  ca: IssuingCa;
  policyKeyPem: string;
  policySignerCertificate: x509.X509Certificate;
  revocationList: x509.X509Crl;
}

const DEFAULT_AUTHORITY_DAYS = 20 * 365;

async function readAuthorityFile(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), 'utf8');
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
  const description = authorityDescriptionSchema.parse({
    schemaVersion: 1,
    clusterName: params.clusterName,
    clusterId: randomUUID(),
  });
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
  const revocationList = await createRevocationList(ca, [], params.now);

  await mkdir(params.dir, { recursive: true });
  const write = (file: string, data: string, mode = 0o644) =>
    writeFile(join(params.dir, file), data, { mode, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') {
        throw new FlashConfigError(join(params.dir, file), 'already exists; refusing to overwrite authority material');
      }
      throw error;
    });
  await write(AUTHORITY_FILES.caKey, await privateKeyToPem(caKeys.privateKey), PRIVATE_FILE_MODE);
  await write(AUTHORITY_FILES.policyKey, await privateKeyToPem(policyKeys.privateKey), PRIVATE_FILE_MODE);
  await write(AUTHORITY_FILES.caCertificate, caCertificate.toString('pem') + '\n');
  await write(AUTHORITY_FILES.policySignerCertificate, policySigner.toString('pem') + '\n');
  await write(AUTHORITY_FILES.revocationList, revocationList.toString('pem') + '\n');
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
  const crlPem = await readAuthorityFile(dir, AUTHORITY_FILES.revocationList);
  return {
    description,
    ca: { certificate, signingKey },
    policyKeyPem: await readAuthorityFile(dir, AUTHORITY_FILES.policyKey),
    policySignerCertificate: asAuthorityFile(path(AUTHORITY_FILES.policySignerCertificate), () =>
      parseCertificate(signerPem),
    ),
    revocationList: asAuthorityFile(path(AUTHORITY_FILES.revocationList), () => parseRevocationList(crlPem)),
  };
}

/** Adds a certificate serial to the authority's CRL (re-signed by the CA); idempotent. */
export async function revokeSerial(dir: string, serial: string, now = new Date()): Promise<x509.X509Crl> {
  const authority = await loadAuthority(dir);
  const serialNumber = normalizeSerial(serial);
  const revocations = revocationsOf(authority.revocationList);
  if (!revocations.some((revocation) => revocation.serialNumber === serialNumber)) {
    revocations.push({ serialNumber, revocationDate: now });
  }
  const list = await createRevocationList(authority.ca, revocations, now);
  await writeFile(join(dir, AUTHORITY_FILES.revocationList), list.toString('pem') + '\n');
  return list;
}

import { readFile } from 'node:fs/promises';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { x509 } from './x509-provider.js';
import { CertificateRejectedError, FlashConfigError } from './flash-config-error.js';
import { UNIT_FILES } from './layout.js';
import { claimedAddresses, identitySchema, type Identity } from './identity-schema.js';
import { policySchema, type Policy } from './policy-schema.js';
import { parseJson } from './parse-json.js';
import { certificatePublicKey, verifyDetached } from './keys.js';
import {
  canonicalIp,
  checkCaCertificate,
  checkPolicySignerCertificate,
  checkUnitCertificate,
  parseCertificate,
  type CertifiedUnit,
  type TrustContext,
} from './certificate-checks.js';
import { verifyPeerCertificate } from './peer-certificate.js';
import { revocationListSchema } from './revocation-schema.js';
import { revokedSerials as indexRevocations, type RevokedSerials } from './revocation-list.js';

/** A flash config that passed every check, with what the appliance needs to run. */
export interface VerifiedFlashConfig {
  identity: Identity;
  policy: Policy;
  unit: CertifiedUnit;
  caCertificate: x509.X509Certificate;
  unitCertificate: x509.X509Certificate;
  revokedSerials: RevokedSerials;
  unitPrivateKey: KeyObject;
  /** PEM material for node:tls / fastify https with mutual TLS between units. */
  tls: { ca: string; cert: string; key: string };
  /** Checks a joining peer against this config's CA and revocation list (CL-R5). */
  verifyPeer(peer: string | Uint8Array | x509.X509Certificate, now?: Date): Promise<CertifiedUnit>;
  /** The policy exactly as signed (policy.json and its detached signature): what the cluster passes around. */
  signedPolicy: SignedPolicy;
  /** Checks a policy another unit passes on: signed by this cluster's policy signer, valid against
   * the schema. Throws FlashConfigError with the reason. */
  verifySignedPolicy(signed: SignedPolicy): Policy;
}

/** A policy file's exact bytes and its detached signature. */
export interface SignedPolicy {
  bytes: Buffer;
  signature: Buffer;
}

export interface VerifyOptions {
  /** Time the certificates must be valid at; defaults to the current time. */
  now?: Date;
}

type UnitFiles = Record<keyof typeof UNIT_FILES, Buffer>;

async function readAllFiles(dir: string): Promise<UnitFiles> {
  const entries = Object.entries(UNIT_FILES) as [keyof typeof UNIT_FILES, string][];
  const read = await Promise.all(
    entries.map(async ([key, file]) => {
      try {
        return [key, await readFile(join(dir, file))] as const;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [key, file] as const;
        throw new FlashConfigError(file, `cannot read (${(error as Error).message})`, { cause: error });
      }
    }),
  );
  const missing = read.flatMap(([, content]) => (typeof content === 'string' ? [content] : []));
  const [firstMissing] = missing;
  if (firstMissing !== undefined) {
    const others = missing.length > 1 ? ` (also missing: ${missing.slice(1).join(', ')})` : '';
    throw new FlashConfigError(firstMissing, `required file is missing from ${dir}${others}`);
  }
  return Object.fromEntries(read) as UnitFiles;
}

/** Runs a certificate check and blames `file` if it rejects. */
async function about<T>(file: string, check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof CertificateRejectedError) throw new FlashConfigError(file, error.reason, { cause: error });
    throw error;
  }
}

function checkSignature(file: string, bytes: Buffer, signatureFile: string, signature: Buffer, signer: KeyObject): void {
  if (!verifyDetached(bytes, signature, signer)) {
    throw new FlashConfigError(
      file,
      `signature in ${signatureFile} does not verify with the key of ${UNIT_FILES.policySignerCertificate}: the file was changed after signing or signed by another authority`,
    );
  }
}

/** A policy is valid when the policy signer signed its exact bytes and it passes the schema. */
function verifyPolicyWith(signer: KeyObject, signed: SignedPolicy, source: string): Policy {
  if (!verifyDetached(signed.bytes, signed.signature, signer)) {
    throw new FlashConfigError(
      source,
      `signature does not verify with the cluster's policy signer key: the policy was changed after signing or signed by another authority`,
    );
  }
  return parseJson(source, signed.bytes, policySchema);
}

function checkIdentityMatchesCertificate(identity: Identity, unit: CertifiedUnit): void {
  if (identity.unit.id !== unit.unitId) {
    throw new FlashConfigError(
      UNIT_FILES.identity,
      `unit.id '${identity.unit.id}' does not match the unit id '${unit.unitId}' in ${UNIT_FILES.unitCertificate}`,
    );
  }
  const certified = new Set(unit.addresses);
  const claimed = claimedAddresses(identity);
  const uncertified = claimed.filter((address) => !certified.has(canonicalIp(address)));
  if (uncertified.length > 0) {
    throw new FlashConfigError(
      UNIT_FILES.identity,
      `address(es) ${uncertified.join(', ')} are not IP SANs of ${UNIT_FILES.unitCertificate} (${unit.addresses.join(', ')})`,
    );
  }
}

function loadMatchingPrivateKey(pem: Buffer, certificate: x509.X509Certificate): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new FlashConfigError(UNIT_FILES.unitKey, `not a PEM private key (${(error as Error).message})`, { cause: error });
  }
  const derivedPublic = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (!derivedPublic.equals(Buffer.from(certificate.publicKey.rawData))) {
    throw new FlashConfigError(
      UNIT_FILES.unitKey,
      `private key does not match the public key in ${UNIT_FILES.unitCertificate} (key of another unit?)`,
    );
  }
  return key;
}

/**
 * Boot-time verification of a unit's flash config directory. Throws FlashConfigError naming the
 * first offending file and the reason; the appliance must refuse to run on any error.
 */
export async function verifyFlashConfig(dir: string, options: VerifyOptions = {}): Promise<VerifiedFlashConfig> {
  const now = options.now ?? new Date();
  const files = await readAllFiles(dir);

  const caCertificate = await about(UNIT_FILES.caCertificate, () => parseCertificate(files.caCertificate));
  const clusterId = await about(UNIT_FILES.caCertificate, () => checkCaCertificate(caCertificate, now));

  // The signer is checked before the revocation list exists, since it signs that list: revoking
  // the policy key itself means re-keying the authority (see docs/flash-config.md).
  const signerCertificate = await about(UNIT_FILES.policySignerCertificate, () =>
    parseCertificate(files.policySignerCertificate),
  );
  await about(UNIT_FILES.policySignerCertificate, () =>
    checkPolicySignerCertificate(signerCertificate, { ca: caCertificate, now }, clusterId),
  );
  const signer = certificatePublicKey(signerCertificate);

  const revocationList = parseJson(UNIT_FILES.revocationList, files.revocationList, revocationListSchema);
  checkSignature(UNIT_FILES.revocationList, files.revocationList, UNIT_FILES.revocationListSignature, files.revocationListSignature, signer);
  const revokedSerials = indexRevocations(revocationList);
  const trust: TrustContext = { ca: caCertificate, revokedSerials, now };

  const identity = parseJson(UNIT_FILES.identity, files.identity, identitySchema);
  checkSignature(UNIT_FILES.identity, files.identity, UNIT_FILES.identitySignature, files.identitySignature, signer);
  if (identity.cluster.id !== clusterId) {
    throw new FlashConfigError(
      UNIT_FILES.identity,
      `cluster.id ${identity.cluster.id} is not the cluster ${clusterId} of ${UNIT_FILES.caCertificate}`,
    );
  }

  const unitCertificate = await about(UNIT_FILES.unitCertificate, () => parseCertificate(files.unitCertificate));
  const unit = await about(UNIT_FILES.unitCertificate, () => checkUnitCertificate(unitCertificate, trust));
  checkIdentityMatchesCertificate(identity, unit);
  const unitPrivateKey = loadMatchingPrivateKey(files.unitKey, unitCertificate);

  const policy = parseJson(UNIT_FILES.policy, files.policy, policySchema);
  checkSignature(UNIT_FILES.policy, files.policy, UNIT_FILES.policySignature, files.policySignature, signer);
  const signedPolicy = { bytes: files.policy, signature: files.policySignature };
  if (policy.configVersion !== identity.configVersion) {
    throw new FlashConfigError(
      UNIT_FILES.policy,
      `configVersion ${policy.configVersion} does not match configVersion ${identity.configVersion} in ${UNIT_FILES.identity}`,
    );
  }

  return {
    identity,
    policy,
    unit,
    caCertificate,
    unitCertificate,
    revokedSerials,
    unitPrivateKey,
    tls: {
      ca: files.caCertificate.toString('utf8'),
      cert: files.unitCertificate.toString('utf8'),
      key: files.unitKey.toString('utf8'),
    },
    verifyPeer: (peer, peerNow) => verifyPeerCertificate(peer, { ca: caCertificate, revokedSerials, now: peerNow ?? new Date() }),
    signedPolicy,
    verifySignedPolicy: (signed) => verifyPolicyWith(signer, signed, 'signed policy'),
  };
}

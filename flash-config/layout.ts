/** File names inside a unit's flash config (directory or partition image root). */
export const UNIT_FILES = {
  identity: 'identity.json',
  identitySignature: 'identity.json.sig',
  caCertificate: 'ca.crt',
  unitCertificate: 'unit.crt',
  unitKey: 'unit.key',
  policy: 'policy.json',
  policySignature: 'policy.json.sig',
  policySignerCertificate: 'policy-signer.crt',
  revocationList: 'revoked.json',
  revocationListSignature: 'revoked.json.sig',
} as const;

/** File names inside the offline cluster authority directory; ca.key and policy.key never leave it. */
export const AUTHORITY_FILES = {
  description: 'authority.json',
  caKey: 'ca.key',
  caCertificate: 'ca.crt',
  policyKey: 'policy.key',
  policySignerCertificate: 'policy-signer.crt',
  revocationList: 'revoked.json',
  revocationListSignature: 'revoked.json.sig',
} as const;

/** Filesystem label of the flash-config partition; the appliance finds its partition by it. */
export const PARTITION_LABEL = 'EPFLASHCFG';

/** Unit keys must stay private to root on the appliance. */
export const PRIVATE_FILE_MODE = 0o600;

const URN_PREFIX = 'urn:edgeplane:';
export const unitUri = (unitId: string): string => `${URN_PREFIX}unit:${unitId}`;
export const clusterUri = (clusterId: string): string => `${URN_PREFIX}cluster:${clusterId}`;
export const policySignerUri = (clusterId: string): string => `${URN_PREFIX}policy-signer:${clusterId}`;

/** The id after `urn:edgeplane:<kind>:` or undefined when the URI is of another kind. */
export function idFromUri(uri: string, kind: 'unit' | 'cluster' | 'policy-signer'): string | undefined {
  const prefix = `${URN_PREFIX}${kind}:`;
  return uri.startsWith(prefix) ? uri.slice(prefix.length) : undefined;
}

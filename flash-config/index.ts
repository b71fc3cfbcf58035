// Public surface of the flash-config library: provisioning (offline authority side) and
// verification (appliance side, at boot and for peers joining the cluster).
export { FlashConfigError, CertificateRejectedError } from './flash-config-error.js';
export { UNIT_FILES, AUTHORITY_FILES, PARTITION_LABEL } from './layout.js';
export { identitySchema, type Identity } from './identity-schema.js';
export {
  policySchema,
  virtualServiceSchema,
  serverSchema,
  clusterThresholdsSchema,
  type ClusterDelivery,
  type Policy,
  type VirtualService,
} from './policy-schema.js';
export { revocationListSchema, type RevocationList } from './revocation-schema.js';
export type { RevokedSerials } from './revocation-list.js';
export { createAuthority, loadAuthority, revokeSerial, type Authority } from './authority.js';
export { provisionUnit, type UnitRequest, type ProvisionedUnit } from './unit-provisioning.js';
export { signPolicy, writePolicySignature } from './policy-signing.js';
export { verifyFlashConfig, type VerifiedFlashConfig, type VerifyOptions, type SignedPolicy } from './verify-flash-config.js';
export { verifyPeerCertificate } from './peer-certificate.js';
export type { CertifiedUnit } from './certificate-checks.js';
export { writePartitionImage, extractPartitionImage, withExtractedImage } from './partition-image.js';
export { flashConfigJsonSchemas } from './json-schemas.js';

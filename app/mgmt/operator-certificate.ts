/* Operator certificates: issued by the offline cluster authority (the same CA that certifies
 * units), client authentication only, the role in a SAN URI. The private key is generated here and
 * written once next to the certificate; nothing is kept by the authority. */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadAuthority } from '../../flash-config/authority.js';
import { validityFromNow } from '../../flash-config/certificate-issuer.js';
import { SIGNING_ALGORITHM, generateKeyPair, privateKeyToPem } from '../../flash-config/keys.js';
import { x509 } from '../../flash-config/x509-provider.js';
import { operatorUri, type Operator } from './roles.js';

export const OPERATOR_FILES = { certificate: 'operator.crt', key: 'operator.key', ca: 'ca.crt' } as const;

export interface OperatorCredentials {
  certificatePem: string;
  keyPem: string;
  caPem: string;
  serial: string;
}

export async function issueOperatorCertificate(
  authorityDir: string,
  operator: Operator,
  options: { validDays?: number; now?: Date } = {},
): Promise<OperatorCredentials> {
  const uri = operatorUri(operator);
  const authority = await loadAuthority(authorityDir);
  const keys = await generateKeyPair();
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: `CN=${operator.name}, OU=${operator.role}, O=edgeplane operator`,
    issuer: authority.ca.certificate.subject,
    ...validityFromNow(options.validDays ?? 365, options.now),
    publicKey: keys.publicKey,
    signingKey: authority.ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
      await x509.AuthorityKeyIdentifierExtension.create(authority.ca.certificate.publicKey),
    ],
  });
  return {
    certificatePem: certificate.toString('pem') + '\n',
    keyPem: await privateKeyToPem(keys.privateKey),
    caPem: authority.ca.certificate.toString('pem') + '\n',
    serial: serial.toString('hex'),
  };
}

/** Writes operator.crt, operator.key (0600) and ca.crt; refuses to overwrite existing files. */
export async function writeOperatorCredentials(dir: string, credentials: OperatorCredentials): Promise<void> {
  await mkdir(dir, { recursive: true });
  const write = (file: string, data: string, mode: number) => writeFile(path.join(dir, file), data, { mode, flag: 'wx' });
  await write(OPERATOR_FILES.key, credentials.keyPem, 0o600);
  await write(OPERATOR_FILES.certificate, credentials.certificatePem, 0o644);
  await write(OPERATOR_FILES.ca, credentials.caPem, 0o644);
}

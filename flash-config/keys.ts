import { createPrivateKey, createPublicKey, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import type { x509 } from './x509-provider.js';

// ECDSA P-256 everywhere: fast to generate, supported by @peculiar/x509 for certificate signing,
// by TLS stacks for mutual TLS, and by openssl for third-party checks of detached signatures.
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

export async function privateKeyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Imports a PEM private key for certificate and CRL signing. */
export async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

/** The node:crypto public key of a certificate, for detached-signature checks. */
export function certificatePublicKey(certificate: x509.X509Certificate): KeyObject {
  return createPublicKey({ key: Buffer.from(certificate.publicKey.rawData), format: 'der', type: 'spki' });
}

/** DER-encoded ECDSA-SHA256 signature over the exact bytes (`openssl dgst -sha256 -verify` checks it). */
export function signDetached(bytes: Uint8Array, privateKeyPem: string): Buffer {
  return sign('sha256', bytes, createPrivateKey(privateKeyPem));
}

export function verifyDetached(bytes: Uint8Array, signature: Uint8Array, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', bytes, publicKey, signature);
  } catch {
    return false; // a signature that is not even DER is simply not valid
  }
}

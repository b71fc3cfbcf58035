import { writeFile } from 'node:fs/promises';
import { policySchema, type Policy } from './policy-schema.js';
import { parseJson } from './parse-json.js';
import { signDetached } from './keys.js';
import type { Authority } from './authority.js';

/**
 * Validates the policy, then signs its exact bytes with the authority's policy key.
 * `source` names the policy in error messages.
 */
export function signPolicy(authority: Authority, policyBytes: Uint8Array, source: string): { policy: Policy; signature: Buffer } {
  const policy = parseJson(source, policyBytes, policySchema);
  return { policy, signature: signDetached(policyBytes, authority.policyKeyPem) };
}

/** Writes the detached signature beside the policy file (`<policy>.sig` unless told otherwise). */
export async function writePolicySignature(authority: Authority, policyBytes: Uint8Array, source: string, out: string) {
  const { policy, signature } = signPolicy(authority, policyBytes, source);
  await writeFile(out, signature);
  return policy;
}

/* The policy a cluster runs (docs/cluster.md "Policy distribution"): each unit starts with the
 * signed policy of its flash config; a signed policy another unit passes on is verified with the
 * cluster's policy signer key and adopted only when its configuration version is higher, so the
 * cluster converges on the highest valid version. */
import type { Policy, SignedPolicy, VerifiedFlashConfig } from '../../flash-config/index.js';
import type { SignedPolicyWire } from './rpc-methods.js';

export interface VerifiedPolicy {
  signed: SignedPolicy;
  policy: Policy;
}

export type PolicyListener = (policy: Policy, from: string) => void;

export function policyToWire(signed: SignedPolicy): SignedPolicyWire {
  return { bytes: signed.bytes.toString('base64'), signature: signed.signature.toString('base64') };
}

/** Verifies a signed policy from the wire; throws with the reason when it is not valid. */
export function verifyWirePolicy(config: VerifiedFlashConfig, wire: SignedPolicyWire): VerifiedPolicy {
  const signed = { bytes: Buffer.from(wire.bytes, 'base64'), signature: Buffer.from(wire.signature, 'base64') };
  return { signed, policy: config.verifySignedPolicy(signed) };
}

export class ClusterPolicy {
  private current: VerifiedPolicy;
  private readonly listeners: PolicyListener[] = [];

  constructor(config: VerifiedFlashConfig) {
    this.current = { signed: config.signedPolicy, policy: config.policy };
  }

  get policy(): Policy {
    return this.current.policy;
  }

  get signed(): SignedPolicy {
    return this.current.signed;
  }

  get version(): number {
    return this.current.policy.configVersion;
  }

  onChange(listener: PolicyListener): void {
    this.listeners.push(listener);
  }

  /** Takes a verified policy if its version is higher than ours; true when adopted. */
  adopt(candidate: VerifiedPolicy, from: string): boolean {
    if (candidate.policy.configVersion <= this.version) return false;
    this.current = candidate;
    for (const listener of this.listeners) listener(candidate.policy, from);
    return true;
  }
}

/* Which manager owns each fixed affinity the agent installed (SMFA-R8, R18, R19): a manager may
 * refresh or delete its own; another manager's takes over only with equal or better precedence,
 * or once the owner's affinity expired. The data plane expires the affinities themselves. */
import { keyText } from './ip-packet.js';
import { isBetterOrEqual, type Precedence } from './precedence.js';
import type { AffinityKey } from './types.js';
import type { DispatchMethod } from './wire-constants.js';

/** Where a fixed affinity's interest matches go (its criteria's address, else its manager), and
 * what they echo and name (SMFA-R16, R25). */
export interface FixedNotice {
  reply: { address: string; port: number };
  dispatch: DispatchMethod;
  information: boolean;
  smInterestData?: Buffer;
}

interface Owner {
  manager: string;
  precedence: Precedence;
  expiresAt: number;
  notice?: FixedNotice;
}

export type FixedVerdict = 'install' | 'delete' | 'absent' | 'shadowed';

export class FixedOwners {
  readonly #owners = new Map<string, Owner>();

  decide(manager: string, key: AffinityKey, ttlSeconds: number, precedence: Precedence, now: number, notice?: FixedNotice): FixedVerdict {
    const id = keyText(key);
    const owner = this.#owners.get(id);
    const live = owner !== undefined && owner.expiresAt > now;
    if (live && owner.manager !== manager && !isBetterOrEqual(precedence, owner.precedence)) return 'shadowed';
    if (ttlSeconds === 0) {
      this.#owners.delete(id);
      return live ? 'delete' : 'absent';
    }
    this.#owners.set(id, { manager, precedence, expiresAt: now + ttlSeconds * 1000, ...(notice ? { notice } : {}) });
    return 'install';
  }

  /** Where the interest matches of the live affinity with this key go, if it has criteria. */
  notice(key: AffinityKey, now: number): FixedNotice | undefined {
    const owner = this.#owners.get(keyText(key));
    return owner && owner.expiresAt > now ? owner.notice : undefined;
  }

  expire(now: number): void {
    for (const [id, owner] of this.#owners) if (owner.expiresAt <= now) this.#owners.delete(id);
  }

  get size(): number {
    return this.#owners.size;
  }
}

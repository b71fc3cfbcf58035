/* Which manager owns each fixed affinity the agent installed (SMFA-R8, R18, R19): a manager may
 * refresh or delete its own; another manager's takes over only with equal or better precedence,
 * or once the owner's affinity expired. The data plane expires the affinities themselves. */
import { keyText } from './ip-packet.js';
import { isBetterOrEqual, type Precedence } from './precedence.js';
import type { AffinityKey } from './types.js';

interface Owner {
  manager: string;
  precedence: Precedence;
  expiresAt: number;
}

export type FixedVerdict = 'install' | 'delete' | 'absent' | 'shadowed';

export class FixedOwners {
  readonly #owners = new Map<string, Owner>();

  decide(manager: string, key: AffinityKey, ttlSeconds: number, precedence: Precedence, now: number): FixedVerdict {
    const id = keyText(key);
    const owner = this.#owners.get(id);
    const live = owner !== undefined && owner.expiresAt > now;
    if (live && owner.manager !== manager && !isBetterOrEqual(precedence, owner.precedence)) return 'shadowed';
    if (ttlSeconds === 0) {
      this.#owners.delete(id);
      return live ? 'delete' : 'absent';
    }
    this.#owners.set(id, { manager, precedence, expiresAt: now + ttlSeconds * 1000 });
    return 'install';
  }

  expire(now: number): void {
    for (const [id, owner] of this.#owners) if (owner.expiresAt <= now) this.#owners.delete(id);
  }

  get size(): number {
    return this.#owners.size;
  }
}

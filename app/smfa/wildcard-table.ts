/* The agent's wildcard affinities, per manager (SMFA-R1, R7, R17, R18, R19): an identical wildcard
 * from the same manager refreshes the stored one, TTL 0 deletes, expiry = arrival + TTL. */
import { filterText, wildcardMatches } from './address-match.js';
import { comparePrecedence, type Precedence } from './precedence.js';
import type { AffinityKey, AffinityUpdateWildcard } from './types.js';

export interface StoredWildcard {
  manager: string;
  /** Where interest matches for this wildcard go. */
  reply: { address: string; port: number };
  update: AffinityUpdateWildcard;
  precedence: Precedence;
  expiresAt: number;
}

export class WildcardTable {
  readonly #entries = new Map<string, StoredWildcard>();

  static #id(manager: string, update: AffinityUpdateWildcard): string {
    return `${manager}#${filterText(update.wildcard)}`;
  }

  /** Returns 'added', 'refreshed' or 'deleted' / 'absent' (TTL 0). */
  apply(entry: Omit<StoredWildcard, 'expiresAt'>, now: number): 'added' | 'refreshed' | 'deleted' | 'absent' {
    const id = WildcardTable.#id(entry.manager, entry.update);
    if (entry.update.wildcard.ttlSeconds === 0) return this.#entries.delete(id) ? 'deleted' : 'absent';
    const existed = this.#entries.has(id);
    this.#entries.set(id, { ...entry, expiresAt: now + entry.update.wildcard.ttlSeconds * 1000 });
    return existed ? 'refreshed' : 'added';
  }

  /** Removes and returns the wildcards whose time is up. */
  expire(now: number): StoredWildcard[] {
    const gone: StoredWildcard[] = [];
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(id);
        gone.push(entry);
      }
    }
    return gone;
  }

  /** Every stored wildcard, best first: the order the data plane and the agent search in. */
  ordered(): StoredWildcard[] {
    return [...this.#entries.values()].sort((a, b) => comparePrecedence(a.precedence, b.precedence));
  }

  /** The wildcard a packet falls under (the best of those matching). */
  lookup(key: AffinityKey): StoredWildcard | undefined {
    return this.ordered().find((entry) => wildcardMatches(entry.update.wildcard, key));
  }

  /** Whether a manager has any wildcard covering this key (a fixed update needs one, SMFA-R8). */
  coveredBy(manager: string, key: AffinityKey): StoredWildcard | undefined {
    return [...this.#entries.values()].find((entry) => entry.manager === manager && wildcardMatches(entry.update.wildcard, key));
  }

  get size(): number {
    return this.#entries.size;
  }
}

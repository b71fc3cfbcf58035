/* The agent's wildcard affinities, per manager (SMFA-R1, R7, R17, R18, R19): an identical wildcard
 * from the same manager refreshes the stored one, TTL 0 deletes, expiry = arrival + TTL. */
import { filterText, wildcardMatches } from './address-match.js';
import { comparePrecedence, serviceRank, type Precedence } from './precedence.js';
import type { AffinityKey, AffinityUpdateWildcard } from './types.js';

export interface StoredWildcard {
  /** Names it to the data plane, which reports it with the packets it sends up (never 0). */
  id: number;
  manager: string;
  /** Where interest matches for this wildcard go. */
  reply: { address: string; port: number };
  update: AffinityUpdateWildcard;
  precedence: Precedence;
  expiresAt: number;
}

export class WildcardTable {
  readonly #entries = new Map<string, StoredWildcard>();
  readonly #byId = new Map<number, StoredWildcard>();
  #nextId = 1;

  static #id(manager: string, update: AffinityUpdateWildcard): string {
    return `${manager}#${filterText(update.wildcard)}`;
  }

  /** Returns 'added', 'refreshed' or 'deleted' / 'absent' (TTL 0). */
  apply(entry: Omit<StoredWildcard, 'expiresAt' | 'id'>, now: number): 'added' | 'refreshed' | 'deleted' | 'absent' {
    const key = WildcardTable.#id(entry.manager, entry.update);
    const existing = this.#entries.get(key);
    if (entry.update.wildcard.ttlSeconds === 0) {
      if (!existing) return 'absent';
      this.#remove(key, existing);
      return 'deleted';
    }
    const stored = { ...entry, id: existing?.id ?? this.#nextId++, expiresAt: now + entry.update.wildcard.ttlSeconds * 1000 };
    this.#entries.set(key, stored);
    this.#byId.set(stored.id, stored);
    return existing ? 'refreshed' : 'added';
  }

  #remove(key: string, entry: StoredWildcard): void {
    this.#entries.delete(key);
    this.#byId.delete(entry.id);
  }

  /** The stored wildcard the data plane names by `id`. */
  byId(id: number): StoredWildcard | undefined {
    return this.#byId.get(id);
  }

  /** Removes and returns the wildcards whose time is up. */
  expire(now: number): StoredWildcard[] {
    const gone: StoredWildcard[] = [];
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#remove(id, entry);
        gone.push(entry);
      }
    }
    return gone;
  }

  /** Every stored wildcard, best first: the order the data plane and the agent search in. */
  ordered(): StoredWildcard[] {
    return [...this.#entries.values()].sort((a, b) => comparePrecedence(a.precedence, b.precedence));
  }

  /** The wildcards in force, best first: a backup's wildcard stays out while a better one with the
   * same filter and service precedence lives (SMFA-R19) - it would never decide, and a cascading one
   * would watch beside its primary. */
  active(): StoredWildcard[] {
    const taken = new Set<string>();
    return this.ordered().filter((entry) => {
      const service = `${serviceRank(entry.precedence)}#${filterText(entry.update.wildcard)}`;
      if (taken.has(service)) return false;
      taken.add(service);
      return true;
    });
  }

  /** Whether a manager has any wildcard covering this key (a fixed update needs one, SMFA-R8). */
  coveredBy(manager: string, key: AffinityKey): StoredWildcard | undefined {
    return [...this.#entries.values()].find((entry) => entry.manager === manager && wildcardMatches(entry.update.wildcard, key));
  }

  get size(): number {
    return this.#entries.size;
  }
}

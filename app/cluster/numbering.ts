/* Numbering authority (SR-R6): numbers that must be unique across the cluster (full-NAT source
 * ports, later L2TP ids) are leased in blocks. The master's book is replicated in every master
 * keepalive; a dead holder's blocks stay out of the pool for a grace time (until its flows are
 * gone), so no block is ever leased to two holders at once. */
import type { Lease } from './messages.js';

export interface NumberSpace {
  name: string;
  first: number;
  last: number;
  blockSize: number;
}

export class LeaseRefused extends Error {
  override readonly name = 'LeaseRefused';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export class LeaseBook {
  private leases: Lease[] = [];

  constructor(
    private readonly spaces: ReadonlyMap<string, NumberSpace>,
    private readonly graceMs: number,
  ) {}

  all(): Lease[] {
    return this.leases.map((lease) => ({ ...lease }));
  }

  /** Adopts leases from a replicated book or a joiner's own report; overlapping ones are refused. */
  adopt(leases: readonly Lease[]): Lease[] {
    const refused: Lease[] = [];
    for (const lease of leases) {
      const same = this.leases.find((held) => held.space === lease.space && held.start === lease.start);
      if (same && same.holder === lease.holder) continue;
      if (this.overlaps(lease)) refused.push(lease);
      else this.leases.push({ ...lease });
    }
    return refused;
  }

  grant(space: string, holder: string): Lease {
    const definition = this.spaces.get(space);
    if (!definition) throw new LeaseRefused(`unknown number space '${space}'`);
    for (let start = definition.first; start + definition.blockSize - 1 <= definition.last; start += definition.blockSize) {
      const candidate: Lease = { space, start, size: definition.blockSize, holder, graceUntil: null };
      if (!this.overlaps(candidate)) {
        this.leases.push(candidate);
        return { ...candidate };
      }
    }
    throw new LeaseRefused(`number space '${space}' is exhausted (${this.leases.filter((l) => l.space === space).length} blocks leased)`);
  }

  /** The holder gives a block back (its flows are gone). */
  release(space: string, start: number, holder: string): void {
    const index = this.leases.findIndex((lease) => lease.space === space && lease.start === start && lease.holder === holder);
    if (index < 0) throw new LeaseRefused(`${holder} holds no lease ${space}@${start}`);
    this.leases.splice(index, 1);
  }

  /** The holder died: its blocks stay reserved until its flows have timed out. */
  holderGone(holder: string, now: number): void {
    for (const lease of this.leases) if (lease.holder === holder && lease.graceUntil === null) lease.graceUntil = now + this.graceMs;
  }

  /** The holder is back (rejoined): its blocks are live again. */
  holderBack(holder: string): void {
    for (const lease of this.leases) if (lease.holder === holder) lease.graceUntil = null;
  }

  /** Drops blocks whose grace time ended; returns them. */
  expire(now: number): Lease[] {
    const expired = this.leases.filter((lease) => lease.graceUntil !== null && lease.graceUntil <= now);
    this.leases = this.leases.filter((lease) => !expired.includes(lease));
    return expired;
  }

  private overlaps(lease: Lease): boolean {
    return this.leases.some(
      (held) => held.space === lease.space && held.start < lease.start + lease.size && lease.start < held.start + held.size,
    );
  }
}

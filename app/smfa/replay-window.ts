export type ReplayVerdict = 'fresh' | 'replayed' | 'too-old';

/**
 * Anti-replay sliding window after RFC 4303 section 3.4.3: the highest sequence seen plus a
 * bitmap of the `size` sequences at and below it. Sequences may arrive out of order within the
 * window (UDP reorders); anything below it cannot be told apart from a replay and is refused.
 */
export class ReplayWindow {
  private highest: bigint | undefined;
  /** Bit i set = sequence (highest - i) already accepted. */
  private seen = 0n;
  private readonly full: bigint;

  constructor(private readonly size = 64) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`replay window size ${size} must be a positive integer`);
    this.full = (1n << BigInt(size)) - 1n;
  }

  /** Classifies and, when fresh, records the sequence. Call only after the MAC has been verified. */
  accept(sequence: bigint): ReplayVerdict {
    if (this.highest === undefined || sequence > this.highest) {
      const shift = this.highest === undefined ? BigInt(this.size) : sequence - this.highest;
      this.seen = shift >= BigInt(this.size) ? 1n : ((this.seen << shift) | 1n) & this.full;
      this.highest = sequence;
      return 'fresh';
    }
    const age = this.highest - sequence;
    if (age >= BigInt(this.size)) return 'too-old';
    const bit = 1n << age;
    if ((this.seen & bit) !== 0n) return 'replayed';
    this.seen |= bit;
    return 'fresh';
  }
}

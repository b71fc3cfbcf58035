/* Per-sender keepalive loss estimate and the adaptive keepalive count (CL-R7, docs/cluster.md
 * "Keepalives"). P <- P*127/128 + S/128 with S the sequence gap; n is the smallest integer >= 2
 * with n * P^n < 1/3600, capped at 20: the number of keepalives sent per detection interval. */
export const MIN_INTERVALS = 2;
export const MAX_INTERVALS = 20;
const FALSE_ALARM_BUDGET = 1 / 3600;

export function keepalivesPerDetection(loss: number): number {
  if (loss >= 1) return MAX_INTERVALS;
  for (let n = MIN_INTERVALS; n <= MAX_INTERVALS; n += 1) {
    if (n * loss ** n < FALSE_ALARM_BUDGET) return n;
  }
  return MAX_INTERVALS;
}

export class LossEstimate {
  private last: bigint | undefined;
  /** Estimated keepalives lost per keepalive received. */
  loss = 0;

  /** Records a fresh (already replay-checked, so increasing) sequence number. */
  observe(sequence: bigint): void {
    if (this.last !== undefined && sequence > this.last) {
      const gap = Number(sequence - this.last - 1n);
      this.loss = (this.loss * 127) / 128 + Math.min(gap, 128) / 128;
    }
    this.last = sequence;
  }

  get intervals(): number {
    return keepalivesPerDetection(this.loss);
  }
}

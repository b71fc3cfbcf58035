/* Packets of work units this member may not process yet (unassigned, or moving), held in arrival
 * order per unit and bounded, until the unit is owned here (release) or elsewhere (discard). */
export interface HeldPacket {
  port: number;
  frame: Buffer;
}

export class HoldQueue {
  private readonly queues = new Map<number, HeldPacket[]>();
  private total = 0;
  /** Packets refused because a unit's queue or the whole queue was full. */
  overflowed = 0;

  constructor(private readonly limits: { perUnit: number; total: number } = { perUnit: 1024, total: 16_384 }) {}

  get size(): number {
    return this.total;
  }

  /** Returns whether the unit had nothing held before this packet. */
  hold(unit: number, packet: HeldPacket): boolean {
    const queue = this.queues.get(unit) ?? [];
    if (queue.length >= this.limits.perUnit || this.total >= this.limits.total) {
      this.overflowed += 1;
      return false;
    }
    queue.push(packet);
    this.queues.set(unit, queue);
    this.total += 1;
    return queue.length === 1;
  }

  /** Takes the unit's packets out, oldest first. */
  take(unit: number): HeldPacket[] {
    const queue = this.queues.get(unit) ?? [];
    this.queues.delete(unit);
    this.total -= queue.length;
    return queue;
  }

  /** Returns packets taken out but not used to the front of the unit's queue, order kept. */
  putBack(unit: number, packets: readonly HeldPacket[]): void {
    if (packets.length === 0) return;
    this.queues.set(unit, [...packets, ...(this.queues.get(unit) ?? [])]);
    this.total += packets.length;
  }

  heldUnits(): number[] {
    return [...this.queues.keys()];
  }
}

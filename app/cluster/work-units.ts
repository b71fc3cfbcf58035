/* The 1024 work units (CL-R3, R4, R8): the master's unit -> member table, least-loaded
 * assignment on first use and rebalancing by acknowledged moves. A unit changes owner only after
 * the old owner acknowledged releasing it and the new owner acknowledged taking it. */
export const WORK_UNITS = 1024;
const UNASSIGNED = 0xffff;

export type OwnershipState = 'owned' | 'holding' | 'foreign';
export interface OwnershipChange {
  unit: number;
  owner: string | null;
  state: OwnershipState;
}

/** Per-unit traffic the data plane measured since the last report. */
export interface UnitLoad {
  unit: number;
  packets: number;
  flows: number;
}

/** Weight of a unit in balancing: 1 (so idle units still spread) + packets + flows. */
export function unitWeight(load: UnitLoad | undefined): number {
  return 1 + (load ? load.packets + load.flows : 0);
}

export function isWorkUnit(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < WORK_UNITS;
}

/** Table in keepalives: base64 of 1024 big-endian u16 member indexes, 0xffff = unassigned. */
export function encodeTable(owners: readonly (string | null)[], members: readonly string[]): string {
  const index = new Map(members.map((member, i) => [member, i]));
  const bytes = Buffer.alloc(WORK_UNITS * 2);
  owners.forEach((owner, unit) => bytes.writeUInt16BE(owner === null ? UNASSIGNED : (index.get(owner) ?? UNASSIGNED), unit * 2));
  return bytes.toString('base64');
}

export function decodeTable(table: string, members: readonly string[]): (string | null)[] {
  const bytes = Buffer.from(table, 'base64');
  if (bytes.length !== WORK_UNITS * 2) throw new Error(`work-unit table of ${bytes.length} bytes, expected ${WORK_UNITS * 2}`);
  return Array.from({ length: WORK_UNITS }, (_, unit) => {
    const index = bytes.readUInt16BE(unit * 2);
    if (index === UNASSIGNED) return null;
    const member = members[index];
    if (member === undefined) throw new Error(`work unit ${unit} names member index ${index} of ${members.length}`);
    return member;
  });
}

/** How the master talks to members about units; each resolves with the units acknowledged. */
export interface UnitExchange {
  /** The next owner holds the units' packets from now on (every member sees every packet). */
  hold(member: string, units: number[]): Promise<number[]>;
  /** `next`: the member the units go to (none when the next owner only stops holding them). */
  release(member: string, units: number[], next?: string): Promise<number[]>;
  assign(member: string, units: number[]): Promise<number[]>;
}

export interface Move {
  unit: number;
  from: string;
  to: string;
}

/** A round starts only when the busiest member carries this much more than the idlest (as a
 * share of the busiest's load): per-round packet counts are noisy, and moving units for noise
 * would churn them every round. */
export const REBALANCE_THRESHOLD = 0.15;

/** Greedy plan: when the gap is worth it, move units from the most to the least loaded member
 * while that strictly lowers the gap. */
export function planRebalance(
  owners: readonly (string | null)[],
  members: readonly string[],
  weight: (unit: number) => number,
  maxMoves: number,
): Move[] {
  if (members.length < 2) return [];
  const load = new Map(members.map((member) => [member, 0]));
  const units = new Map(members.map((member) => [member, [] as number[]]));
  owners.forEach((owner, unit) => {
    if (owner === null || !load.has(owner)) return;
    load.set(owner, (load.get(owner) ?? 0) + weight(unit));
    units.get(owner)?.push(unit);
  });
  const loads = [...load.values()];
  if (Math.max(...loads) - Math.min(...loads) <= REBALANCE_THRESHOLD * Math.max(...loads)) return [];
  const moves: Move[] = [];
  while (moves.length < maxMoves) {
    const sorted = [...load.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
    const [least, leastLoad] = sorted[0] as [string, number];
    const [most, mostLoad] = sorted[sorted.length - 1] as [string, number];
    const gap = mostLoad - leastLoad;
    const candidates = units.get(most) ?? [];
    // Moving a unit of weight w leaves a gap of |gap - 2w|: it helps only when 0 < w < gap.
    let best: number | undefined;
    for (const unit of candidates) {
      const w = weight(unit);
      if (w < gap && (best === undefined || Math.abs(gap - 2 * w) < Math.abs(gap - 2 * weight(best)))) best = unit;
    }
    if (best === undefined) break;
    const w = weight(best);
    candidates.splice(candidates.indexOf(best), 1);
    units.get(least)?.push(best);
    load.set(most, mostLoad - w);
    load.set(least, leastLoad + w);
    moves.push({ unit: best, from: most, to: least });
  }
  return moves;
}

/** Least-loaded choice for each unassigned unit, counting the units already planned. */
export function planAssignment(
  units: readonly number[],
  owners: readonly (string | null)[],
  members: readonly string[],
  weight: (unit: number) => number,
): Map<string, number[]> {
  const load = new Map(members.map((member) => [member, 0]));
  owners.forEach((owner, unit) => {
    if (owner !== null && load.has(owner)) load.set(owner, (load.get(owner) ?? 0) + weight(unit));
  });
  const plan = new Map<string, number[]>();
  for (const unit of units) {
    const [least] = [...load.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
    if (least === undefined) break;
    load.set(least[0], least[1] + weight(unit));
    plan.set(least[0], [...(plan.get(least[0]) ?? []), unit]);
  }
  return plan;
}

/**
 * The master's authority over the table. `busy` units are in an exchange (holding); nothing else
 * touches them until it finishes. Every table change is reported through `changed`.
 */
export class WorkUnitAuthority {
  readonly owners: (string | null)[] = Array(WORK_UNITS).fill(null);
  private readonly busy = new Set<number>();

  constructor(
    private readonly exchange: UnitExchange,
    private readonly changed: (units: number[]) => void,
    /** Whether the member is (still) in the cluster: a move's old owner may leave meanwhile. */
    private readonly isMember: (member: string) => boolean = () => true,
  ) {}

  isBusy(unit: number): boolean {
    return this.busy.has(unit);
  }

  /** Adopts a replicated table (a new master) or a joiner's report; never touches busy units. */
  set(unit: number, owner: string | null): void {
    if (this.busy.has(unit) || this.owners[unit] === owner) return;
    this.owners[unit] = owner;
    this.changed([unit]);
  }

  ownedBy(member: string): number[] {
    return this.owners.flatMap((owner, unit) => (owner === member ? [unit] : []));
  }

  /** A member left: its units return to the unassigned pool. */
  forget(member: string): number[] {
    const freed = this.ownedBy(member).filter((unit) => !this.busy.has(unit));
    for (const unit of freed) this.owners[unit] = null;
    if (freed.length > 0) this.changed(freed);
    return freed;
  }

  /** First use: hands each unassigned, idle unit to the least loaded member. */
  async assign(units: readonly number[], members: readonly string[], weight: (unit: number) => number): Promise<void> {
    const wanted = [...new Set(units)].filter((unit) => this.owners[unit] === null && !this.busy.has(unit));
    const plan = planAssignment(wanted, this.owners, members, weight);
    await Promise.all([...plan].map(([member, batch]) => this.give(member, batch)));
  }

  /** One rebalance round. Per unit: the next owner acknowledges holding its packets, the old
   * owner acknowledges releasing it (its flow state replicated), then the next owner acknowledges
   * taking it and forwards what it held, so no packet of a moving unit is lost (CL-R8). */
  async rebalance(members: readonly string[], weight: (unit: number) => number, maxMoves: number): Promise<Move[]> {
    const moves = planRebalance(this.owners, members, weight, maxMoves).filter((move) => !this.busy.has(move.unit));
    const byPair = new Map<string, Move[]>();
    for (const move of moves) byPair.set(`${move.from}\n${move.to}`, [...(byPair.get(`${move.from}\n${move.to}`) ?? []), move]);
    await Promise.all(
      [...byPair.values()].map(async (batch) => {
        const { from, to } = batch[0] as Move;
        const units = batch.map((move) => move.unit);
        units.forEach((unit) => this.busy.add(unit));
        this.changed(units);
        const acknowledged = async (step: Promise<number[]>, of: readonly number[]) => (await step.catch(() => [] as number[])).filter((unit) => of.includes(unit));
        const holding = await acknowledged(this.exchange.hold(to, units), units);
        const released = holding.length > 0 ? await acknowledged(this.exchange.release(from, holding, to), holding) : [];
        units.forEach((unit) => this.busy.delete(unit));
        for (const unit of released) this.owners[unit] = null;
        // The old owner left during the move (forget() passed over its busy units): the units it
        // did not release return to the pool, or the table would give them to a member that is gone.
        if (!this.isMember(from)) for (const unit of units) if (this.owners[unit] === from) this.owners[unit] = null;
        this.changed(units);
        await this.give(to, released);
        // Units that stay with their old owner: the next owner stops holding them.
        const stay = holding.filter((unit) => !released.includes(unit));
        if (stay.length > 0) await this.exchange.release(to, stay).catch(() => undefined);
      }),
    );
    return moves;
  }

  private async give(member: string, units: number[]): Promise<void> {
    if (units.length === 0) return;
    units.forEach((unit) => this.busy.add(unit));
    this.changed(units);
    let accepted: number[] = [];
    try {
      accepted = (await this.exchange.assign(member, units)).filter((unit) => units.includes(unit));
    } catch {
      accepted = [];
    }
    units.forEach((unit) => this.busy.delete(unit));
    for (const unit of accepted) this.owners[unit] = member;
    this.changed(units);
  }
}

/* One member's view of the 1024 units for its data plane: owned / holding / foreign, reporting
 * only what changed to the onOwnershipChange listeners. */
import { WORK_UNITS, type OwnershipChange, type OwnershipState } from './work-units.js';

export class OwnershipView {
  private readonly current: OwnershipChange[] = Array.from({ length: WORK_UNITS }, (_, unit) => ({ unit, owner: null, state: 'foreign' as OwnershipState }));
  private readonly listeners: ((changes: OwnershipChange[]) => void)[] = [];

  onChange(listener: (changes: OwnershipChange[]) => void): void {
    this.listeners.push(listener);
  }

  get(unit: number): OwnershipChange {
    return this.current[unit] as OwnershipChange;
  }

  all(): OwnershipChange[] {
    return this.current.map((entry) => ({ ...entry }));
  }

  owned(): number[] {
    return this.current.filter((entry) => entry.state === 'owned').map((entry) => entry.unit);
  }

  update(entries: Iterable<OwnershipChange>): void {
    const changes: OwnershipChange[] = [];
    for (const entry of entries) {
      const old = this.current[entry.unit] as OwnershipChange;
      if (old.owner === entry.owner && old.state === entry.state) continue;
      this.current[entry.unit] = { ...entry };
      changes.push({ ...entry });
    }
    if (changes.length > 0) for (const listener of this.listeners) listener(changes);
  }
}

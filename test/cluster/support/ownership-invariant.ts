/* Replays every unit's ownership events in time order and reports any moment when two live
 * units both said they own the same work unit. A killed unit stops counting when it was killed,
 * and a unit the master declared lost stops counting then (its units are reassigned; if it was
 * only slow, that is split brain until it hears it was removed) until it is assigned units again. */
import type { UnitEvent } from './unit-process.js';

export function checkSingleOwner(events: readonly UnitEvent[], killedAt: ReadonlyMap<string, number>): string[] {
  const owners = new Map<number, Set<string>>();
  const violations: string[] = [];
  const ordered = events
    .filter((event) => event.kind === 'ownership' || (event.kind === 'log' && event.event === 'member lost'))
    .map((event, index) => ({ event, index }))
    .sort((a, b) => a.event.at - b.event.at || a.index - b.index);
  const kills = [...killedAt].sort((a, b) => a[1] - b[1]);
  for (const { event } of ordered) {
    while (kills.length > 0 && (kills[0]?.[1] ?? Infinity) <= event.at) {
      const [unit] = kills.shift() as [string, number];
      for (const set of owners.values()) set.delete(unit);
    }
    if ((killedAt.get(event.unit) ?? Infinity) <= event.at) continue;
    if (event.kind === 'log') {
      for (const set of owners.values()) set.delete(String(event.fields?.unit));
      continue;
    }
    for (const change of event.units ?? []) {
      const set = owners.get(change.unit) ?? new Set<string>();
      owners.set(change.unit, set);
      if (change.state === 'owned') set.add(event.unit);
      else set.delete(event.unit);
      if (set.size > 1) violations.push(`unit ${change.unit} owned by ${[...set].join(' and ')} at ${event.at}`);
    }
  }
  return violations;
}

/* The master's work-unit authority: a rebalance move whose old owner leaves the cluster while the
 * move runs must not leave the table giving its units to the departed member. */
import { describe, expect, it } from 'vitest';
import { WorkUnitAuthority, type UnitExchange } from './work-units.js';

describe('WorkUnitAuthority', () => {
  it('a unit whose old owner is removed during its move returns to the pool', async () => {
    const members = new Set(['a', 'b', 'c']);
    let authority: WorkUnitAuthority | undefined;
    const exchange: UnitExchange = {
      hold: (_member, units) => Promise.resolve(units),
      // The old owner dies during the release: the master removes it (forget) and the step fails.
      release: (member) => {
        if (member !== 'b') return Promise.resolve([]);
        members.delete('b');
        authority?.forget('b');
        return Promise.reject(new Error('b: channel closed'));
      },
      assign: (_member, units) => Promise.resolve(units),
    };
    authority = new WorkUnitAuthority(exchange, () => undefined, (member) => members.has(member));
    authority.set(5, 'b');
    authority.set(6, 'b');
    authority.set(7, 'a');
    const moves = await authority.rebalance(['a', 'b', 'c'], () => 1, 1);
    expect(moves.length).toBe(1);
    expect(moves[0]?.from).toBe('b');
    // Neither of b's units may stay b's: the moved one and the one forget() freed are unassigned.
    expect([authority.owners[5], authority.owners[6]]).toEqual([null, null]);
    expect(authority.owners[7]).toBe('a');
  });
});

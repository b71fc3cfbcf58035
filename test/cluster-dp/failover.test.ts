/* The cluster drives the data plane (cluster.md CL-R3, R4, R9): appliance units side by side on
 * shared segments, long-lived TCP connections through the VIP to streaming servers, then the unit
 * that owns some of them is killed. Every connection must go on without a reset and with both
 * byte streams intact; detection and takeover times are printed. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DpCluster, median, ownedPorts, sleep, waitFor } from './support/dp-cluster.js';
import type { ClusterUnit, UnitEvent, UnitState } from './support/unit-process.js';

/** A 'held packets released' line names the units it released. */
const releasedAny = (event: UnitEvent, units: number[]) => ((event.fields?.['units'] ?? []) as number[]).some((unit) => units.includes(unit));

let bench: DpCluster;

/** Kills the victims and checks that every connection goes on intact; returns the victims' connections' resume times. */
async function failover(victims: ClusterUnit[], victimPorts: number[], kill: () => Promise<number> | number): Promise<{ killedAt: number; resumed: number[] }> {
  await sleep(1000);
  const before = await bench.mark();
  const killedAt = await kill();
  await bench.receivingAgain(before, 'every connection receiving again after the kill');
  await sleep(1000);
  const after = await bench.expectIntact(before);
  for (const victim of victims) expect(victim.alive).toBe(false);
  return { killedAt, resumed: after.filter((c) => victimPorts.includes(c.localPort)).map((c) => c.resumedAt - killedAt) };
}

beforeAll(async () => {
  bench = await DpCluster.create([1, 2, 3], 'stream');
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

describe('cluster data plane: work units and flow-state replication', () => {
  // Each test starts its own units (control ports up) and connections.
  beforeEach(async () => {
    await bench.stopAll();
    for (const slot of [1, 2, 3]) await bench.lan.setControl(slot, true);
  }, 60_000);

  it('two units: 40 long-lived TCP connections survive SIGKILL of the member owning some of them', async () => {
    const list = await bench.startCluster([1, 2]);
    const { ports, workUnits, replicated } = await bench.openConnections(40, list);
    const v = replicated.findIndex((s) => s.role !== 'master');
    const victim = list[v] as ClusterUnit;
    const master = list[1 - v] as ClusterUnit;
    const victimPorts = ownedPorts(replicated[v] as UnitState, ports, workUnits);
    expect(victimPorts.length).toBeGreaterThan(0);
    const { killedAt, resumed } = await failover([victim], victimPorts, async () => victim.kill());
    const lost = master.logged('member lost').find((e) => e.at >= killedAt);
    const victimUnits = (replicated[v] as UnitState).owned;
    const released = master.logged('held packets released').find((e) => e.at >= killedAt && releasedAny(e, victimUnits));
    expect(lost).toBeDefined();
    expect(released).toBeDefined();
    console.log(
      `failover (SIGKILL of ${victim.unitId}): detection ${Number(lost?.at) - killedAt} ms (${String(lost?.fields?.reason)}); ` +
        `takeover (first held packet of the victim's units forwarded by the survivor) ${Number(released?.at) - killedAt} ms; ` +
        `the victim's ${victimPorts.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms`,
    );
  }, 300_000);

  it('three units: 200 long-lived TCP connections survive the master vanishing (control port cut, then SIGKILL)', async () => {
    const list = await bench.startCluster([1, 2, 3]);
    const { ports, workUnits, replicated } = await bench.openConnections(200, list);
    const v = replicated.findIndex((s) => s.role === 'master');
    const victim = list[v] as ClusterUnit;
    const survivors = list.filter((unit) => unit !== victim);
    const victimPorts = ownedPorts(replicated[v] as UnitState, ports, workUnits);
    expect(victimPorts.length).toBeGreaterThan(0);
    const { killedAt, resumed } = await failover([victim], victimPorts, async () => {
      await bench.lan.setControl(list.indexOf(victim) + 1, false);
      return victim.kill();
    });
    const after = await bench.states(survivors);
    expect(after.filter((s) => s.role === 'master')).toHaveLength(1);
    const victimUnits = (replicated[v] as UnitState).owned;
    const first = (event: string, unitOnly = false) =>
      Math.min(...survivors.flatMap((unit) => unit.logged(event).filter((e) => e.at >= killedAt && (!unitOnly || releasedAny(e, victimUnits))).map((e) => e.at))) - killedAt;
    const detected = first('master lost');
    const elected = first('became master');
    const takeover = first('held packets released', true);
    expect(Number.isFinite(detected) && Number.isFinite(elected) && Number.isFinite(takeover)).toBe(true);
    console.log(
      `failover (master ${victim.unitId} vanished): detection (member watchdog) ${detected} ms; new master after ${elected} ms; ` +
        `takeover (first held packet of the victim's units forwarded by a survivor) ${takeover} ms; the victim's ${victimPorts.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms; ` +
        `survivors own ${after.map((s) => s.owned.length).join(' + ')} units, held-queue overflow ${after.map((s) => s.heldOverflow).join(' + ')}`,
    );
  }, 300_000);

  it('bulk resync: a unit that joins after 40 connections are open takes all of them over when the other two are SIGKILLed', async () => {
    const list = await bench.startCluster([1, 2]);
    const { ports } = await bench.openConnections(40, list);
    const joiner = bench.startUnit(3);
    const synced = await waitFor(
      'the joiner holds every connection from the resync',
      async () => {
        if (!joiner.events.some((e) => e.kind === 'started')) return undefined;
        const state = await joiner.state();
        return state.members.length === 3 && state.imported >= 2 * ports.length && state.learnedFlows >= 2 * ports.length ? state : undefined;
      },
      60_000,
    );
    // Rebalancing (every 2 s) may already have moved some units to the idle joiner: their
    // connections, like all others, are known to it from the resync (imported above).
    console.log(`joiner ${joiner.unitId}: ${synced.imported} flow records imported from ${synced.replication.batchesReceived} batches (${synced.replication.bytesReceived} bytes) after joining, ${synced.learnedFlows} flows, owns ${synced.owned.length} units`);
    const { killedAt, resumed } = await failover(list, ports, async () => {
      const at = Date.now();
      for (const unit of list) unit.kill();
      return at;
    });
    const state = await joiner.state();
    expect(state.role).toBe('master');
    const elected = joiner.logged('became master').find((e) => e.at >= killedAt);
    console.log(
      `failover (both others SIGKILLed): ${joiner.unitId} master after ${Number(elected?.at) - killedAt} ms, owns ${state.owned.length} units; ` +
        `all ${ports.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms`,
    );
  }, 300_000);
});

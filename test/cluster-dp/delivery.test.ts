/* The two delivery modes besides the shared unicast MAC (cluster.md CL-R2), on learning switches
 * with every neighbour found by ARP:
 * - multicast MAC: every unit answers ARP for the VIP (and the servers' gateway) with one multicast
 *   MAC, the switch floods frames for it to every unit, and the work-unit filter decides which unit
 *   processes each connection;
 * - forwarding through the master: only the master answers, with its own port's MAC, and passes
 *   each frame of a work unit another member owns on to that member, which processes it as if it had
 *   received it.
 * Three units, real nginx servers and curl through the VIP: every request answered, the client's
 * ARP entry for the VIP as the mode says, connections spread over the members (counters show who
 * created them and what the master forwarded). Then long-lived connections survive SIGKILL of a
 * member that owns some of them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';
import { DpCluster, median, ownedPorts, sleep, waitFor } from './support/dp-cluster.js';
import { SHARED_MULTICAST_MAC, VIP, type Delivery } from './support/shared-lan.js';
import type { ClusterUnit, UnitState } from './support/unit-process.js';

const REQUESTS = 60;

/** The MAC the client must have learned for the VIP. */
function expectedVipMac(delivery: Delivery, master: UnitState): string {
  return delivery === 'multicast-mac' ? SHARED_MULTICAST_MAC : (master.dataMacs[0] as string);
}

describe.each(['multicast-mac', 'master-forwarding'] as const)('%s delivery', (delivery) => {
  describe('HTTP through the VIP to nginx', () => {
    let bench: DpCluster;
    beforeAll(async () => {
      bench = await DpCluster.create([1, 2, 3], 'nginx', { delivery });
    }, 180_000);
    afterAll(async () => {
      await bench?.destroy();
    }, 60_000);

    it(`three units answer ${REQUESTS} requests; the client's ARP entry and the units' counters show the delivery`, async () => {
      const list = await bench.startCluster([1, 2, 3]);
      const servedBefore = bench.serverRequests().reduce((sum, n) => sum + n, 0);
      const out = await inNamespace(
        bench.lan.client,
        'sh',
        ['-c', `for i in $(seq ${REQUESTS}); do curl -s -o /dev/null --max-time 5 -w '%{http_code}\\n' http://${VIP}/; done`],
        { timeoutMs: 180_000 },
      );
      const codes = out.trim().split('\n');
      const neighbour = (await inNamespace(bench.lan.client, 'ip', ['neigh', 'show', VIP])).trim();
      const states = await bench.states(list);
      const master = states.find((s) => s.role === 'master') as UnitState;
      const others = states.filter((s) => s !== master);
      const servedNow = () => bench.serverRequests().reduce((sum, n) => sum + n, 0) - servedBefore;
      // nginx writes its access log line after the response: give the last one a moment
      const served = await waitFor('nginx logged every request', () => (servedNow() >= REQUESTS ? servedNow() : undefined), 5000).catch(() => servedNow());
      console.log(
        `${delivery}: ${codes.filter((c) => c === '200').length}/${REQUESTS} requests answered 200, nginx served ${served}; client: ${neighbour}; ` +
          list.map((unit, u) => `${unit.unitId} (${states[u]?.role}, port ${states[u]?.dataMacs[0]}) created ${states[u]?.flowsCreated} connections, owns ${states[u]?.owned.length} units, forwarded ${states[u]?.unitForwarded}, dropped ${states[u]?.drops.foreign_unit ?? 0} foreign / ${states[u]?.drops.other_host ?? 0} other_host`).join('; '),
      );
      expect(codes).toEqual(Array<string>(REQUESTS).fill('200'));
      expect(served).toBe(REQUESTS);
      expect(neighbour).toContain(`lladdr ${expectedVipMac(delivery, master)}`);
      // The connections spread over the members: units not the master created some.
      expect(others.reduce((sum, s) => sum + s.flowsCreated, 0)).toBeGreaterThan(0);
      expect(states.reduce((sum, s) => sum + s.flowsCreated, 0)).toBeGreaterThanOrEqual(REQUESTS);
      if (delivery === 'master-forwarding') {
        // Everything reaches the master; what other members own it passes on (both directions).
        expect(master.unitForwarded).toBeGreaterThan(0);
        for (const other of others) expect(other.unitForwarded).toBe(0);
      } else {
        // Every unit sees every packet: each drops the ones of units it does not own.
        for (const state of states) expect(state.drops.foreign_unit ?? 0).toBeGreaterThan(0);
        expect(states.every((s) => s.unitForwarded === 0)).toBe(true);
      }
    }, 300_000);
  });

  describe('long-lived connections through a member failure', () => {
    let bench: DpCluster;
    beforeAll(async () => {
      bench = await DpCluster.create([1, 2, 3], 'stream', { delivery });
    }, 180_000);
    afterAll(async () => {
      await bench?.destroy();
    }, 60_000);

    it('60 connections survive SIGKILL of a member (not the master) that owns some of them', async () => {
      const list = await bench.startCluster([1, 2, 3]);
      const { ports, workUnits, replicated } = await bench.openConnections(60, list);
      const v = replicated.findIndex((s) => s.role !== 'master' && ownedPorts(s, ports, workUnits).length > 0);
      expect(v).toBeGreaterThanOrEqual(0);
      const victim = list[v] as ClusterUnit;
      const victimPorts = ownedPorts(replicated[v] as UnitState, ports, workUnits);
      await sleep(1000);
      const before = await bench.mark();
      const killedAt = victim.kill();
      await bench.receivingAgain(before, 'every connection receiving again after the kill');
      await sleep(1000);
      const after = await bench.expectIntact(before);
      const resumed = after.filter((c) => victimPorts.includes(c.localPort)).map((c) => c.resumedAt - killedAt);
      const survivors = await bench.states(list.filter((unit) => unit !== victim));
      console.log(
        `${delivery} failover (SIGKILL of ${victim.unitId}, ${victimPorts.length} of its connections): resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms; ` +
          `survivors own ${survivors.map((s) => s.owned.length).join(' + ')} units, forwarded ${survivors.map((s) => s.unitForwarded).join(' / ')}`,
      );
    }, 300_000);

    // Forwarding delivery: the client and the servers reach the cluster through the master's MAC;
    // the new master's gratuitous ARP moves them to its own.
    it.runIf(delivery === 'master-forwarding')('60 connections survive SIGKILL of the master; the client follows the new master\'s MAC', async () => {
      await bench.stopAll();
      const list = await bench.startCluster([1, 2, 3]);
      await bench.openConnections(60, list);
      const states = await bench.states(list);
      const m = states.findIndex((s) => s.role === 'master');
      const victim = list[m] as ClusterUnit;
      await sleep(1000);
      const before = await bench.mark();
      const killedAt = victim.kill();
      await bench.receivingAgain(before, 'every connection receiving again after the master was killed');
      await sleep(1000);
      const after = await bench.expectIntact(before);
      const survivors = list.filter((unit) => unit !== victim);
      const now = await bench.states(survivors);
      const master = now.find((s) => s.role === 'master') as UnitState;
      expect(now.filter((s) => s.role === 'master')).toHaveLength(1);
      const neighbour = (await inNamespace(bench.lan.client, 'ip', ['neigh', 'show', VIP])).trim();
      expect(neighbour).toContain(`lladdr ${master.dataMacs[0]}`);
      const resumed = after.map((c) => c.resumedAt - killedAt);
      console.log(
        `forwarding failover (SIGKILL of master ${victim.unitId}): client now ${neighbour}; all ${after.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms; ` +
          `new master forwarded ${master.unitForwarded}`,
      );
    }, 300_000);
  });
});

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
 * created them and what the master forwarded). Forwarding delivery also over IPv6: the client finds
 * VIP6 by neighbour discovery (the master answers), the master passes on the servers' replies of
 * other members' connections, also the ones that overtake their replicated records, and a new
 * master's unsolicited neighbour advertisement moves the client to its MAC. Then long-lived
 * connections survive SIGKILL of a member that owns some of them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';
import { DpCluster, median, ownedPorts, sleep, waitFor } from './support/dp-cluster.js';
import { SHARED_MULTICAST_MAC, VIP, VIP6, type Delivery } from './support/shared-lan.js';
import type { ClusterUnit, UnitState } from './support/unit-process.js';

const REQUESTS = 60;

/** The drop counters that grew from `before` to `now`, by reason. */
function dropsSince(before: UnitState, now: UnitState): Record<string, number> {
  return Object.fromEntries(Object.entries(now.drops).flatMap(([reason, n]) => (n > (before.drops[reason] ?? 0) ? [[reason, n - (before.drops[reason] ?? 0)]] : [])));
}

/** The MAC the client must have learned for the VIP. */
function expectedVipMac(delivery: Delivery, master: UnitState): string {
  return delivery === 'multicast-mac' ? SHARED_MULTICAST_MAC : (master.dataMacs[0] as string);
}

describe.each(['multicast-mac', 'master-forwarding'] as const)('%s delivery', (delivery) => {
  describe('HTTP through the VIP to nginx', () => {
    let bench: DpCluster;
    beforeAll(async () => {
      bench = await DpCluster.create([1, 2, 3], 'nginx', { delivery, ipv6: delivery === 'master-forwarding' });
    }, 180_000);
    afterAll(async () => {
      await bench?.destroy();
    }, 60_000);

    it(`three units answer ${REQUESTS} requests; the client's ARP entry and the units' counters show the delivery`, async () => {
      const list = await bench.startCluster([1, 2, 3]);
      const servedBefore = bench.serverRequests().reduce((sum, n) => sum + n, 0);
      const rxBefore = (await bench.states(list)).map((state) => state.clientPortRx);
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
          list.map((unit, u) => `${unit.unitId} (${states[u]?.role}, port ${states[u]?.dataMacs[0]}) received ${(states[u]?.clientPortRx ?? 0) - (rxBefore[u] ?? 0)} client-side frames, created ${states[u]?.flowsCreated} connections, owns ${states[u]?.owned.length} units, forwarded ${states[u]?.unitForwarded}, dropped ${states[u]?.drops.foreign_unit ?? 0} foreign / ${states[u]?.drops.other_host ?? 0} other_host`).join('; '),
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
        // Every unit sees every packet (at least SYN, ACK, request, FIN of each connection) and drops
        // the ones of units it does not own. (Which unit drops how many depends on when each learned
        // who owns the new units: packets of a unit not yet assigned are held, not dropped.)
        states.forEach((state, u) => expect(state.clientPortRx - rxBefore[u]!).toBeGreaterThanOrEqual(4 * REQUESTS));
        expect(states.reduce((sum, s) => sum + (s.drops.foreign_unit ?? 0), 0)).toBeGreaterThan(0);
        expect(states.every((s) => s.unitForwarded === 0)).toBe(true);
      }
    }, 300_000);

    it.runIf(delivery === 'master-forwarding')(
      `IPv6: ${REQUESTS} requests through VIP6 answered by both servers; the master passes other members' replies on; a new master's neighbour advertisement moves the client`,
      async () => {
        const list = bench.units.filter((unit) => unit.alive);
        const before = await bench.states(list);
        const servedBefore = bench.serverRequests6();
        const curl = async (count: number) =>
          (
            await inNamespace(
              bench.lan.client,
              'sh',
              ['-c', `for i in $(seq ${count}); do curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}\n' 'http://[${VIP6}]/'; done`],
              { timeoutMs: 180_000 },
            )
          )
            .trim()
            .split('\n')
            .map((line) => line.split(' '));
        const results = await curl(REQUESTS);
        const neighbour = async () => (await inNamespace(bench.lan.client, 'ip', ['-6', 'neigh', 'show', VIP6])).trim();
        const states = await bench.states(list);
        const m = states.findIndex((s) => s.role === 'master');
        const master = states[m] as UnitState;
        const delta = (u: number, of: (s: UnitState) => number) => of(states[u] as UnitState) - of(before[u] as UnitState);
        const servedNow = () => bench.serverRequests6().map((n, i) => n - (servedBefore[i] as number));
        const served = await waitFor('nginx logged every IPv6 request', () => (servedNow().reduce((a, b) => a + b, 0) >= REQUESTS ? servedNow() : undefined), 5000).catch(() => servedNow());
        const seconds = results.map(([, time]) => Number(time));
        const clientEntry = await neighbour();
        console.log(
          `IPv6 forwarding: ${results.filter(([code]) => code === '200').length}/${REQUESTS} answered 200 (slowest ${Math.max(...seconds).toFixed(3)} s), servers served ${served.join(' + ')}; client: ${clientEntry}; ` +
            list.map((unit, u) => `${unit.unitId} (${states[u]?.role}) created ${delta(u, (s) => s.flowsCreated)}, forwarded ${delta(u, (s) => s.unitForwarded)}, drops ${JSON.stringify(dropsSince(before[u] as UnitState, states[u] as UnitState))}`).join('; '),
        );
        expect(results.map(([code]) => code)).toEqual(Array<string>(REQUESTS).fill('200'));
        expect(served.every((n) => n > 0)).toBe(true);
        expect(served.reduce((a, b) => a + b, 0)).toBe(REQUESTS);
        expect(clientEntry).toContain(`lladdr ${master.dataMacs[0]}`);
        // Members other than the master created connections: their packets, the client's and the
        // servers' replies, reached them only through the master.
        const others = list.map((_, u) => u).filter((u) => u !== m);
        expect(others.reduce((sum, u) => sum + delta(u, (s) => s.flowsCreated), 0)).toBeGreaterThan(0);
        expect(delta(m, (s) => s.unitForwarded)).toBeGreaterThan(0);
        // A server's SYN-ACK comes back long before the connection's records (20 ms batches) reach
        // the master: it goes by the client's unit, not into the master's miss (which would cost
        // each such connection a 1 s retransmission), and nothing reaches a member not its owner.
        expect(delta(m, (s) => s.drops.no_match ?? 0)).toBe(0);
        for (const u of others) expect([delta(u, (s) => s.unitForwarded), delta(u, (s) => s.drops.foreign_unit ?? 0)]).toEqual([0, 0]);

        // The master dies; the new one announces VIP6 (and the servers' IPv6 gateway) at its MAC. The
        // client sends nothing meanwhile, so only the advertisement can move its entry.
        const victim = list[m] as ClusterUnit;
        victim.kill();
        const survivors = list.filter((unit) => unit !== victim);
        const formed = await bench.formed(survivors, 30_000);
        const newMaster = formed.find((s) => s.role === 'master') as UnitState;
        const moved = await waitFor('the client\'s VIP6 entry at the new master\'s MAC', async () => ((await neighbour()).includes(`lladdr ${newMaster.dataMacs[0]}`) ? neighbour() : undefined), 10_000);
        const again = await curl(10);
        console.log(`IPv6 after SIGKILL of master ${victim.unitId}: client ${moved}; ${again.filter(([code]) => code === '200').length}/10 answered 200`);
        expect(again.map(([code]) => code)).toEqual(Array<string>(10).fill('200'));
      },
      300_000,
    );
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

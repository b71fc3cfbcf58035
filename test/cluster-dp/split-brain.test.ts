/* Split brain on the data plane (cluster.md CL-R2, R6, R9, R10): the cluster control network is cut so
 * that the master is alone and the two other units elect a master of their own, while every unit
 * still reaches the client and the servers. Both halves go on forwarding; healing the control
 * network must leave exactly one master (the half with more members wins, although the loner has
 * the lower address) and every long-lived connection intact across the partition and the heal.
 * Every mastership, and the tie-break win, shows as a gratuitous ARP for the VIP on the client's
 * segment (captured with tcpdump). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from './support/capture.js';
import { DpCluster, sleep, waitFor } from './support/dp-cluster.js';
import { SHARED_VIP_MAC, VIP } from './support/shared-lan.js';
import type { ClusterUnit } from './support/unit-process.js';

let bench: DpCluster;

beforeAll(async () => {
  bench = await DpCluster.create([1, 2, 3], 'stream');
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

describe('cluster data plane: split brain', () => {
  it('a partition of the control network makes two masters; after healing one remains and 120 long-lived TCP connections are intact', async () => {
    // Gratuitous ARP for the VIP at the shared cluster MAC, as the client's segment carries it.
    const arp = new Capture(bench.lan.client, 'eth0', ['arp']);
    await arp.started();
    const announcements = (from: number, to = Infinity) =>
      arp.lines.filter((line) => line.at >= from && line.at <= to && line.text.startsWith(`${SHARED_VIP_MAC} > ff:ff:ff:ff:ff:ff`) && line.text.includes(`Request who-has ${VIP} tell ${VIP}`));
    const startedAt = Date.now();
    const list = await bench.startCluster([1, 2, 3]);
    const { ports } = await bench.openConnections(120, list);
    const [loner, ...majority] = list as [ClusterUnit, ...ClusterUnit[]];
    expect((await loner.state()).role).toBe('master');
    const firstAnnouncement = await waitFor('the first master\'s gratuitous ARP on the client segment', () => announcements(startedAt)[0], 10_000);
    console.log(`gratuitous ARP of the first master: ${firstAnnouncement.text}`);
    await sleep(1000);

    const beforeSplit = await bench.mark();
    const splitAt = Date.now();
    await bench.lan.setControl(bench.slotOf(loner), false);
    const split = await waitFor(
      'two masters: the loner and one of the majority',
      async () => {
        const [alone, ...rest] = await bench.states(list);
        const restMaster = rest.find((s) => s.role === 'master');
        const agreed = restMaster && rest.every((s) => s.masterId === restMaster.masterId && s.members.length === 2);
        return alone?.role === 'master' && alone.members.length === 1 && agreed ? { alone, rest, restMaster } : undefined;
      },
      30_000,
    );
    // The majority's new master announces the VIP (the loner was master all along).
    await waitFor('the new master\'s gratuitous ARP', () => announcements(splitAt)[0], 10_000);
    const majorityMaster = list.find((unit) => unit.unitId === split.restMaster.masterId) as ClusterUnit;
    expect(majorityMaster.logged('gratuitous arp sent').some((e) => e.at >= splitAt)).toBe(true);
    console.log(`partitioned after ${Date.now() - splitAt} ms: masters ${loner.unitId} (alone) and ${split.restMaster.masterId} (with ${split.rest.length - 1} member)`);
    // Both halves see every packet on the shared segments, and each took over the other's units.
    await bench.receivingAgain(beforeSplit, 'every connection receiving during the partition');
    await sleep(2000);
    await bench.expectIntact(beforeSplit);
    const workUnits = await bench.unitsOf(ports, list);
    const distinct = [...new Set(workUnits)];
    const ownedBy = (state: { owned: number[] } | undefined) => distinct.filter((unit) => state?.owned.includes(unit)).length;
    const during = await waitFor(
      'each half owning every unit of the connections',
      async () => {
        const all = await bench.states(list);
        return ownedBy(all[0]) === distinct.length && ownedBy(all[1]) + ownedBy(all[2]) === distinct.length ? all : undefined;
      },
      30_000,
    );
    console.log(`during the partition: the connections' ${distinct.length} units are all owned by the loner and by the majority (${ownedBy(during[1])} + ${ownedBy(during[2])})`);

    const beforeHeal = await bench.mark();
    const healedAt = Date.now();
    await bench.lan.setControl(bench.slotOf(loner), true);
    const healed = await bench.formed(list, 30_000);
    const convergedMs = Date.now() - healedAt;
    const master = healed.find((s) => s.role === 'master');
    // Settled: one owner per unit of the connections, as seen by every member.
    await waitFor(
      'each connection unit owned by exactly one member',
      async () => {
        const all = await bench.states(list);
        return workUnits.every((unit) => all.filter((s) => s.owned.includes(unit)).length === 1) || undefined;
      },
      30_000,
    );
    const settledMs = Date.now() - healedAt;
    expect(master?.masterId).toBe(split.restMaster.masterId); // two members beat one lower address
    expect(loner.logged('stepping down').some((e) => e.at >= healedAt)).toBe(true);
    // The tie-break winner re-announces the VIP after the heal (CL-R2).
    const reannounced = await waitFor('the winner\'s gratuitous ARP after the heal', () => announcements(healedAt)[0], 10_000);
    expect(majorityMaster.logged('announcing the cluster addresses').some((e) => e.at >= healedAt && String(e.fields?.reason).startsWith('won the tie-break'))).toBe(true);
    console.log(`gratuitous ARP after the heal, ${reannounced.at - healedAt} ms: ${reannounced.text}`);
    arp.stop();
    await bench.receivingAgain(beforeHeal, 'every connection receiving after the heal');
    await sleep(2000);
    await bench.expectIntact(beforeHeal);
    const finalStates = await bench.states(list);
    expect(finalStates.filter((s) => s.role === 'master')).toHaveLength(1);
    // Never two owners of one unit (a unit in a rebalance move may have none for a moment).
    for (const unit of workUnits) expect(finalStates.filter((s) => s.owned.includes(unit)).length).toBeLessThanOrEqual(1);
    console.log(
      `healed: one master ${master?.masterId} after ${convergedMs} ms (3 members, one master, replication links up), each unit one owner after ${settledMs} ms; ` +
        `the loner ${loner.unitId} stepped down and owns ${finalStates[0]?.owned.length} units, ${majority.map((unit, i) => `${unit.unitId} ${finalStates[i + 1]?.owned.length}`).join(', ')}`,
    );
  }, 300_000);
});

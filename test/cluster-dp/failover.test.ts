/* The cluster drives the data plane (cluster.md CL-R3, R4, R9): appliance units side by side on
 * shared segments, long-lived TCP connections through the VIP to streaming servers, then the unit
 * that owns some of them is killed. Every connection must go on without a reset and with both
 * byte streams intact; detection and takeover times are printed. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { provisionUnits } from '../cluster/support/units.js';
import { waitFor } from '../cluster/support/unit-process.js';
import { NamespaceScript } from './support/ns-script.js';
import { CLIENT_IP, VIP, createSharedLan, type SharedLan } from './support/shared-lan.js';
import { CHUNK } from './support/stream-pattern.js';
import { ClusterUnit, type UnitState } from './support/unit-process.js';

interface ConnectionReport {
  localPort: number;
  received: number;
  sent: number;
  bad: boolean;
  error?: string;
  closed: boolean;
  maxGapMs: number;
  resumedAt: number;
}

let lan: SharedLan;
let provisioned: Awaited<ReturnType<typeof provisionUnits>>;
let servers: NamespaceScript[] = [];
let client: NamespaceScript;
let units: ClusterUnit[] = [];

function startUnit(slot: number): ClusterUnit {
  const config = provisioned.units.good[slot - 1];
  if (!config) throw new Error(`no flash config for slot ${slot}`);
  const unit = new ClusterUnit(config.unitId, lan.unitNamespace(slot), { dir: config.dir, address: lan.unitAddress(slot), slot });
  units.push(unit);
  return unit;
}

const states = (list: ClusterUnit[]) => Promise.all(list.map((unit) => unit.state()));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Slot 1 first (it becomes master), then the others; resolves when all replicate to all. */
async function startCluster(slots: number[]): Promise<ClusterUnit[]> {
  const first = startUnit(slots[0] as number);
  await waitFor('the first unit is master', async () => (first.events.some((e) => e.kind === 'started') ? (await first.state()).role === 'master' || undefined : undefined), 60_000);
  const list = [first, ...slots.slice(1).map(startUnit)];
  const formed = await waitFor(
    `${slots.length} members replicating to each other`,
    async () => {
      if (!list.every((unit) => unit.events.some((e) => e.kind === 'started'))) return undefined;
      const all = await states(list);
      return all.every((s) => s.members.length === slots.length && s.replicatingTo.length === slots.length - 1) ? all : undefined;
    },
    60_000,
  );
  expect(formed.filter((s) => s.role === 'master')).toHaveLength(1);
  return list;
}

async function openConnections(count: number, list: ClusterUnit[]) {
  const opened = await client.ask<{ ports?: number[]; error?: string }>('open', { host: VIP, port: 80, count }, 180_000);
  expect(opened.error).toBeUndefined();
  const ports = opened.ports ?? [];
  expect(ports).toHaveLength(count);
  // Both directions of every connection are replicated: every unit holds all of them.
  const replicated = await waitFor(
    'every connection known to every unit',
    async () => {
      const all = await states(list);
      return all.every((s) => s.learnedFlows >= 2 * count) ? all : undefined;
    },
    30_000,
  );
  const clients = ports.map((port): [string, number] => [CLIENT_IP, port]);
  const workUnits = await (list[0] as ClusterUnit).unitsOf(clients);
  for (const unit of list.slice(1)) expect(await unit.unitsOf(clients)).toEqual(workUnits);
  // Each connection's unit has exactly one owner, and non-owners drop silently.
  const ownerOf = (i: number) => replicated.filter((s) => s.owned.includes(workUnits[i] as number)).length;
  expect(ports.map((_, i) => ownerOf(i))).toEqual(ports.map(() => 1));
  for (const s of replicated) expect(s.drops.foreign_unit ?? 0).toBeGreaterThan(0);
  console.log(
    `${count} connections: ${list.map((unit, u) => `${unit.unitId} (${replicated[u]?.role}) owns ${replicated[u]?.owned.length} units / ${ports.filter((_, i) => replicated[u]?.owned.includes(workUnits[i] as number)).length} connections, dropped ${replicated[u]?.drops.foreign_unit} foreign`).join('; ')}; ` +
      `replication batches sent/acked ${replicated.map((s) => `${s.replication.batchesSent}/${s.replication.batchesAcked}`).join(' ')}`,
  );
  return { ports, workUnits, replicated };
}

/** Kills the victims and checks that every connection goes on intact; returns the victims' connections' resume times. */
async function failover(victims: ClusterUnit[], victimPorts: number[], kill: () => Promise<number>): Promise<{ killedAt: number; resumed: number[] }> {
  await sleep(1000);
  const before = new Map((await client.ask<ConnectionReport[]>('report')).map((c) => [c.localPort, c]));
  await client.ask('mark');
  const killedAt = await kill();
  const stalled = (now: ConnectionReport[]) => now.filter((c) => c.received < (before.get(c.localPort)?.received ?? 0) + 4 * CHUNK);
  try {
    await waitFor('every connection receiving again after the kill', async () => stalled(await client.ask<ConnectionReport[]>('report')).length === 0 || undefined, 60_000);
  } catch (error) {
    const stuck = stalled(await client.ask<ConnectionReport[]>('report'));
    const survivors = units.filter((unit) => unit.alive);
    const stuckUnits = await (survivors[0] as ClusterUnit).unitsOf(stuck.map((c): [string, number] => [CLIENT_IP, c.localPort]));
    console.log(`stalled: ${JSON.stringify(stuck.slice(0, 5))} units ${JSON.stringify(stuckUnits)}`);
    for (const unit of survivors) console.log(`${unit.unitId}: ${JSON.stringify(await unit.state())}\n${JSON.stringify(await unit.view([...new Set(stuckUnits)].slice(0, 10)), null, 1)}`);
    throw error;
  }
  await sleep(1000);
  const after = await client.ask<ConnectionReport[]>('report');
  for (const c of after) {
    const was = before.get(c.localPort);
    expect({ port: c.localPort, error: c.error, closed: c.closed, bad: c.bad }).toEqual({ port: c.localPort, error: undefined, closed: false, bad: false });
    expect(c.received).toBeGreaterThan((was?.received ?? 0) + 4 * CHUNK);
  }
  for (const victim of victims) expect(victim.alive).toBe(false);
  console.log(`streams: ${after.length} connections intact, no reset; ${after.reduce((sum, c) => sum + c.received, 0)} bytes received and checked, ${after.reduce((sum, c) => sum + c.sent, 0)} sent and checked by the servers`);
  return { killedAt, resumed: after.filter((c) => victimPorts.includes(c.localPort)).map((c) => c.resumedAt - killedAt) };
}

function ownedPorts(state: UnitState, ports: number[], workUnits: number[]): number[] {
  return ports.filter((_, i) => state.owned.includes(workUnits[i] as number));
}

async function stopAll(): Promise<void> {
  await client?.ask('close', {}, 15_000).catch(() => undefined);
  await Promise.all(units.map((unit) => unit.stop()));
  units = [];
}

beforeAll(async () => {
  lan = await createSharedLan('epcd');
  for (const slot of [1, 2, 3]) await lan.addUnit(slot);
  provisioned = await provisionUnits((slot) => lan.unitAddress(slot));
  servers = lan.servers.map((namespace) => new NamespaceScript(namespace, 'stream-server.ts'));
  await Promise.all(servers.map((server) => server.once('ready')));
  client = new NamespaceScript(lan.client, 'stream-client.ts');
  await client.once('ready');
}, 180_000);

afterAll(async () => {
  await stopAll();
  client?.kill();
  for (const server of servers) server.kill();
  await lan?.destroy();
  await provisioned?.cleanup();
}, 60_000);

describe('cluster data plane: work units and flow-state replication', () => {
  // Each test starts its own units (control ports up) and connections.
  beforeEach(async () => {
    await stopAll();
    for (const slot of [1, 2, 3]) await lan.setControl(slot, true);
  }, 60_000);

  it('two units: 40 long-lived TCP connections survive SIGKILL of the member owning some of them', async () => {
    const list = await startCluster([1, 2]);
    const { ports, workUnits, replicated } = await openConnections(40, list);
    const v = replicated.findIndex((s) => s.role !== 'master');
    const victim = list[v] as ClusterUnit;
    const master = list[1 - v] as ClusterUnit;
    const victimPorts = ownedPorts(replicated[v] as UnitState, ports, workUnits);
    expect(victimPorts.length).toBeGreaterThan(0);
    const { killedAt, resumed } = await failover([victim], victimPorts, async () => victim.kill());
    const lost = master.logged('member lost').find((e) => e.at >= killedAt);
    const victimUnits = (replicated[v] as UnitState).owned;
    const released = master.logged('held packets released').find((e) => e.at >= killedAt && victimUnits.includes(Number(e.fields?.unit)));
    expect(lost).toBeDefined();
    expect(released).toBeDefined();
    console.log(
      `failover (SIGKILL of ${victim.unitId}): detection ${Number(lost?.at) - killedAt} ms (${String(lost?.fields?.reason)}); ` +
        `takeover (first held packet of the victim's units forwarded by the survivor) ${Number(released?.at) - killedAt} ms; ` +
        `the victim's ${victimPorts.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms`,
    );
  }, 300_000);

  it('three units: 200 long-lived TCP connections survive the master vanishing (control port cut, then SIGKILL)', async () => {
    const list = await startCluster([1, 2, 3]);
    const { ports, workUnits, replicated } = await openConnections(200, list);
    const v = replicated.findIndex((s) => s.role === 'master');
    const victim = list[v] as ClusterUnit;
    const survivors = list.filter((unit) => unit !== victim);
    const victimPorts = ownedPorts(replicated[v] as UnitState, ports, workUnits);
    expect(victimPorts.length).toBeGreaterThan(0);
    const { killedAt, resumed } = await failover([victim], victimPorts, async () => {
      await lan.setControl(list.indexOf(victim) + 1, false);
      return victim.kill();
    });
    const after = await states(survivors);
    expect(after.filter((s) => s.role === 'master')).toHaveLength(1);
    const victimUnits = (replicated[v] as UnitState).owned;
    const first = (event: string, unitOnly = false) =>
      Math.min(...survivors.flatMap((unit) => unit.logged(event).filter((e) => e.at >= killedAt && (!unitOnly || victimUnits.includes(Number(e.fields?.unit)))).map((e) => e.at))) - killedAt;
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
    const list = await startCluster([1, 2]);
    const { ports } = await openConnections(40, list);
    const joiner = startUnit(3);
    const synced = await waitFor(
      'the joiner holds every connection from the resync',
      async () => {
        if (!joiner.events.some((e) => e.kind === 'started')) return undefined;
        const state = await joiner.state();
        return state.members.length === 3 && state.imported >= 2 * ports.length && state.learnedFlows >= 2 * ports.length ? state : undefined;
      },
      60_000,
    );
    console.log(`joiner ${joiner.unitId}: ${synced.imported} flow records imported from ${synced.replication.batchesReceived} batches (${synced.replication.bytesReceived} bytes) after joining, ${synced.learnedFlows} flows, owns ${synced.owned.length} units`);
    expect(synced.owned).toEqual([]);
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

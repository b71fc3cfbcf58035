/* The cluster drives the data plane (cluster.md CL-R3, R4, R9): appliance units side by side on
 * shared segments, long-lived TCP connections through the VIP to a streaming server, then the unit
 * that owns some of them is SIGKILLed. Every connection must go on without a reset and with both
 * byte streams intact; detection and takeover times are printed. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionUnits } from '../cluster/support/units.js';
import { waitFor } from '../cluster/support/unit-process.js';
import { NamespaceScript } from './support/ns-script.js';
import { CLIENT_IP, VIP, createSharedLan, type SharedLan } from './support/shared-lan.js';
import { CHUNK } from './support/stream-pattern.js';
import { ClusterUnit, type UnitState } from './support/unit-process.js';

const CONNECTIONS = 40;

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
const units: ClusterUnit[] = [];

function startUnit(slot: number): ClusterUnit {
  const config = provisioned.units.good[slot - 1];
  if (!config) throw new Error(`no flash config for slot ${slot}`);
  const unit = new ClusterUnit(config.unitId, lan.unitNamespace(slot), { dir: config.dir, address: lan.unitAddress(slot), slot });
  units.push(unit);
  return unit;
}

const states = (list: ClusterUnit[]) => Promise.all(list.map((unit) => unit.state()));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

beforeAll(async () => {
  lan = await createSharedLan('epcd');
  for (const slot of [1, 2]) await lan.addUnit(slot);
  provisioned = await provisionUnits((slot) => lan.unitAddress(slot));
  servers = lan.servers.map((namespace) => new NamespaceScript(namespace, 'stream-server.ts'));
  await Promise.all(servers.map((server) => server.once('ready')));
  client = new NamespaceScript(lan.client, 'stream-client.ts');
  await client.once('ready');
}, 180_000);

afterAll(async () => {
  await client?.ask('close', {}, 5000).catch(() => undefined);
  client?.kill();
  for (const server of servers) server.kill();
  await Promise.all(units.map((unit) => unit.stop()));
  await lan?.destroy();
  await provisioned?.cleanup();
}, 60_000);

describe('cluster data plane: work units and flow-state replication', () => {
  it(`two units: ${CONNECTIONS} long-lived TCP connections survive SIGKILL of the unit owning some of them`, async () => {
    const first = startUnit(1);
    await waitFor('unit 1 is master', async () => (first.alive && first.events.some((e) => e.kind === 'started') ? (await first.state()).role === 'master' || undefined : undefined), 60_000);
    const second = startUnit(2);
    const joined = await waitFor(
      'two members replicating to each other',
      async () => {
        if (!second.events.some((e) => e.kind === 'started')) return undefined;
        const list = await states([first, second]);
        return list.every((s) => s.members.length === 2 && s.replicatingTo.length === 1) ? list : undefined;
      },
      60_000,
    );
    expect(joined.map((s) => s.role).sort()).toEqual(['master', 'member']);

    const opened = await client.ask<{ ports?: number[]; error?: string }>('open', { host: VIP, port: 80, count: CONNECTIONS }, 120_000);
    expect(opened.error).toBeUndefined();
    const ports = opened.ports ?? [];
    expect(ports).toHaveLength(CONNECTIONS);

    // Both directions of every connection are replicated: each unit holds all of them.
    const replicated = await waitFor(
      'every connection known to both units',
      async () => {
        const list = await states([first, second]);
        return list.every((s) => s.learnedFlows >= 2 * CONNECTIONS) ? list : undefined;
      },
      20_000,
    );
    const workUnits = await first.unitsOf(ports.map((port) => [CLIENT_IP, port]));
    expect(await second.unitsOf(ports.map((port) => [CLIENT_IP, port]))).toEqual(workUnits);
    const [masterState, memberState] = (replicated[0] as UnitState).role === 'master' ? replicated : [...replicated].reverse();
    const [master, victim] = (replicated[0] as UnitState).role === 'master' ? [first, second] : [second, first];
    const victimUnits = new Set((memberState as UnitState).owned);
    const victimPorts = ports.filter((_, i) => victimUnits.has(workUnits[i] as number));
    const masterUnits = new Set((masterState as UnitState).owned);
    console.log(
      `before the kill: master ${master.unitId} owns ${masterUnits.size} units / ${ports.length - victimPorts.length} connections, ` +
        `${victim.unitId} owns ${victimUnits.size} units / ${victimPorts.length} connections; ` +
        `silent non-owner drops: ${replicated.map((s) => s.drops.foreign_unit ?? 0).join(' / ')}; ` +
        `replication batches sent/acked: ${replicated.map((s) => `${s.replication.batchesSent}/${s.replication.batchesAcked}`).join(' / ')}`,
    );
    expect(victimPorts.length).toBeGreaterThan(0);
    expect(ports.every((_, i) => victimUnits.has(workUnits[i] as number) || masterUnits.has(workUnits[i] as number))).toBe(true);
    for (const s of replicated) expect(s.drops.foreign_unit ?? 0).toBeGreaterThan(0);

    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = new Map((await client.ask<ConnectionReport[]>('report')).map((c) => [c.localPort, c]));
    await client.ask('mark');
    const killedAt = victim.kill();

    // Every connection, the victim's included, goes on receiving the stream.
    await waitFor(
      'every connection receiving again after the kill',
      async () => {
        const now = await client.ask<ConnectionReport[]>('report');
        return now.every((c) => c.received >= (before.get(c.localPort)?.received ?? 0) + 4 * CHUNK) || undefined;
      },
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await client.ask<ConnectionReport[]>('report');
    const lost = master.logged('member lost').find((e) => e.at >= killedAt);
    const released = master.logged('held packets released').find((e) => e.at >= killedAt);
    const resumed = after.filter((c) => victimPorts.includes(c.localPort)).map((c) => c.resumedAt - killedAt);
    const masterAfter = await master.state();
    console.log(
      `failover: ${victim.unitId} killed; detection ${lost ? lost.at - killedAt : 'none'} ms (${String(lost?.fields?.reason)}); ` +
        `takeover (first held packet forwarded by the survivor) ${released ? released.at - killedAt : 'none'} ms; ` +
        `victim's ${victimPorts.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms; ` +
        `survivor owns ${masterAfter.owned.length} units, released ${masterAfter.released.packets} held packets`,
    );
    expect(lost).toBeDefined();
    expect(released).toBeDefined();
    for (const c of after) {
      const was = before.get(c.localPort);
      expect({ port: c.localPort, error: c.error, closed: c.closed, bad: c.bad }).toEqual({ port: c.localPort, error: undefined, closed: false, bad: false });
      expect(c.received).toBeGreaterThan((was?.received ?? 0) + 4 * CHUNK);
    }
    console.log(`streams: ${after.length} connections intact, ${after.reduce((sum, c) => sum + c.received, 0)} bytes received and checked, ${after.reduce((sum, c) => sum + c.sent, 0)} bytes sent`);
  }, 300_000);
});

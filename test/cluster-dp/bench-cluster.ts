/* Cluster figures for `npm run bench` (scripts/bench-cluster.sh; method in docs/benchmarks.md):
 *  - new connections per second through a two-unit cluster (the shared LAN of the cluster-dp tests,
 *    wrk with a new connection per request through the VIP to two nginx servers), flow-state
 *    replication off and on, alternating, medians;
 *  - flow records replicated per second between the two units over the replication link (mutual
 *    TLS, acknowledged batches of 2048), the records being the real ones the data plane produced
 *    for the wrk connections; and how many of them the peer queued into its data plane meanwhile.
 * Environment: BENCH_ROUNDS (default 3), BENCH_SECONDS (wrk and replication seconds, default 5). Root. */
import { provisionUnits } from '../cluster/support/units.js';
import { waitFor } from '../cluster/support/unit-process.js';
import { startNginx } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { SERVER_IPS, VIP, createSharedLan } from './support/shared-lan.js';
import { ClusterUnit, type UnitState } from './support/unit-process.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PREFIX = 'epcb';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const lan = await createSharedLan(PREFIX);
const provisioned = await provisionUnits((slot) => lan.unitAddress(slot));
let units: ClusterUnit[] = [];

async function stopUnits(): Promise<void> {
  await Promise.all(units.map((unit) => unit.stop()));
  units = [];
}

async function cluster(replication: boolean): Promise<ClusterUnit[]> {
  const start = (slot: number) => {
    const config = provisioned.units.good[slot - 1];
    if (!config) throw new Error(`no flash config for slot ${slot}`);
    const unit = new ClusterUnit(config.unitId, lan.unitNamespace(slot), { dir: config.dir, address: lan.unitAddress(slot), slot, prefix: PREFIX, replication, detectionMs: 2000 });
    units.push(unit);
    return unit;
  };
  const first = start(1);
  await waitFor('unit 1 master', async () => (first.events.some((e) => e.kind === 'started') ? (await first.state()).role === 'master' || undefined : undefined), 60_000);
  const second = start(2);
  await waitFor(
    'two members replicating to each other',
    async () => {
      if (!second.events.some((e) => e.kind === 'started')) return undefined;
      const all = await Promise.all([first, second].map((unit) => unit.state()));
      return all.every((s) => s.members.length === 2 && s.replicatingTo.length === 1) || undefined;
    },
    60_000,
  );
  return [first, second];
}

async function wrk(seconds: number): Promise<{ rate: number; errors: number }> {
  const output = await inNamespace(lan.client, 'wrk', ['-t1', '-c8', `-d${seconds}s`, '--timeout', '5s', '-H', 'Connection: close', `http://${VIP}/`], { timeoutMs: (seconds + 60) * 1000 });
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const errors = (socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  return { rate, errors };
}

const nginx = await Promise.all(lan.servers.map((namespace, i) => startNginx(namespace, SERVER_IPS[i] as string)));
try {
  for (const slot of [1, 2]) await lan.addUnit(slot);
  await inNamespace(lan.client, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
  const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
  const replicated: { perSecond: number; importedPerSecond: number }[] = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const mode of ['off', 'on'] as const) {
      const list = await cluster(mode === 'on');
      await wrk(3); // warm-up: work units are assigned on first use
      const { rate, errors } = await wrk(SECONDS);
      rates[mode].push(rate);
      let figure = '';
      if (mode === 'on') {
        const [sender, peer] = list as [ClusterUnit, ClusterUnit];
        const before: UnitState = await peer.state();
        const result = await sender.benchReplication(SECONDS);
        if (result.error) throw new Error(`replication benchmark: ${result.error}`);
        const after = await peer.state();
        const perSecond = result.records / (result.ms / 1000);
        const importedPerSecond = (after.imported - before.imported) / (result.ms / 1000);
        replicated.push({ perSecond, importedPerSecond });
        figure = `; replication ${Math.round(perSecond)} records/s acknowledged (${result.acked} batches of ${result.batchRecords}), peer queued ${Math.round(importedPerSecond)}/s into its data plane`;
      }
      console.log(`bench-cluster: round ${round}/${ROUNDS} replication ${mode}: ${Math.round(rate)} new connections/s, ${errors} errors${figure}`);
      await stopUnits();
    }
  }
  const off = median(rates.off);
  const on = median(rates.on);
  console.log(`\nMedians of ${ROUNDS} rounds, ${SECONDS} s each, two units, wrk -c8 with a new connection per request through the VIP:`);
  console.log(`${'figure'.padEnd(62)} ${'value'.padStart(10)} ${'ratio'.padStart(7)}`);
  console.log(`${'new connections/s, replication off'.padEnd(62)} ${off.toFixed(0).padStart(10)} ${'1.000'.padStart(7)}`);
  console.log(`${'new connections/s, replication on'.padEnd(62)} ${on.toFixed(0).padStart(10)} ${(on / off).toFixed(3).padStart(7)}`);
  console.log(`${'flow records replicated/s (mutual TLS, acknowledged)'.padEnd(62)} ${median(replicated.map((r) => r.perSecond)).toFixed(0).padStart(10)}`);
  console.log(`${'  of which the peer queued into its data plane per s'.padEnd(62)} ${median(replicated.map((r) => r.importedPerSecond)).toFixed(0).padStart(10)}`);
} finally {
  await stopUnits();
  await Promise.all(nginx.map((server) => server.stop()));
  await lan.destroy();
  await provisioned.cleanup();
}

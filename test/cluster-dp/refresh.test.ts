/* Flow refresh (cluster.md "Flow refresh"): a connection's records go out when its TCP state
 * changes, so without more the peers' copies of a connection established longer than the
 * established timeout expire while its owner still forwards it. With a 9 s timeout, long-lived TCP
 * streams run for over three timeouts through a 2-unit cluster; then every unit must still know
 * every connection, and SIGKILL of the member owning some of them must leave every stream going
 * with its bytes intact. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DpCluster, median, ownedPorts, sleep } from './support/dp-cluster.js';
import type { ClusterUnit, UnitState } from './support/unit-process.js';

const ESTABLISHED_SECONDS = 9;
const STREAMING_MS = 30_000;
const CONNECTIONS = 40;

let bench: DpCluster;

beforeAll(async () => {
  bench = await DpCluster.create([1, 2], 'stream', { establishedSeconds: ESTABLISHED_SECONDS });
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

describe('cluster data plane: flow refresh', () => {
  it(`connections established for over three ${ESTABLISHED_SECONDS} s timeouts survive SIGKILL of the member owning some of them`, async () => {
    const list = await bench.startCluster([1, 2]);
    const { ports, workUnits, replicated } = await bench.openConnections(CONNECTIONS, list);
    const v = replicated.findIndex((s) => s.role !== 'master');
    const victim = list[v] as ClusterUnit;
    const survivor = list[1 - v] as ClusterUnit;
    const startedAt = Date.now();
    await sleep(STREAMING_MS);
    const streamed = await bench.states(list);
    const seconds = (Date.now() - startedAt) / 1000;
    console.log(
      `after ${seconds.toFixed(1)} s of streaming: learned flows ${streamed.map((s) => s.learnedFlows).join(' / ')}, book ${streamed.map((s) => s.book).join(' / ')}, ` +
        `refreshes sent ${streamed.map((s) => `${s.refreshesSent} (${(s.refreshesSent / seconds).toFixed(1)}/s)`).join(' / ')}, events lost ${streamed.map((s) => s.eventsLost).join(' / ')}`,
    );
    // Every unit still holds both directions of every connection, its own and its peer's copies.
    for (const state of streamed) {
      expect(state.learnedFlows).toBeGreaterThanOrEqual(2 * CONNECTIONS);
      expect(state.book).toBeGreaterThanOrEqual(2 * CONNECTIONS);
    }
    expect((streamed[v] as UnitState).refreshesSent).toBeGreaterThan(0);
    // Rebalancing may have moved units meanwhile: the victim's connections are those it owns now.
    const victimPorts = ownedPorts(streamed[v] as UnitState, ports, workUnits);
    expect(victimPorts.length).toBeGreaterThan(0);

    const before = await bench.mark();
    const killedAt = victim.kill();
    await bench.receivingAgain(before, 'every connection receiving again after the kill');
    await sleep(1000);
    const after = await bench.expectIntact(before);
    expect(victim.alive).toBe(false);
    const resumed = after.filter((c) => victimPorts.includes(c.localPort)).map((c) => c.resumedAt - killedAt);
    const lost = survivor.logged('member lost').find((e) => e.at >= killedAt);
    expect(lost).toBeDefined();
    console.log(
      `failover (SIGKILL of ${victim.unitId} after ${seconds.toFixed(1)} s): detection ${Number(lost?.at) - killedAt} ms; ` +
        `the victim's ${victimPorts.length} connections resumed after median ${median(resumed)} ms, max ${Math.max(...resumed)} ms`,
    );
  }, 300_000);
});

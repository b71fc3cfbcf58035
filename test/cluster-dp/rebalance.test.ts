/* Rebalancing under load (cluster.md CL-R8): wrk drives HTTP requests through the VIP to the two
 * nginx servers while a two-unit cluster carries them; a third unit joins and the master moves work
 * units to it every rebalance round by the acknowledged hold / release / assign exchange. The moves
 * must show in the members' ownership within a few seconds, and not one request may fail. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';
import { DpCluster, sleep, waitFor } from './support/dp-cluster.js';
import { VIP } from './support/shared-lan.js';

let bench: DpCluster;

const WRK_SECONDS = 24;
const PACE_MS = 8;
const scratch = mkdtempSync(path.join(tmpdir(), 'ep-rebalance-'));
const paceScript = path.join(scratch, 'pace.lua');
writeFileSync(paceScript, `function delay()\n  return ${PACE_MS}\nend\n`);

interface WrkResult {
  requests: number;
  non2xx: number;
  socketErrors: number;
  output: string;
}

function parseWrk(output: string): WrkResult {
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return { requests, non2xx, socketErrors, output };
}

beforeAll(async () => {
  // wrk, nginx and three polling data planes saturate both cores: the member watchdog gets 2 s
  // here so that a starved process is not taken for a dead one (this test is about moves).
  bench = await DpCluster.create([1, 2, 3], 'nginx', { detectionMs: 2000 });
  // wrk's closed connections sit in TIME_WAIT: room for every source port it may use.
  await inNamespace(bench.lan.client, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
  rmSync(scratch, { recursive: true, force: true });
}, 60_000);

describe('cluster data plane: rebalancing', () => {
  it('a unit joining under wrk load gets work units moved to it within a few seconds, and no request fails', async () => {
    const list = await bench.startCluster([1, 2]);
    const servedBefore = bench.serverRequests();
    const startedAt = Date.now();
    // Two clients: keep-alive connections (long request streams) and a new connection per request.
    // Paced (a request per connection every PACE_MS at most): unpaced, wrk and nginx take both
    // cores and the units' control processes starve for seconds, which tests the watchdogs instead.
    const wrk = (connections: number, extra: string[]) =>
      inNamespace(bench.lan.client, 'wrk', ['-t1', `-c${connections}`, `-d${WRK_SECONDS}s`, '--timeout', '10s', '-s', paceScript, ...extra, `http://${VIP}/`], { timeoutMs: (WRK_SECONDS + 60) * 1000 });
    const keepAlive = wrk(16, []);
    const perRequest = wrk(4, ['-H', 'Connection: close']);
    await sleep(6000);
    const ownedBefore = await bench.states(list);
    const joiner = bench.startUnit(3);
    const joinedAt = await waitFor('the third unit is a member', async () => (joiner.events.some((e) => e.kind === 'started') && (await joiner.state()).role === 'member' ? Date.now() : undefined), 60_000);
    const firstOwned = await waitFor('the joiner owns work units', async () => ((await joiner.state()).owned.length > 0 ? Date.now() : undefined), 15_000);
    const [keepAliveOut, perRequestOut] = await Promise.all([keepAlive, perRequest]);
    const endedAt = Date.now();
    const after = await bench.states([...list, joiner]);
    const results = [parseWrk(keepAliveOut), parseWrk(perRequestOut)];
    console.log(`wrk keep-alive:\n${keepAliveOut}\nwrk Connection: close:\n${perRequestOut}`);

    const master = [...list, joiner][after.findIndex((s) => s.role === 'master')];
    const rounds = (master?.logged('rebalanced') ?? []).filter((e) => e.at >= startedAt && e.at <= endedAt);
    const movedToJoiner = after[2]?.owned.length ?? 0;
    console.log(
      `rebalancing: the third unit joined ${((joinedAt - startedAt) / 1000).toFixed(1)} s into the load; first units owned by the joiner ${firstOwned - joinedAt} ms after it joined; ` +
        `${rounds.length} rounds moved ${rounds.reduce((sum, e) => sum + Number(e.fields?.moves ?? 0), 0)} units: ` +
        `${rounds.map((e) => `+${((e.at - joinedAt) / 1000).toFixed(1)} s: ${String(e.fields?.moves)}`).join(', ')}; ` +
        `owned units before the join ${ownedBefore.map((s) => s.owned.length).join(' + ')}, at the end ${after.map((s) => s.owned.length).join(' + ')}`,
    );
    const served = bench.serverRequests().map((n, i) => n - (servedBefore[i] ?? 0));
    console.log(`requests: wrk ${results.map((r) => r.requests).join(' + ')} completed, nginx served ${served.join(' + ')}; held-queue overflow ${after.map((s) => s.heldOverflow).join(' + ')}`);

    for (const unit of [...list, joiner]) {
      const warnings = unit.events.filter((e) => e.kind === 'log' && e.level === 'warn' && e.at >= startedAt);
      if (warnings.length > 0) console.log(`${unit.unitId} warnings: ${warnings.slice(0, 20).map((e) => `+${e.at - joinedAt} ${String(e.event)} ${JSON.stringify(e.fields)}`.slice(0, 300)).join('\n  ')}`);
    }
    expect(firstOwned - joinedAt).toBeLessThan(15_000);
    expect(movedToJoiner).toBeGreaterThan(0);
    // The master moved units in a round after the join, within a few seconds.
    const firstRoundAfterJoin = rounds.find((e) => e.at >= joinedAt);
    expect(firstRoundAfterJoin).toBeDefined();
    expect(Number(firstRoundAfterJoin?.at) - joinedAt).toBeLessThan(15_000);
    for (const result of results) {
      expect(result.requests).toBeGreaterThan(0);
      expect({ non2xx: result.non2xx, socketErrors: result.socketErrors }).toEqual({ non2xx: 0, socketErrors: 0 });
    }
    // Every request wrk completed was answered by a server (nginx logs each one once).
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(results.reduce((sum, r) => sum + r.requests, 0));
    // One owner per unit across the members at the end.
    const owners = new Map<number, number>();
    for (const s of after) for (const unit of s.owned) owners.set(unit, (owners.get(unit) ?? 0) + 1);
    expect([...owners.values()].filter((count) => count > 1)).toEqual([]);
  }, 300_000);
});


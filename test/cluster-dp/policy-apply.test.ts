/* An adopted cluster policy in forwarding (docs/cluster.md "Policy distribution"): unit 1 runs
 * signed policy version 3 (service "web" on the VIP via server 1); unit 2 joins with version 4,
 * signed by the same policy key ("web" now via server 2, and a new service "web-b" on a second VIP
 * via server 1). Both units converge on version 4, and unit 1, which adopted it while running,
 * forwards real HTTP per the new policy: nginx's bodies name the server that answered. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';
import { DpCluster, waitFor } from './support/dp-cluster.js';
import { SHARED_VIP_MAC, VIP } from './support/shared-lan.js';
import { POLICIES, SERVER_1, SERVER_2, VIP_B } from './support/policy-versions.js';
import type { ClusterUnit, UnitState } from './support/unit-process.js';


let bench: DpCluster;

beforeAll(async () => {
  bench = await DpCluster.create([1, 2], 'nginx', { servicesFromPolicy: true }, { policyOf: (slot) => POLICIES[slot] ?? POLICIES[1]! });
  // The client reaches the second VIP at the shared MAC too (unicast-MAC delivery).
  await inNamespace(bench.lan.client, 'ip', ['neigh', 'replace', VIP_B, 'lladdr', SHARED_VIP_MAC, 'dev', 'eth0', 'nud', 'permanent']);
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

/** One HTTP request per client port, one after another (curl, a new connection each): the body, or
 * FAILED when no answer came within `seconds`. */
async function get(vip: string, ports: number[], seconds = 5): Promise<Map<number, string>> {
  const script = `for p in ${ports.join(' ')}; do printf '%s ' $p; curl -s -m ${seconds} --local-port $p http://${vip}/ || echo FAILED; done`;
  const out = await inNamespace(bench.lan.client, 'sh', ['-c', script], { timeoutMs: ports.length * (seconds + 2) * 1000 });
  return new Map(
    out
      .trim()
      .split('\n')
      .map((line) => {
        const [port, ...body] = line.split(' ');
        return [Number(port), body.join(' ')] as const;
      }),
  );
}

const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);
const bodies = (answers: Map<number, string>) => [...new Set(answers.values())];

/** New flows unit's data plane gave `server` for the service named `name`. */
function flowsTo(state: UnitState, name: string, server: string): number {
  const id = state.services.find((service) => service.name === name)?.id;
  return state.serverFlows.filter((row) => row.serviceId === id && row.ip === server).reduce((sum, row) => sum + row.flows, 0);
}

describe('cluster data plane: an adopted policy in forwarding', () => {
  it('a running unit adopts a joiner\'s higher policy: the changed pool and the new service answer HTTP through the VIPs', async () => {
    const first = bench.startUnit(1);
    await waitFor('unit 1 is master', async () => (first.events.some((e) => e.kind === 'started') ? (await first.state()).role === 'master' || undefined : undefined), 60_000);
    const alone = await first.state();
    expect(alone.configVersion).toBe(3);
    expect(alone.services.map((s) => [s.name, s.servers])).toEqual([['web', [SERVER_1]]]);

    // Version 3: the VIP answers from server 1; the second VIP is no service yet.
    const before = await get(VIP, range(20_000, 10));
    expect(bodies(before)).toEqual([`server ${SERVER_1}`]);
    expect(bodies(await get(VIP_B, [20_100], 2))).toEqual(['FAILED']);

    const joinedAt = Date.now();
    const second = bench.startUnit(2);
    const units: ClusterUnit[] = [first, second];
    await bench.formed(units, 60_000);
    await waitFor(
      'both units run version 4 with its services',
      async () => {
        const states = await bench.states(units);
        const wanted = JSON.stringify([
          ['web', [SERVER_2]],
          ['web-b', [SERVER_1]],
        ]);
        return states.every((s) => s.configVersion === 4 && JSON.stringify(s.services.map((service) => [service.name, service.servers])) === wanted) ? states : undefined;
      },
      30_000,
    );
    const convergedAt = Date.now();
    const adopted = first.logged('policy adopted')[0];
    const applied = first.logged('policy applied')[0];
    expect(adopted?.fields).toMatchObject({ configVersion: 4, previous: 3, from: second.unitId });
    expect(applied?.fields).toMatchObject({ configVersion: 4, removed: [], changed: ['web'], added: ['web-b'], unchanged: [], failed: [] });
    expect(first.logged('policy service changed')[0]?.fields).toMatchObject({ service: 'web', servers: [`${SERVER_2}:80=1`] });
    expect(first.logged('policy service added')[0]?.fields).toMatchObject({ service: 'web-b', vip: VIP_B, port: 80, servers: [`${SERVER_1}:80=1`] });
    // Unit 2 started with version 4: nothing to adopt.
    expect(second.logged('policy adopted')).toEqual([]);

    // Version 4 in forwarding: every request on the VIP goes to server 2, every one on the new VIP to server 1.
    const portsA = range(21_000, 40);
    const portsB = range(22_000, 40);
    const answersA = await get(VIP, portsA);
    const answersB = await get(VIP_B, portsB);
    expect(bodies(answersA)).toEqual([`server ${SERVER_2}`]);
    expect(bodies(answersB)).toEqual([`server ${SERVER_1}`]);
    expect([answersA.size, answersB.size]).toEqual([40, 40]);

    // Who chose the server of each connection: a data plane counts a flow when it selects a server
    // for a new connection itself (imported, replicated flows are not counted). Unit 1 selected
    // from the adopted pool and the added service; together the units selected for every request.
    const [state1, state2] = (await bench.states(units)) as [UnitState, UnitState];
    const chosen = (state: UnitState) => [flowsTo(state, 'web', SERVER_2), flowsTo(state, 'web-b', SERVER_1)];
    const [chosen1, chosen2] = [chosen(state1), chosen(state2)] as [number[], number[]];
    console.log(
      `policy 4 adopted by ${first.unitId} ${(adopted?.at ?? 0) - joinedAt} ms and applied ${(applied?.at ?? 0) - joinedAt} ms after ${second.unitId} started; ` +
        `both seen running version 4 with its services ${convergedAt - joinedAt} ms after; ` +
        `web: ${answersA.size} requests all answered by ${SERVER_2}; web-b: ${answersB.size} all answered by ${SERVER_1}; ` +
        `new flows selected web -> ${SERVER_2} unit-1 ${chosen1[0]} / unit-2 ${chosen2[0]}, web-b -> ${SERVER_1} unit-1 ${chosen1[1]} / unit-2 ${chosen2[1]}; ` +
        `nginx requests ${bench.serverRequests().join('/')} (incl. its readiness probes)`,
    );
    expect(chosen1[0]).toBeGreaterThan(0);
    expect(chosen1[1]).toBeGreaterThan(0);
    expect((chosen1[0] ?? 0) + (chosen2[0] ?? 0)).toBeGreaterThanOrEqual(40);
    expect((chosen1[1] ?? 0) + (chosen2[1] ?? 0)).toBeGreaterThanOrEqual(40);
  }, 300_000);
});

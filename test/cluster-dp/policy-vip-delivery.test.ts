/* A VIP an adopted policy adds is a shared address like the ones configured (docs/cluster.md
 * "Applying an adopted policy", "Delivery modes"), in forwarding delivery on learning switches where
 * the client finds every address by ARP (no static neighbour entry): unit 2 starts with signed
 * policy version 4 (service "web-b" on a second VIP), unit 1 with version 3 (no such service) joins
 * and adopts version 4. Only the master answers ARP for the new VIP, so every request reaches the
 * cluster through it; when the master dies, unit 1 - which has the VIP only from the adopted policy -
 * announces it at its own MAC, and the client, silent meanwhile, follows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../netns/run.js';
import { Capture } from './support/capture.js';
import { DpCluster, waitFor } from './support/dp-cluster.js';
import { VIP } from './support/shared-lan.js';
import { POLICIES, SERVER_1, VIP_B } from './support/policy-versions.js';
import type { ClusterUnit, UnitState } from './support/unit-process.js';

const REQUESTS = 30;

let bench: DpCluster;

beforeAll(async () => {
  bench = await DpCluster.create([1, 2], 'nginx', { servicesFromPolicy: true, delivery: 'master-forwarding' }, { policyOf: (slot) => POLICIES[slot] ?? POLICIES[1]! });
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

/** `count` HTTP requests to the VIP, a new connection each: the bodies (FAILED when unanswered). */
async function get(vip: string, count: number): Promise<string[]> {
  const script = `for i in $(seq ${count}); do curl -s -m 5 http://${vip}/ || echo FAILED; done`;
  return (await inNamespace(bench.lan.client, 'sh', ['-c', script], { timeoutMs: count * 7000 })).trim().split('\n');
}

const neighbour = async (ip: string) => (await inNamespace(bench.lan.client, 'ip', ['neigh', 'show', ip])).trim();

describe('cluster data plane: a VIP an adopted policy adds, in forwarding delivery', () => {
  it('is answered by the master alone and announced by a new master that has it only from the adopted policy', async () => {
    const [second, first] = (await bench.startCluster([2, 1])) as [ClusterUnit, ClusterUnit];
    const units = [first, second];
    const states = await waitFor(
      'both units run version 4 with web-b',
      async () => {
        const all = await bench.states(units);
        return all.every((s) => s.configVersion === 4 && s.services.some((service) => service.name === 'web-b')) ? all : undefined;
      },
      30_000,
    );
    const [state1, state2] = states as [UnitState, UnitState];
    expect(state2.role).toBe('master');
    expect(first.logged('policy applied')[0]?.fields).toMatchObject({ configVersion: 4, changed: ['web'], added: ['web-b'], failed: [] });
    // Unit 1 shares the VIP it got from the adopted policy, like the one its flash config gave it.
    expect(state1.sharedAddresses).toEqual(expect.arrayContaining([VIP, VIP_B]));
    expect(first.logged('shared addresses follow the services').some((e) => (e.fields?.added as string[] | undefined)?.includes(VIP_B))).toBe(true);

    // The client has no entry for the new VIP: it asks by ARP, and only the master answers.
    expect(await neighbour(VIP_B)).toBe('');
    const arp = new Capture(bench.lan.client, 'eth0', ['arp']);
    await arp.started();
    const answers = await get(VIP_B, REQUESTS);
    const entry = await neighbour(VIP_B);
    arp.stop();
    const replies = arp.lines.filter((line) => line.text.includes(`Reply ${VIP_B} is-at`)).map((line) => /is-at ([0-9a-f:]{17})/.exec(line.text)?.[1]);
    const after = await bench.states(units);
    console.log(
      `adopted VIP ${VIP_B}: ${answers.filter((body) => body === `server ${SERVER_1}`).length}/${REQUESTS} answered by ${SERVER_1}; client: ${entry}; ` +
        units.map((unit, u) => `${unit.unitId} (${after[u]?.role}, port ${after[u]?.dataMacs[0]}) created ${after[u]?.flowsCreated} connections, forwarded ${after[u]?.unitForwarded}`).join('; ') +
        `; ARP replies for ${VIP_B} at ${JSON.stringify(replies)}`,
    );
    expect(answers).toEqual(Array<string>(REQUESTS).fill(`server ${SERVER_1}`));
    expect(replies.length).toBeGreaterThan(0);
    expect(new Set(replies)).toEqual(new Set([state2.dataMacs[0]]));
    expect(entry).toContain(`lladdr ${state2.dataMacs[0]}`);

    // The master dies; unit 1 becomes master and announces both VIPs at its own port MAC. The client
    // sends nothing meanwhile, so only the announcement can move its entry.
    const killedAt = second.kill();
    await bench.formed([first], 30_000);
    const moved = await waitFor('the client\'s entry for the adopted VIP at unit 1\'s MAC', async () => ((await neighbour(VIP_B)).includes(`lladdr ${state1.dataMacs[0]}`) ? neighbour(VIP_B) : undefined), 10_000);
    const movedAt = Date.now();
    const again = await get(VIP_B, 10);
    console.log(`after SIGKILL of ${second.unitId}: client ${moved} ${movedAt - killedAt} ms after the kill; ${again.filter((body) => body === `server ${SERVER_1}`).length}/10 answered`);
    expect(first.logged('gratuitous arp sent').some((e) => (e.fields?.addresses as string[] | undefined)?.includes(VIP_B))).toBe(true);
    expect(again).toEqual(Array<string>(10).fill(`server ${SERVER_1}`));
  }, 300_000);
});

/* Full-NAT source ports in a cluster (service-routing.md SR-R6, cluster.md "Numbering authority"):
 * each member leases a block of the `fullnat-port` space from the master and its full-NAT service
 * takes source ports from that block only. Captured on the servers' segment: every connection's SYN
 * comes from the shared full-NAT source address with a port in one member's block, both members'
 * blocks are used, the blocks never overlap, and no (server, source port) pair is used twice. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from './support/capture.js';
import { DpCluster, sleep, waitFor } from './support/dp-cluster.js';
import { CLIENT_IP, FULLNAT_SOURCE, SERVER_IPS, VIP } from './support/shared-lan.js';

let bench: DpCluster;

beforeAll(async () => {
  bench = await DpCluster.create([1, 2], 'stream');
}, 180_000);

afterAll(async () => {
  await bench?.destroy();
}, 60_000);

describe('cluster data plane: full-NAT source ports', () => {
  it('two members take full-NAT source ports from disjoint leased blocks, seen on the wire', async () => {
    const captures = bench.lan.servers.map((namespace) => new Capture(namespace, 'eth0', ['tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', 'and', 'src', 'host', FULLNAT_SOURCE]));
    await Promise.all(captures.map((capture) => capture.started()));
    const list = await bench.startCluster([1, 2]);
    const states = await waitFor(
      'both members hold a full-NAT port lease',
      async () => {
        const all = await bench.states(list);
        return all.every((s) => s.snatLease !== undefined) ? all : undefined;
      },
      30_000,
    );
    const blocks = states.map((s) => ({ first: s.snatLease?.start as number, last: (s.snatLease?.start as number) + (s.snatLease?.size as number) - 1 }));
    console.log(`leases: ${list.map((unit, i) => `${unit.unitId} ${blocks[i]?.first}-${blocks[i]?.last}`).join(', ')}`);
    const [a, b] = blocks as [{ first: number; last: number }, { first: number; last: number }];
    expect(a.last < b.first || b.last < a.first).toBe(true);

    const count = 80;
    const opened = await bench.client.ask<{ ports?: number[]; error?: string }>('open', { host: VIP, port: 81, count }, 180_000);
    expect(opened.error).toBeUndefined();
    const ports = opened.ports ?? [];
    expect(ports).toHaveLength(count);
    const before = await bench.mark();
    await bench.receivingAgain(before, 'every full-NAT connection streaming');
    await sleep(500);
    await bench.expectIntact(before);

    // The servers' segment floods like a hub: each capture sees every SYN, so each server's own.
    const captured = captures.flatMap((capture, server) =>
      capture.lines.flatMap((line) => {
        const match = new RegExp(`${FULLNAT_SOURCE.replaceAll('.', '\\.')}\\.(\\d+) > (\\S+)\\.80: Flags \\[S\\]`).exec(line.text);
        return match && match[2] === SERVER_IPS[server] ? [{ port: Number(match[1]), server }] : [];
      }),
    );
    for (const capture of captures) capture.stop();
    // A SYN the client sent again while its unit was still being assigned shows twice: one per connection.
    const syns = [...new Map(captured.map((syn) => [`${syn.server}:${syn.port}`, syn])).values()];
    const inBlock = (port: number, block: { first: number; last: number }) => port >= block.first && port <= block.last;
    const fromA = syns.filter((syn) => inBlock(syn.port, a)).length;
    const fromB = syns.filter((syn) => inBlock(syn.port, b)).length;
    console.log(
      `${count} full-NAT connections from ${CLIENT_IP}; ` +
        `${captured.length} SYNs (${syns.length} distinct server and port) from ${FULLNAT_SOURCE} captured at the servers: ${fromA} with ports in ${list[0]?.unitId}'s block, ${fromB} in ${list[1]?.unitId}'s, ${syns.length - fromA - fromB} outside; ` +
        `sample ports ${syns.slice(0, 6).map((syn) => syn.port).join(', ')}`,
    );
    // Each connection has its own (server, source port): no two members' connections share one.
    expect(syns.length).toBe(count);
    expect(syns.length - fromA - fromB).toBe(0);
    // Both members created connections (first use spreads units over them), each from its own block.
    expect(fromA).toBeGreaterThan(0);
    expect(fromB).toBeGreaterThan(0);
  }, 300_000);
});

/* Services changed in a running data plane: Appliance addService / updateService / removeService,
 * the path an adopted cluster policy takes (app/control/cluster-policy-apply.ts). Real TCP frames go
 * through the real pipeline (injected for processing on net_null ports; no namespace, nothing leaves
 * the process) and the data plane's own counters say where each connection went. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Appliance, ApplianceError } from '../../app/control/appliance.js';
import { parseConfig, type ServiceSettings } from '../../app/control/config.js';
import type { DataplaneStats } from '../../firmware/dataplane.js';

const CLIENT = '10.0.1.2';
const VIP = '10.0.1.100';
const VIP_B = '10.0.1.101';
const SERVER_1 = '10.0.2.11';
const SERVER_2 = '10.0.2.12';

const service = (name: string, vip: string, port: number, servers: string[], extra: object = {}): ServiceSettings =>
  parseConfig(
    'service',
    JSON.stringify({ ports: [{ device: 'net_null0', address: '10.0.1.1' }], services: [{ name, vip, port, protocol: 'tcp', servers: servers.map((address) => ({ address, port: 80 })), ...extra }] }),
  ).services[0]!;

let appliance: Appliance;
let clientMac: Buffer;
let portMac: Buffer;

beforeAll(() => {
  appliance = new Appliance(pino({ level: 'silent' }));
  appliance.start(
    parseConfig(
      'live services',
      JSON.stringify({
        eal: { lcores: [0, 1], memoryMb: 256, noHuge: true, filePrefix: 'ep-live-services', vdevs: ['net_null0,no-rx=1', 'net_null1,no-rx=1'] },
        dataplane: { affinityCapacity: 1024, flowCapacityPerWorker: 4096, missPolicy: 'drop' },
        ports: [
          { device: 'net_null0', address: '10.0.1.1', prefixLength: 24 },
          { device: 'net_null1', address: '10.0.2.1', prefixLength: 24 },
        ],
        services: [{ name: 'web', vip: VIP, port: 80, protocol: 'tcp', algorithm: 'maglev', servers: [{ address: SERVER_1, port: 80 }] }],
        log: { level: 'warn' },
      }),
    ),
  );
  const dp = appliance.dataplane();
  dp.setNeighbor(SERVER_1, 1, '02:00:00:00:02:11');
  dp.setNeighbor(SERVER_2, 1, '02:00:00:00:02:12');
  dp.setNeighbor(CLIENT, 0, '02:00:00:00:01:02');
  clientMac = Buffer.from('020000000102', 'hex');
  portMac = Buffer.from((appliance.portStatus()[0]?.mac ?? '').replaceAll(':', ''), 'hex');
});

afterAll(() => appliance?.stop());

function checksum(bytes: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  if (bytes.length % 2) sum += (bytes[bytes.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));

/** A client's TCP segment to vip:port from CLIENT:sport (SYN, or ACK for a connection's later packets). */
function segment(vip: string, port: number, sport: number, flags: 'syn' | 'ack'): Buffer {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(port, 2);
  tcp.writeUInt32BE(flags === 'syn' ? 1000 : 1001, 4);
  tcp.writeUInt32BE(flags === 'syn' ? 0 : 5001, 8);
  tcp.writeUInt8(5 << 4, 12);
  tcp.writeUInt8(flags === 'syn' ? 0x02 : 0x10, 13);
  tcp.writeUInt16BE(64_240, 14);
  const pseudo = Buffer.concat([ipBytes(CLIENT), ipBytes(vip), Buffer.from([0, 6, 0, 20])]);
  tcp.writeUInt16BE(checksum(Buffer.concat([pseudo, tcp])), 16);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(40, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(6, 9);
  ipBytes(CLIENT).copy(ip, 12);
  ipBytes(vip).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([portMac, clientMac, Buffer.from([0x08, 0x00]), ip, tcp]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Injects the frame as received on the client port and waits until `done(before, now)` says the
 * data plane handled it (other packets, e.g. the ARP requests for a new server, may go out meanwhile). */
async function send(frame: Buffer, done: (before: DataplaneStats, now: DataplaneStats) => boolean): Promise<DataplaneStats> {
  const before = appliance.stats();
  appliance.dataplane().injectForProcessing(0, frame);
  for (let i = 0; i < 200; i++) {
    const stats = appliance.stats();
    if (done(before, stats)) return stats;
    await sleep(10);
  }
  const now = appliance.stats();
  throw new Error(`the injected frame was not handled as expected within 2 s: drops ${JSON.stringify(before.drops)} -> ${JSON.stringify(now.drops)}, actions ${JSON.stringify(before.actions)} -> ${JSON.stringify(now.actions)}, servers ${JSON.stringify(now.servers.map((r) => [r.serviceId, r.ip, r.flows, r.packets]))}`);
}

const noMatch = (stats: DataplaneStats) => stats.drops['no_match'] ?? 0;
const refusedAsNoMatch = (before: DataplaneStats, now: DataplaneStats) => noMatch(now) > noMatch(before);
const forwardedTo = (name: string, server: string) => (before: DataplaneStats, now: DataplaneStats) => toServer(now, name, server).packets > toServer(before, name, server).packets;
const sentToServers = (before: DataplaneStats, now: DataplaneStats) => (now.ports[1]?.txPackets ?? 0) > (before.ports[1]?.txPackets ?? 0);

/** New connections and packets the data plane sent to `server` for the service named `name`. */
function toServer(stats: DataplaneStats, name: string, server: string): { flows: number; packets: number } {
  const id = appliance.services().find((s) => s.name === name)?.definition.id;
  const row = stats.servers.find((r) => r.serviceId === id && r.ip === server);
  return { flows: row?.flows ?? 0, packets: row?.packets ?? 0 };
}

describe('services changed in the running data plane', () => {
  it('adds a service: its VIP takes new connections at once', async () => {
    const refused = noMatch(await send(segment(VIP_B, 80, 30_001, 'syn'), refusedAsNoMatch));
    appliance.addService(service('web-b', VIP_B, 80, [SERVER_2], { algorithm: 'wrr' }));
    expect(appliance.services().map((s) => [s.name, s.definition.id])).toEqual([
      ['web', 1],
      ['web-b', 2],
    ]);
    const stats = await send(segment(VIP_B, 80, 30_002, 'syn'), forwardedTo('web-b', SERVER_2));
    expect(toServer(stats, 'web-b', SERVER_2)).toEqual({ flows: 1, packets: 1 });
    expect(noMatch(stats)).toBe(refused);
  });

  it('updates a pool: new connections go to the new server, an established one stays on its own', async () => {
    const first = await send(segment(VIP, 80, 30_010, 'syn'), forwardedTo('web', SERVER_1));
    expect(toServer(first, 'web', SERVER_1)).toEqual({ flows: 1, packets: 1 });
    appliance.updateService(service('web', VIP, 80, [SERVER_2], { algorithm: 'wrr' }));
    expect(appliance.services().find((s) => s.name === 'web')?.definition).toMatchObject({ id: 1, algorithm: 'wrr', servers: [{ ip: SERVER_2, port: 80, weight: 1 }] });
    const fresh = await send(segment(VIP, 80, 30_011, 'syn'), forwardedTo('web', SERVER_2));
    expect(toServer(fresh, 'web', SERVER_2)).toEqual({ flows: 1, packets: 1 });
    // The connection made before the update: its next packet goes out towards the servers, not to
    // server 2 (server 1 is out of the pool, so it has no counter row any more).
    const established = await send(segment(VIP, 80, 30_010, 'ack'), sentToServers);
    expect(toServer(established, 'web', SERVER_2)).toEqual({ flows: 1, packets: 1 });
    expect(noMatch(established)).toBe(noMatch(fresh));
    const learned = appliance.affinities({ includeLearned: true }).find((a) => a.origin === 'learned' && a.key.srcPort === 30_010 && a.key.dstIp === VIP);
    expect(learned).toMatchObject({ packets: 2, action: { type: 'forward', nat: { dstIp: SERVER_1, dstPort: 80 } } });
  });

  it('removes a service: no new connection matches; an established one runs on (keep)', async () => {
    appliance.removeService('web-b');
    expect(appliance.services().map((s) => s.name)).toEqual(['web']);
    const before = appliance.stats();
    const refused = await send(segment(VIP_B, 80, 30_003, 'syn'), refusedAsNoMatch);
    expect(noMatch(refused)).toBe(noMatch(before) + 1);
    const kept = await send(segment(VIP_B, 80, 30_002, 'ack'), sentToServers);
    expect(noMatch(kept)).toBe(noMatch(refused));
    // A removed service's id is not given out again (its connections may still run).
    appliance.addService(service('web-c', VIP_B, 81, [SERVER_1]));
    expect(appliance.services().find((s) => s.name === 'web-c')?.definition.id).toBe(3);
    appliance.removeService('web-c');
  });

  it('moves a service to another port: removed and installed again under its name', async () => {
    appliance.updateService(service('web', VIP, 8080, [SERVER_2]));
    expect(appliance.services().map((s) => [s.name, s.definition.id, s.definition.port])).toEqual([['web', 4, 8080]]);
    // Port 80 of the VIP (still an address of the unit) is no service any more: dropped as a packet
    // to a local address that is neither ARP nor ping.
    const old = await send(segment(VIP, 80, 30_020, 'syn'), (before, now) => (now.drops['local_unhandled'] ?? 0) > (before.drops['local_unhandled'] ?? 0));
    expect(toServer(old, 'web', SERVER_2)).toEqual({ flows: 0, packets: 0 });
    const moved = await send(segment(VIP, 8080, 30_021, 'syn'), forwardedTo('web', SERVER_2));
    expect(toServer(moved, 'web', SERVER_2).flows).toBe(1);
  });

  it('refuses what the data plane refuses and leaves the running services as they were', async () => {
    expect(() => appliance.addService(service('web', VIP, 9090, [SERVER_1]))).toThrow(ApplianceError);
    expect(() => appliance.removeService('nothing')).toThrow(/service "nothing" does not exist/);
    const bad = { ...service('bad', VIP_B, 80, [SERVER_1]), tableSize: 8 };
    expect(() => appliance.addService(bad)).toThrow(/table size 8 is not a prime/);
    expect(appliance.services().map((s) => s.name)).toEqual(['web']);
    const stats = await send(segment(VIP, 8080, 30_030, 'syn'), forwardedTo('web', SERVER_2));
    expect(toServer(stats, 'web', SERVER_2).flows).toBe(2);
  });
});

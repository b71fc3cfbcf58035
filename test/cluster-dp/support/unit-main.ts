/* One appliance unit of the cluster data-plane tests, as its own process inside its namespace (one
 * DPDK EAL per process): the Appliance on the unit's two data ports, a cluster Member on its control
 * address, and the ClusterDataplane binding between them. Talks to the test over IPC. */
import { pino } from 'pino';
import { verifyFlashConfig } from '../../../flash-config/index.js';
import { Appliance } from '../../../app/control/appliance.js';
import { ClusterDataplane } from '../../../app/control/cluster-dataplane.js';
import { parseConfig } from '../../../app/control/config.js';
import { Member } from '../../../app/cluster/member.js';
import { ClusterSnatPorts, FULLNAT_PORT_NUMBERS } from '../../../app/control/cluster-snat-ports.js';
import { applyAdoptedPolicy } from '../../../app/control/cluster-policy-apply.js';
import { policyServiceSettings } from '../../../app/control/flash-config-loader.js';
import { ServiceManager } from '../../../app/control/services.js';
import {
  FULLNAT_SOURCE,
  SERVER_GATEWAY,
  SERVER_GATEWAY6,
  SERVER_IP6S,
  SERVER_IPS,
  SHARED_GATEWAY_MAC,
  SHARED_MULTICAST_MAC,
  SHARED_VIP_MAC,
  VIP,
  VIP6,
  unitDataAddresses,
  unitDataAddresses6,
} from './shared-lan.js';
import type { UnitSettings } from './unit-process.js';

const settings = JSON.parse(process.env.CLUSTER_DP_UNIT ?? '{}') as UnitSettings;
const delivery = settings.delivery ?? 'unicast-mac';
const [clientSideAddress, serverSideAddress] = unitDataAddresses(delivery, settings.slot);
const send = (message: object) => process.send?.({ at: Date.now(), ...message });
const recent: string[] = [];
const log = (level: 'info' | 'warn', event: string, fields: Record<string, unknown> = {}) => {
  recent.push(`${Date.now()} ${event} ${JSON.stringify(fields)}`.slice(0, 300));
  if (recent.length > 200) recent.shift();
  send({ kind: 'log', level, event, fields });
};

// Round robin: a unit that had to pick a server again for a connection would pick another
// one than its first owner did, so only replicated state keeps a moved connection alive.
const FIXED_SERVICES = [
  { name: 'stream', vip: VIP, port: 80, protocol: 'tcp', mode: 'nat', algorithm: 'wrr', servers: SERVER_IPS.map((address) => ({ address, port: 80 })) },
  // Full NAT: the servers see FULLNAT_SOURCE and a source port from this member's leased block.
  {
    name: 'fullnat',
    vip: VIP,
    port: 81,
    protocol: 'tcp',
    mode: 'fullnat',
    algorithm: 'wrr',
    servers: SERVER_IPS.map((address) => ({ address, port: 80 })),
    snat: { ip: FULLNAT_SOURCE, portMin: 1024, portMax: 65535 },
  },
];

// IPv6: the same NAT service on VIP6 to the servers' IPv6 addresses.
const IPV6_SERVICES = [{ name: 'stream6', vip: VIP6, port: 80, protocol: 'tcp', mode: 'nat', algorithm: 'wrr', servers: SERVER_IP6S.map((address) => ({ address, port: 80 })) }];

const config = await verifyFlashConfig(settings.dir);
const [clientSideAddress6, serverSideAddress6] = unitDataAddresses6(settings.slot);
const address6 = (address: string) => (settings.ipv6 ? { address6: address, prefixLength6: 64 } : {});
const ports = [
  { device: 'net_af_packet0', address: clientSideAddress, prefixLength: 24, ...address6(clientSideAddress6) },
  { device: 'net_af_packet1', address: serverSideAddress, prefixLength: 24, ...address6(serverSideAddress6) },
];
const fixedServices = settings.ipv6 ? [...FIXED_SERVICES, ...IPV6_SERVICES] : FIXED_SERVICES;
const appliance = new Appliance(pino({ level: 'warn' }));
appliance.start(
  parseConfig(
    'cluster-dp unit',
    JSON.stringify({
      eal: { lcores: [0, 1], memoryMb: 256, noHuge: true, filePrefix: `${settings.prefix ?? 'epcd'}-u${settings.slot}`, vdevs: ['net_af_packet0,iface=dc', 'net_af_packet1,iface=ds'] },
      dataplane: { affinityCapacity: 1024, flowCapacityPerWorker: 16_384, missPolicy: 'drop', timeouts: { establishedSeconds: settings.establishedSeconds ?? 300 } },
      ports,
      // The signed policy's services, as a unit started from its flash config runs them.
      services: settings.servicesFromPolicy ? policyServiceSettings(config.policy, parseConfig('ports', JSON.stringify({ ports })).ports) : fixedServices,
      log: { level: 'warn' },
    }),
  ),
  { clustered: true },
);
// The service manager owns the running services; an adopted policy's services go through it.
const services = new ServiceManager(appliance, appliance.serviceSettings(), { silenceMs: Number.POSITIVE_INFINITY, logger: pino({ level: 'warn' }) });
services.start();
const dp = appliance.dataplane();
let binding: ClusterDataplane | undefined;
const member = new Member({
  config,
  address: settings.address,
  multicast: { group: '239.77.0.2', port: 7956 },
  joinPort: 7957,
  timing: { keepaliveMs: 50, detectionMs: settings.detectionMs ?? 500, silenceMs: 100, rebalanceMs: 2000 },
  numberSpaces: [FULLNAT_PORT_NUMBERS],
  loadSource: () => binding?.loadSource() ?? [],
  dataMacs: [...appliance.portStatus()].sort((a, b) => a.id - b.id).map((port) => port.mac),
  log,
});
const portId = (device: string) => appliance.portStatus().find((port) => port.device === device)?.id ?? -1;
// Unicast-MAC delivery: a made-up shared MAC per segment (the tests' static neighbour entries);
// multicast-MAC: one multicast MAC; forwarding: the master's port MACs. The full-NAT source is a
// shared address too once the servers find it by ARP.
const sharedMac = (unicastMac: string) => (delivery === 'unicast-mac' ? { mac: unicastMac } : delivery === 'multicast-mac' ? { mac: SHARED_MULTICAST_MAC } : {});
const serverSideShared = delivery === 'unicast-mac' ? [SERVER_GATEWAY] : [SERVER_GATEWAY, FULLNAT_SOURCE];
binding = new ClusterDataplane({
  member,
  dp,
  config,
  address: settings.address,
  replication: { port: 7958 },
  clusterAddresses: [
    { port: portId('net_af_packet0'), ...sharedMac(SHARED_VIP_MAC), addresses: settings.ipv6 ? [VIP, VIP6] : [VIP] },
    { port: portId('net_af_packet1'), ...sharedMac(SHARED_GATEWAY_MAC), addresses: settings.ipv6 ? [...serverSideShared, SERVER_GATEWAY6] : serverSideShared },
  ],
  delivery,
  log,
});
await binding.start();
const snatPorts = new ClusterSnatPorts(member, appliance, log);
snatPorts.start();
// Off: the data plane records no flow events, so nothing is replicated (the benchmark's baseline).
if (settings.replication === false) dp.enableReplication(false);
member.onRoleChange((role) => send({ kind: 'role', role }));
// As clustered.ts: the services' VIPs are shared addresses, and a higher signed policy the cluster
// adopts reaches the running services and the shared addresses.
const portIds = new Map(appliance.portStatus().map((port) => [port.device, port.id]));
const followServices = () => binding?.delivery.followServices(services.serviceSettings(), services.portSettings(), portIds);
followServices();
member.onPolicyChange((policy) => {
  applyAdoptedPolicy(services, policy, log);
  followServices();
});

process.on('message', (raw) => {
  const command = raw as { id: number; cmd: string; clients?: [string, number][]; units?: number[]; seconds?: number };
  const reply = (result: unknown) => send({ kind: 'reply', id: command.id, result });
  if (command.cmd === 'state') {
    const stats = dp.stats();
    reply({
      role: member.role,
      masterId: member.masterId,
      members: member.memberIds,
      owned: member.ownership().filter((entry) => entry.state === 'owned').map((entry) => entry.unit),
      replication: binding?.replication.stats,
      replicatingTo: binding?.replication.connectedPeers(),
      book: binding?.book.size,
      imported: binding?.importer.imported,
      held: binding?.held.size,
      heldOverflow: binding?.held.overflowed,
      forgotten: binding?.importer.forgotten,
      released: binding?.released,
      refreshesSent: binding?.refreshesSent,
      learnedFlows: dp.affinityCount().learned,
      eventsLost: dp.flowEventsLost(),
      drops: stats.drops,
      snatLease: snatPorts.lease,
      unitForwarded: stats.unitForwarded,
      flowsCreated: stats.flows.created,
      clientPortRx: stats.ports.find((port) => port.id === portId('net_af_packet0'))?.rxPackets ?? 0,
      dataMacs: appliance.portStatus().map((port) => port.mac),
      configVersion: member.policy.configVersion,
      sharedAddresses: binding?.delivery.addresses.flatMap((entry) => entry.addresses) ?? [],
      services: appliance.services().map(({ name, definition }) => ({ name, id: definition.id, vip: definition.vip, port: definition.port, servers: definition.servers.map((server) => server.ip) })),
      serverFlows: stats.servers.map((row) => ({ serviceId: row.serviceId, ip: row.ip, flows: row.flows })),
    });
  } else if (command.cmd === 'view') {
    // Diagnostics of stalled connections: how this member and its data plane see their units.
    const ownership = member.ownership();
    reply({ units: (command.units ?? []).map((unit) => ({ ...ownership[unit], held: binding?.held.heldUnits().includes(unit) })), logs: recent.slice(-40) });
  } else if (command.cmd === 'units') {
    reply((command.clients ?? []).map(([ip, port]) => dp.workUnitOf(ip, port)));
  } else if (command.cmd === 'bench-replication') {
    void benchReplication(command.seconds ?? 5).then(reply);
  } else if (command.cmd === 'stop') {
    void Promise.all([binding?.stop(), member.stop()]).finally(() => {
      services.stop();
      appliance.stop();
      process.exit(0);
    });
  }
});
await member.start();
send({ kind: 'started' });

/** Benchmark: streams the flow records this unit knows (real ones, from its connections) to its
 * peers over the replication links for `seconds`, at most WINDOW unacknowledged batches at a time;
 * returns the records the peers acknowledged. */
async function benchReplication(seconds: number): Promise<{ records: number; acked: number; batchRecords: number; ms: number; error?: string }> {
  const WINDOW = 8;
  const replication = binding?.replication;
  const records = binding?.book.of(new Set(Array.from({ length: 1024 }, (_, unit) => unit))) ?? [];
  if (!replication || records.length === 0) return { records: 0, acked: 0, batchRecords: 0, ms: 0, error: 'no flow records to replicate' };
  const batch = Array.from({ length: 2048 }, (_, i) => records[i % records.length] as Buffer);
  const start = { ...replication.stats };
  const startedAt = Date.now();
  while (Date.now() - startedAt < seconds * 1000) {
    if (replication.stats.batchesSent - replication.stats.batchesAcked < WINDOW) replication.send(batch);
    else await new Promise((resolve) => setImmediate(resolve));
  }
  await replication.delivered(10_000);
  const ms = Date.now() - startedAt;
  const acked = replication.stats.batchesAcked - start.batchesAcked;
  return { records: acked * batch.length, acked, batchRecords: batch.length, ms };
}

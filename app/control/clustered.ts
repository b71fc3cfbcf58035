/* The control application as a cluster member (docs/control.md "Cluster"): the unit's flash config
 * gives its identity, certificate and cluster CA; a cluster Member runs on its cluster address and a
 * ClusterDataplane binds it to the data plane, which holds every work unit until the cluster says
 * which are ours. Exposes what the management API shows (app/mgmt/cluster-source.ts). */
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { verifyFlashConfig, type VerifiedFlashConfig } from '../../flash-config/index.js';
import { Member } from '../cluster/member.js';
import type { ClusterLog } from '../cluster/master-role.js';
import type { ClusterEventKind, ClusterSource } from '../mgmt/cluster-source.js';
import type { Appliance } from './appliance.js';
import { ClusterDataplane } from './cluster-dataplane.js';
import { ClusterSnatPorts, FULLNAT_PORT_NUMBERS } from './cluster-snat-ports.js';
import type { DeliveryMode } from './cluster-delivery.js';
import { applyAdoptedPolicy, type PolicyTarget } from './cluster-policy-apply.js';
import type { ClusterConfigSettings } from './config.js';

export interface ClusterSettings {
  verified: VerifiedFlashConfig;
  address: string;
  multicast: { group: string; port: number };
  joinPort: number;
  replicationPort: number;
  managementPort: number;
  /** How the shared addresses reach the members (CL-R2). */
  delivery: DeliveryMode;
  /** Shared addresses answered for ARP / neighbour solicitations and announced on mastership, by port device. */
  announce: { device: string; mac?: string; addresses: string[] }[];
}

const MEMBERSHIP_POLL_MS = 250;

/** The flash config's identity fills in what the cluster section leaves out. */
export function clusterSettings(section: ClusterConfigSettings, verified: VerifiedFlashConfig): ClusterSettings {
  const multicastPort = section.multicastPort ?? verified.identity.network.clusterPort;
  return {
    verified,
    address: section.address ?? verified.identity.unit.mgmtAddress,
    multicast: { group: section.multicastGroup, port: multicastPort },
    joinPort: section.joinPort ?? multicastPort + 1,
    replicationPort: section.replicationPort ?? multicastPort + 2,
    managementPort: section.managementPort,
    delivery: section.delivery,
    announce: section.announce,
  };
}

/** Whether an interface of this host has the address (the cluster binds to it). */
export function isLocalAddress(address: string): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((entry) => entry.address === address));
}

/** Verifies the flash config a cluster section names (throws FlashConfigError when refused). */
export async function readClusterSettings(section: ClusterConfigSettings): Promise<ClusterSettings> {
  return clusterSettings(section, await verifyFlashConfig(section.flashConfigDir));
}

export interface ClusteredUnit {
  member: Member;
  binding: ClusterDataplane;
  source: ClusterSource;
  /** One line for sd_notify STATUS=: role, master, members, owned work units. */
  summary(): string;
  stop(): Promise<void>;
}

/** Starts the Member and its data plane binding; the appliance must have started clustered. A
 * higher signed policy the cluster adopts (also while joining) goes to `services`. */
export async function startClusteredUnit(appliance: Appliance, services: PolicyTarget, settings: ClusterSettings, logger: Logger): Promise<ClusteredUnit> {
  const clusterLogger = logger.child({ component: 'cluster' });
  const log: ClusterLog = (level, event, fields) => clusterLogger[level]({ ...fields }, event);
  const dp = appliance.dataplane();
  const { verified } = settings;
  let binding: ClusterDataplane | undefined;
  const ports = appliance.portStatus();
  const member = new Member({
    config: verified,
    address: settings.address,
    multicast: settings.multicast,
    joinPort: settings.joinPort,
    numberSpaces: [FULLNAT_PORT_NUMBERS],
    loadSource: () => binding?.loadSource() ?? [],
    dataMacs: [...ports].sort((a, b) => a.id - b.id).map((port) => port.mac),
    log,
  });
  const portIds = new Map(ports.map((port) => [port.device, port.id]));
  binding = new ClusterDataplane({
    member,
    dp,
    config: verified,
    address: settings.address,
    replication: { port: settings.replicationPort },
    clusterAddresses: settings.announce.map(({ device, mac, addresses }) => ({ port: portIds.get(device)!, ...(mac ? { mac } : {}), addresses })),
    delivery: settings.delivery,
    log,
  });
  await binding.start();
  // The services' VIPs are shared addresses (answered as the delivery mode says, announced by a new
  // master), also the ones a higher signed policy adopted from the cluster brings to this unit.
  const followServices = () => binding.delivery.followServices(services.serviceSettings(), services.portSettings(), portIds);
  followServices();
  member.onPolicyChange((policy) => {
    applyAdoptedPolicy(services, policy, log);
    followServices();
  });
  // Members share the full-NAT source address: each narrows its source ports to a leased block.
  new ClusterSnatPorts(member, appliance, log).start();

  const listeners: ((kind: ClusterEventKind, detail: Record<string, string | number>) => void)[] = [];
  const emit = (kind: ClusterEventKind, detail: Record<string, string | number>) => {
    for (const listener of listeners) listener(kind, detail);
  };
  member.onRoleChange((role) => emit('role', { unit: member.id, role }));
  // Joins and departures show in the master's member list, which every member receives.
  let known = new Set<string>();
  let master: string | undefined;
  const watch = setInterval(() => {
    // Between losing a master and joining again a unit knows no members: that is its role change,
    // not every other member leaving. Who left meanwhile shows once it is back.
    if (member.role !== 'member' && member.role !== 'master') return;
    const now = new Set(member.memberIds);
    for (const id of now) if (!known.has(id) && id !== member.id) emit('member-joined', { unit: id });
    for (const id of known) if (!now.has(id) && id !== member.id) emit('member-left', { unit: id });
    known = now;
    if (member.masterId !== master) {
      if (member.masterId !== undefined) emit('master', { unit: member.masterId, previous: master ?? '-' });
      master = member.masterId;
    }
  }, MEMBERSHIP_POLL_MS);
  watch.unref();

  const owners = () => member.ownership().map((entry) => entry.owner);
  const source: ClusterSource = {
    unitId: member.id,
    address: settings.address,
    role: () => member.role,
    masterId: () => member.masterId,
    members: () => [{ id: member.id, address: settings.address }, ...member.peers()],
    lastHeard: () => member.lastHeard(),
    owners,
    ownsClient: (ip, port) => member.ownership()[dp.workUnitOf(ip, port)]?.state === 'owned',
    onEvent: (listener) => listeners.push(listener),
    managementPort: settings.managementPort,
  };
  await member.start();
  logger.info({ unit: member.id, address: settings.address, multicast: settings.multicast, joinPort: settings.joinPort, replicationPort: settings.replicationPort }, 'cluster member started');
  return {
    member,
    binding,
    source,
    summary: () => {
      const owned = member.ownership().filter((entry) => entry.state === 'owned').length;
      return `cluster ${member.role}, master ${member.masterId ?? '-'}, ${member.memberIds.length} member(s), ${owned} work unit(s) owned`;
    },
    async stop() {
      clearInterval(watch);
      await Promise.all([binding?.stop(), member.stop()]);
    },
  };
}

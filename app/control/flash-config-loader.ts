/* The appliance's configuration from its flash config: the verified identity (data addresses and
 * prefix) and signed policy (services, servers, algorithms) plus the production defaults of a unit
 * (hugepages, the data NICs bound to vfio-pci, management HTTP on loopback). The result goes through
 * the same schema and cross-field rules as a --config file. */
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { isIPv4 } from 'node:net';
import { verifyFlashConfig, type ClusterDelivery, type Policy, type VerifiedFlashConfig, type VirtualService } from '../../flash-config/index.js';
import { ConfigError, parseConfig, portSubnetHolds, type ApplianceConfig, type PortSettings, type ServiceSettings } from './config.js';

/** Where bind-data-nics (edgeplane-vfio-bind.service) leaves the data NICs. */
export const VFIO_PCI_DRIVER_DIR = '/sys/bus/pci/drivers/vfio-pci';
/** DPDK memory on the 2 MiB hugepages edgeplane-hugepages.service reserves (256 pages = 512 MiB),
 * leaving headroom so a fragmented reservation still fits. */
export const PRODUCTION_MEMORY_MB = 384;
/** Source ports full NAT may use on the unit's server-side address. */
const FULLNAT_PORTS = { portMin: 1024, portMax: 65535 };

export interface FlashConfigHost {
  /** PCI addresses of the data NICs in the order of identity.unit.dataAddresses. */
  pciDevices: string[];
  /** Lcores for the EAL: the first is the Node main thread, the rest poll. Default: every CPU. */
  lcores?: number[];
}

export interface LoadedFlashConfig {
  verified: VerifiedFlashConfig;
  config: ApplianceConfig;
}

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** PCI addresses of the devices bound to vfio-pci, sorted (the order bind-data-nics bound them in). */
export async function vfioPciDevices(driverDir = VFIO_PCI_DRIVER_DIR): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(driverDir);
  } catch (error) {
    throw new ConfigError(driverDir, [`cannot list the data NICs bound to vfio-pci: ${(error as Error).message}`]);
  }
  return entries.filter((entry) => PCI_ADDRESS.test(entry)).sort();
}

/** Verifies the flash config in `dir` (throws FlashConfigError) and builds the appliance's config
 * from it (throws ConfigError when the signed content does not fit this machine or application).
 * The data NICs default to the devices bound to vfio-pci, listed after verification. */
export async function loadFlashConfig(
  dir: string,
  options: Partial<FlashConfigHost> & { now?: Date } = {},
): Promise<LoadedFlashConfig> {
  const verified = await verifyFlashConfig(dir, options.now ? { now: options.now } : {});
  const pciDevices = options.pciDevices ?? (await vfioPciDevices());
  return { verified, config: applianceConfigFrom(dir, verified, { pciDevices, ...(options.lcores ? { lcores: options.lcores } : {}) }) };
}

export function applianceConfigFrom(dir: string, verified: VerifiedFlashConfig, host: FlashConfigHost): ApplianceConfig {
  const { identity, policy } = verified;
  const problems: string[] = [];
  const addresses = identity.unit.dataAddresses;
  const addresses6 = identity.unit.dataAddresses6 ?? [];
  addresses.forEach((address, i) => {
    if (!isIPv4(address)) {
      problems.push(`identity.json unit.dataAddresses[${i}]: ${address} is IPv6; a data port's IPv4 address goes here, its IPv6 address in unit.dataAddresses6[${i}]`);
    }
  });
  if (addresses6.length > addresses.length) {
    problems.push(`identity.json unit.dataAddresses6 has ${addresses6.length} address(es) for ${addresses.length} data NIC(s) (unit.dataAddresses)`);
  }
  if (host.pciDevices.length < addresses.length) {
    problems.push(
      `identity.json names ${addresses.length} data address(es) but ${host.pciDevices.length} data NIC(s) are bound to vfio-pci` +
        ` (${host.pciDevices.join(', ') || 'none'})`,
    );
  }
  const ports: PortSettings[] = addresses.map((address, i) => ({
    device: host.pciDevices[i] ?? `(no data NIC ${i})`,
    address,
    prefixLength: identity.network.dataPrefixLength,
    ...(addresses6[i] ? { address6: addresses6[i], prefixLength6: identity.network.dataPrefixLength6 ?? 64 } : {}),
  }));
  const services = policy.services.map((service, i) => serviceFrom(service, i, ports, problems));
  const announce = sharedAddressesByPort(verified, ports, problems);
  if (problems.length > 0) throw new ConfigError(dir, problems);

  const lcores = host.lcores ?? Array.from({ length: availableParallelism() }, (_, i) => i);
  const document = {
    eal: {
      lcores,
      memoryMb: PRODUCTION_MEMORY_MB,
      noHuge: false,
      filePrefix: 'edgeplane',
      allowPci: host.pciDevices.slice(0, addresses.length),
    },
    ports,
    services,
    http: { host: '127.0.0.1', port: 9180 },
    ...(announce ? { cluster: { flashConfigDir: dir, delivery: announce.delivery, announce: announce.byPort } } : {}),
    log: { level: 'info' },
  };
  // The schema applies the same defaults and cross-field rules as to an operator's file.
  return parseConfig(`${dir} (identity.json + policy.json)`, JSON.stringify(document));
}

/** A signed policy's services as this unit would run them on its data ports (a policy the cluster
 * adopted while the unit runs: cluster-policy-apply.ts): converted as at boot, then through the
 * same schema, defaults and cross-field rules. Throws ConfigError with every problem. */
export function policyServiceSettings(policy: Policy, ports: PortSettings[]): ServiceSettings[] {
  const where = `signed policy version ${policy.configVersion}`;
  const problems: string[] = [];
  const services = policy.services.map((service, i) => serviceFrom(service, i, ports, problems));
  if (problems.length > 0) throw new ConfigError(where, problems);
  return parseConfig(where, JSON.stringify({ ports, services })).services;
}

/** The delivery mode (policy.json cluster.delivery) and the shared addresses each data port answers
 * ARP for - identity.json's cluster addresses and the services' VIPs on its subnet - at the shared
 * MAC (none with forwarding delivery: the master's port MAC), which a new master announces there.
 * Undefined without a delivery mode. */
function sharedAddressesByPort(
  verified: VerifiedFlashConfig,
  ports: PortSettings[],
  problems: string[],
): { delivery: ClusterDelivery['mode']; byPort: { device: string; mac?: string; addresses: string[] }[] } | undefined {
  const delivery = verified.policy.cluster.delivery;
  if (!delivery) return undefined;
  const byPort = new Map<string, Set<string>>();
  const portOf = (address: string) => ports.find((port) => portSubnetHolds(port, address));
  const place = (address: string, device: string) => byPort.set(device, (byPort.get(device) ?? new Set()).add(address));
  verified.identity.network.clusterAddresses.forEach((address, i) => {
    const port = portOf(address);
    if (port) place(address, port.device);
    else {
      const subnet = isIPv4(address) ? 'IPv4 subnet' : 'IPv6 subnet (unit.dataAddresses6)';
      problems.push(`identity.json network.clusterAddresses[${i}]: ${address} is on no data port's ${subnet}; ${delivery.mode} delivery announces it on its data port`);
    }
  });
  // A VIP off every data subnet is routed to the cluster: nothing to announce.
  for (const service of verified.policy.services) {
    const port = portOf(service.vip);
    if (port) place(service.vip, port.device);
  }
  const mac = delivery.mode === 'master-forwarding' ? {} : { mac: delivery.mac };
  return { delivery: delivery.mode, byPort: [...byPort].map(([device, addresses]) => ({ device, ...mac, addresses: [...addresses] })) };
}

function serviceFrom(
  service: VirtualService,
  index: number,
  ports: PortSettings[],
  problems: string[],
): Record<string, unknown> {
  const at = `policy.json services[${index}]`;
  const converted: Record<string, unknown> = {
    name: service.name,
    vip: service.vip,
    port: service.port,
    protocol: service.protocol,
    algorithm: service.algorithm,
    // The policy's generic "tunnel" is IP-in-IP, the tunnel every server kernel decapsulates.
    mode: service.mode === 'tunnel' ? 'ipip' : service.mode,
    servers: service.servers.map((server) => ({ address: server.address, port: server.port, weight: server.weight })),
  };
  if (service.dscp !== undefined) {
    // The service's traffic class on both legs that pass the unit (replies of direct-return modes do not).
    const marks = { dscp: service.dscp };
    converted['qos'] = service.mode === 'nat' || service.mode === 'fullnat' ? { toServer: marks, toClient: marks } : { toServer: marks };
  }
  if (service.mode === 'fullnat') {
    // The servers see the unit's own address on their subnet as the client.
    const first = service.servers[0]?.address ?? '';
    const port = ports.find((candidate) => portSubnetHolds(candidate, first));
    if (port) converted['snat'] = { ip: isIPv4(first) ? port.address : port.address6, ...FULLNAT_PORTS };
    else problems.push(`${at}: full NAT needs a data address on the subnet of server ${first}`);
  }
  return converted;
}

/* The Appliance brings the data plane up from a validated configuration and takes it down again.
 * DPDK's EAL can be initialised once per process, so an Appliance starts at most once. */
import type { Logger } from 'pino';
import {
  Dataplane,
  type DataplaneStats,
  type FixedAffinity,
  type FlowKey,
  type InstalledAffinity,
  type PortInfo,
  type QosAction,
  type ServiceDefinition,
  type ServiceServer,
  type UnitState,
  type WildcardAffinity,
} from '../../firmware/dataplane.js';
import { WORK_UNITS } from '../cluster/work-units.js';
import { familyOf } from '../../firmware/addressing.js';
import { inSubnet, type ApplianceConfig, type QosMarks } from './config.js';

export type ApplianceState = 'idle' | 'starting' | 'running' | 'stopped' | 'failed';

export interface PortStatus {
  id: number;
  device: string;
  mac: string;
  linkUp: boolean;
}

/** The configuration does not fit the machine (e.g. a device DPDK did not find). */
export class ApplianceError extends Error {
  override readonly name = 'ApplianceError';
}

/** Precedence of the per-service wildcards; they match one exact VIP:port, so they never overlap. */
const SERVICE_PRECEDENCE = 100;
const DEFAULT_RESOLVE_INTERVAL_MS = 30_000;

export class Appliance {
  readonly #logger: Logger;
  readonly #resolveIntervalMs: number;
  #state: ApplianceState = 'idle';
  #dp: Dataplane | undefined;
  #portIds = new Map<string, number>();
  #serviceNames = new Map<number, string>();
  /** Installed service definitions by name, with the weights in force now (management API). */
  #services = new Map<string, ServiceDefinition>();
  #resolveTimer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, options: { resolveIntervalMs?: number } = {}) {
    this.#logger = logger;
    this.#resolveIntervalMs = options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS;
  }

  get state(): ApplianceState {
    return this.#state;
  }

  /** `clustered`: every work unit is held from the first packet until the cluster binding
   * (cluster-dataplane.ts) says which are ours; standalone, every unit is owned. */
  start(config: ApplianceConfig, options: { clustered?: boolean } = {}): void {
    if (this.#state !== 'idle') throw new ApplianceError(`cannot start an appliance that is ${this.#state}`);
    this.#state = 'starting';
    try {
      this.#dp = Dataplane.init(config.eal, config.dataplane);
      const dp = this.#dp;
      this.#bindPorts(dp, config);
      for (const route of config.routes) {
        dp.addRoute(route.prefix, route.length, this.#portId(route.port), route.gateway);
      }
      this.#installServices(dp, config);
      if (options.clustered) dp.setWorkUnits(Array<UnitState>(WORK_UNITS).fill('hold'));
      dp.start();
      this.#state = 'running';
      this.#resolveServers(dp);
      this.#resolveTimer = setInterval(() => this.#resolveServers(dp), this.#resolveIntervalMs);
      this.#resolveTimer.unref();
      this.#logger.info({ services: config.services.length, ports: this.#portIds.size }, 'data plane running');
    } catch (error) {
      this.#state = 'failed';
      this.#dp?.close();
      throw error;
    }
  }

  /** Stops the workers and releases DPDK. Safe to call in any state and more than once. */
  stop(): void {
    clearInterval(this.#resolveTimer);
    if (this.#state === 'running') {
      this.#dp?.close();
      this.#state = 'stopped';
      this.#logger.info('data plane stopped');
    }
  }

  /** The running data plane itself, for the cluster binding (app/control/cluster-dataplane.ts). */
  dataplane(): Dataplane {
    return this.#running();
  }

  portStatus(): PortStatus[] {
    const found = new Map(this.#running().ports().map((info) => [info.id, info]));
    return [...this.#portIds].map(([device, id]) => {
      const info = found.get(id);
      return { id, device, mac: info?.mac ?? '', linkUp: info?.linkUp ?? false };
    });
  }

  stats(): DataplaneStats {
    return this.#running().stats();
  }

  portDevice(id: number): string {
    for (const [device, portId] of this.#portIds) if (portId === id) return device;
    return `port${id}`;
  }

  serviceName(id: number): string {
    return this.#serviceNames.get(id) ?? `service${id}`;
  }

  /** The virtual services as installed now, in configuration order, with current weights. */
  services(): { name: string; definition: ServiceDefinition }[] {
    return [...this.#services].map(([name, definition]) => ({ name, definition: structuredClone(definition) }));
  }

  /** Changes one server's share of new connections; 0 drains it (established flows keep it). */
  setServerWeight(serviceName: string, server: { ip: string; port: number }, weight: number): void {
    const definition = this.#services.get(serviceName);
    if (!definition) throw new ApplianceError(`service "${serviceName}" does not exist`);
    const target = definition.servers.find((s) => s.ip === server.ip && s.port === server.port);
    if (!target) throw new ApplianceError(`service "${serviceName}" has no server ${server.ip}:${server.port}`);
    if (!Number.isInteger(weight) || weight < 0 || weight > 65535) throw new ApplianceError(`weight ${weight} is not a whole number 0..65535`);
    const updated = { ...definition, servers: definition.servers.map((s) => (s === target ? { ...s, weight } : s)) };
    this.#running().setService(updated);
    this.#services.set(serviceName, updated);
    this.#logger.info({ service: serviceName, server: `${server.ip}:${server.port}`, weight }, 'server weight changed');
  }

  affinities(options: { max?: number; includeLearned?: boolean } = {}): InstalledAffinity[] {
    return this.#running().listAffinities(options);
  }

  addAffinity(affinity: FixedAffinity): void {
    this.#running().addAffinity(affinity);
  }

  removeAffinity(key: FlowKey): boolean {
    return this.#running().removeAffinity(key);
  }

  /** Forgets every connection pinned to a server (both directions), e.g. when it failed. */
  flushServer(serviceName: string, server: { ip: string; port: number }): void {
    const definition = this.#services.get(serviceName);
    if (!definition) throw new ApplianceError(`service "${serviceName}" does not exist`);
    this.#running().flushServer(definition.id, server.ip, server.port);
  }

  /** Forgets one learned connection by either direction's key. */
  forgetFlow(key: FlowKey): void {
    this.#running().forgetFlow(key);
  }

  /** Replaces a service's whole server pool (the service manager's desired state); established
   * flows keep their server. New servers are ARP-resolved at once so their first SYN goes out. */
  replaceServers(serviceName: string, servers: ServiceServer[]): void {
    const definition = this.#services.get(serviceName);
    if (!definition) throw new ApplianceError(`service "${serviceName}" does not exist`);
    const dp = this.#running();
    const known = new Set(definition.servers.map((s) => s.ip));
    const updated = { ...definition, servers };
    dp.setService(updated);
    this.#services.set(serviceName, updated);
    for (const server of servers) if (!known.has(server.ip)) this.#resolve(dp, server.ip);
  }

  /** Narrows a full-NAT service's source ports to [portMin, portMax] (a cluster member's leased
   * block, SR-R6): members of one cluster then never pick the same source port. */
  setSnatPorts(serviceName: string, portMin: number, portMax: number): void {
    const definition = this.#services.get(serviceName);
    if (!definition) throw new ApplianceError(`service "${serviceName}" does not exist`);
    if (!definition.snat) throw new ApplianceError(`service "${serviceName}" does not translate the source (not full NAT)`);
    const updated = { ...definition, snat: { ...definition.snat, portMin, portMax } };
    this.#running().setService(updated);
    this.#services.set(serviceName, updated);
    this.#logger.info({ service: serviceName, portMin, portMax }, 'full-NAT source ports set');
  }

  #running(): Dataplane {
    if (this.#state !== 'running' || !this.#dp) throw new ApplianceError(`the data plane is ${this.#state}`);
    return this.#dp;
  }

  #portId(device: string): number {
    const id = this.#portIds.get(device);
    if (id === undefined) throw new ApplianceError(`port "${device}" is not configured`);
    return id;
  }

  #bindPorts(dp: Dataplane, config: ApplianceConfig): void {
    const found = dp.ports();
    this.#logger.info({ ports: found.map(describePort) }, 'DPDK ports found');
    config.ports.forEach((port, i) => {
      const info = found.find((candidate) => candidate.name === port.device);
      if (!info) {
        const known = found.length === 0 ? 'DPDK found no ports; check eal.vdevs and eal.allowPci' : `DPDK found: ${found.map(describePort).join(', ')}`;
        throw new ApplianceError(`ports[${i}].device: "${port.device}" is not a DPDK port (${known})`);
      }
      this.#portIds.set(port.device, info.id);
      dp.configurePort(info.id, {
        address: port.address,
        prefixLength: port.prefixLength,
        ...(port.address6 ? { address6: port.address6, prefixLength6: port.prefixLength6 ?? 64 } : {}),
      });
    });
  }

  #installServices(dp: Dataplane, config: ApplianceConfig): void {
    const wildcards: WildcardAffinity[] = [];
    config.services.forEach((service, i) => {
      const id = i + 1;
      this.#serviceNames.set(id, service.name);
      const definition: ServiceDefinition = {
        id,
        vip: service.vip,
        port: service.port,
        protocol: service.protocol,
        servers: service.servers.map((s) => ({ ip: s.address, port: s.port, weight: s.weight })),
        mode: service.mode,
        // least-load is Maglev with weights the service manager recomputes from reported load.
        algorithm: service.algorithm === 'wrr' ? 'wrr' : 'maglev',
        ...(service.snat ? { snat: service.snat } : {}),
        ...(service.guePort ? { guePort: service.guePort } : {}),
        ...(service.tableSize ? { tableSize: service.tableSize } : {}),
        ...(service.qos?.toServer ? { qosToServer: qosAction(service.qos.toServer) } : {}),
        ...(service.qos?.toClient ? { qosToClient: qosAction(service.qos.toClient) } : {}),
      };
      dp.setService(definition);
      this.#services.set(service.name, definition);
      const v6 = familyOf(service.vip) === 6;
      wildcards.push({
        protocol: service.protocol,
        srcIp: v6 ? '::' : '0.0.0.0',
        srcMask: v6 ? '::' : '0.0.0.0',
        dstIp: service.vip,
        dstMask: v6 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255',
        srcPort: 0,
        dstPort: service.port,
        precedence: SERVICE_PRECEDENCE,
        action: { type: 'service', serviceId: id },
      });
      // Clients on a connected subnet ARP (IPv6: solicit) for the VIP itself; routed clients reach it via our address.
      for (const port of config.ports) {
        const onLink = v6
          ? port.address6 !== undefined && inSubnet(service.vip, port.address6, port.prefixLength6 ?? 64)
          : inSubnet(service.vip, port.address, port.prefixLength);
        if (onLink) dp.addLocalAddress(this.#portId(port.device), service.vip);
      }
      this.#logger.info({ service: service.name, id, vip: service.vip, port: service.port, servers: definition.servers }, 'service installed');
    });
    dp.setWildcards(wildcards);
  }

  /** NAT mode needs each server's MAC; ARP answers fill the data plane's neighbour table. */
  #resolveServers(dp: Dataplane): void {
    // The pools as installed now: agents add servers the config does not list.
    const addresses = new Set([...this.#services.values()].flatMap((definition) => definition.servers.map((s) => s.ip)));
    for (const address of addresses) this.#resolve(dp, address);
  }

  #resolve(dp: Dataplane, address: string): void {
    try {
      dp.resolve(address);
    } catch (error) {
      this.#logger.warn({ err: error, server: address }, 'cannot resolve server');
    }
  }
}

function describePort(info: PortInfo): string {
  return `${info.name} (port ${info.id}, ${info.driver}, ${info.mac})`;
}

/** A service's QoS marks from the config (VLAN id) as the data plane's action fields (the pushed tag's
 * TCI carries the id; pcp sets its priority bits, or the pushed MPLS label's traffic class). */
function qosAction(marks: QosMarks): QosAction {
  return {
    ...(marks.dscp !== undefined ? { dscp: marks.dscp } : {}),
    ...(marks.pcp !== undefined ? { pcp: marks.pcp } : {}),
    ...(marks.vlan !== undefined ? { vlanPush: marks.vlan } : {}),
    ...(marks.vlanPop ? { vlanPop: true } : {}),
    ...(marks.mplsLabel !== undefined ? { mplsPush: marks.mplsLabel } : {}),
    ...(marks.mplsPop ? { mplsPop: true } : {}),
  };
}

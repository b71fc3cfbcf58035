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
import { portSubnetHolds, type ApplianceConfig, type PortSettings, type QosMarks, type ServiceSettings } from './config.js';

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
/** Service ids the data plane takes: 1 .. EP_MAX_SERVICES - 1 (firmware/native/include/edgeplane.h). */
const MAX_SERVICE_ID = 255;
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
  /** The settings each installed service was installed or last updated from. */
  #settings = new Map<string, ServiceSettings>();
  /** Each service's wildcard; the data plane takes the whole set at once. */
  #wildcards = new Map<string, WildcardAffinity>();
  #ports: PortSettings[] = [];
  /** Every service id given out since start. */
  #everUsedIds = new Set<number>();
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

  /** The settings of the installed services, in installation order (an adopted cluster policy is
   * planned against them: app/control/cluster-policy-apply.ts). */
  serviceSettings(): ServiceSettings[] {
    return [...this.#settings.values()].map((settings) => structuredClone(settings));
  }

  /** The data ports as configured. */
  portSettings(): PortSettings[] {
    return structuredClone(this.#ports);
  }

  /** Installs a service in the running data plane, the same way as at start; its wildcard joins
   * the set, which the workers take at once. It gets an id no service had before in this process
   * while there is one: the data plane's per-server counters and connection flushes are indexed
   * by id, and a removed service's connections may still run (keep). */
  addService(settings: ServiceSettings, servers?: ServiceServer[]): void {
    const dp = this.#running();
    if (this.#settings.has(settings.name)) throw new ApplianceError(`service "${settings.name}" already exists`);
    const id = this.#freeServiceId();
    try {
      this.#install(dp, settings, id, servers);
      dp.setWildcards([...this.#wildcards.values()]);
    } catch (error) {
      // Undo what was set up: the running services stay as they were.
      this.#forget(dp, settings.name, id);
      throw error;
    }
    for (const server of this.#services.get(settings.name)?.servers ?? []) this.#resolve(dp, server.ip);
  }

  /** Takes a service out of the running data plane. Its wildcard goes first, so no new connection
   * matches it; then, with `onServerFailure: 'reset'`, its established connections are forgotten
   * (a packet of one is dropped); with 'keep' (the default) they run on to their end or idle
   * timeout, since a learned flow carries its own translation. */
  removeService(name: string): void {
    const settings = this.#settings.get(name);
    const definition = this.#services.get(name);
    if (!settings || !definition) throw new ApplianceError(`service "${name}" does not exist`);
    const dp = this.#running();
    const wildcards = new Map(this.#wildcards);
    wildcards.delete(name);
    dp.setWildcards([...wildcards.values()]);
    this.#wildcards = wildcards;
    if (settings.onServerFailure === 'reset') for (const server of definition.servers) dp.flushServer(definition.id, server.ip, server.port);
    this.#forget(dp, name, definition.id);
    this.#logger.info({ service: name, id: definition.id, vip: settings.vip, port: settings.port, flows: settings.onServerFailure }, 'service removed');
  }

  /** Gives a running service new settings (servers, weights, algorithm, mode, QoS, full NAT) under
   * its id: established flows keep their server. A new VIP, port or protocol is another listener:
   * the service is removed and installed again. `servers` overrides the settings' pool (the
   * service manager's effective weights). */
  updateService(settings: ServiceSettings, servers?: ServiceServer[]): void {
    const current = this.#settings.get(settings.name);
    const previous = this.#services.get(settings.name);
    if (!current || !previous) throw new ApplianceError(`service "${settings.name}" does not exist`);
    if (current.vip !== settings.vip || current.port !== settings.port || current.protocol !== settings.protocol) {
      this.removeService(settings.name);
      this.addService(settings, servers);
      return;
    }
    const dp = this.#running();
    let definition = serviceDefinition(settings, previous.id);
    if (servers) definition = { ...definition, servers };
    // A cluster member's leased block of source ports (setSnatPorts) stays in force on the same source address.
    if (definition.snat && previous.snat && definition.snat.ip === previous.snat.ip) {
      const portMin = Math.max(definition.snat.portMin, previous.snat.portMin);
      const portMax = Math.min(definition.snat.portMax, previous.snat.portMax);
      if (portMin <= portMax) definition = { ...definition, snat: { ...definition.snat, portMin, portMax } };
    }
    dp.setService(definition);
    this.#services.set(settings.name, definition);
    this.#settings.set(settings.name, settings);
    const known = new Set(previous.servers.map((s) => s.ip));
    for (const server of definition.servers) if (!known.has(server.ip)) this.#resolve(dp, server.ip);
    this.#logger.info({ service: settings.name, id: definition.id, algorithm: definition.algorithm, mode: definition.mode, servers: definition.servers }, 'service updated');
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
    this.#ports = config.ports;
    config.services.forEach((service, i) => this.#install(dp, service, i + 1));
    dp.setWildcards([...this.#wildcards.values()]);
  }

  /** Sets up one service under `id`: its definition in the data plane (`servers`: a pool other than
   * the settings'), its VIP answered on the data ports on the VIP's subnet, and its wildcard
   * (committed by the caller with the whole set). */
  #install(dp: Dataplane, service: ServiceSettings, id: number, servers?: ServiceServer[]): void {
    const definition = servers ? { ...serviceDefinition(service, id), servers } : serviceDefinition(service, id);
    dp.setService(definition);
    this.#everUsedIds.add(id);
    this.#serviceNames.set(id, service.name);
    this.#services.set(service.name, definition);
    this.#settings.set(service.name, service);
    this.#wildcards.set(service.name, serviceWildcard(service, id));
    // Clients on a connected subnet ARP (IPv6: solicit) for the VIP itself; routed clients reach it via our address.
    for (const port of this.#vipPorts(service.vip)) dp.addLocalAddress(this.#portId(port.device), service.vip);
    this.#logger.info({ service: service.name, id, vip: service.vip, port: service.port, servers: definition.servers }, 'service installed');
  }

  #freeServiceId(): number {
    const installed = new Set([...this.#services.values()].map((definition) => definition.id));
    for (let id = 1; id <= MAX_SERVICE_ID; id++) if (!this.#everUsedIds.has(id)) return id;
    for (let id = 1; id <= MAX_SERVICE_ID; id++) if (!installed.has(id)) return id;
    throw new ApplianceError(`no free service id: the data plane holds at most ${MAX_SERVICE_ID} services`);
  }

  /** Drops a service's data plane definition, its VIP where no other service uses it, and its entries here. */
  #forget(dp: Dataplane, name: string, id: number): void {
    const settings = this.#settings.get(name);
    this.#services.delete(name);
    this.#settings.delete(name);
    this.#wildcards.delete(name);
    this.#serviceNames.delete(id);
    try {
      dp.removeService(id);
    } catch {
      // Not set up (an install that failed before it): nothing to remove.
    }
    if (!settings || [...this.#settings.values()].some((other) => other.vip === settings.vip)) return;
    for (const port of this.#vipPorts(settings.vip)) {
      try {
        dp.removeLocalAddress(this.#portId(port.device), settings.vip);
      } catch (error) {
        this.#logger.warn({ err: error, service: name, vip: settings.vip }, 'cannot stop answering for the VIP');
      }
    }
  }

  /** The data ports whose subnet holds the VIP. */
  #vipPorts(vip: string): PortSettings[] {
    return this.#ports.filter((port) => portSubnetHolds(port, vip));
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

/** A service's data plane definition from its settings. */
function serviceDefinition(service: ServiceSettings, id: number): ServiceDefinition {
  return {
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
}

/** The wildcard that sends a service's new connections (any source, its VIP:port) to it. */
function serviceWildcard(service: ServiceSettings, id: number): WildcardAffinity {
  const v6 = familyOf(service.vip) === 6;
  return {
    protocol: service.protocol,
    srcIp: v6 ? '::' : '0.0.0.0',
    srcMask: v6 ? '::' : '0.0.0.0',
    dstIp: service.vip,
    dstMask: v6 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255',
    srcPort: 0,
    dstPort: service.port,
    precedence: SERVICE_PRECEDENCE,
    action: { type: 'service', serviceId: id },
  };
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

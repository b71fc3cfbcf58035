/* The Appliance brings the data plane up from a validated configuration and takes it down again.
 * DPDK's EAL can be initialised once per process, so an Appliance starts at most once. */
import type { Logger } from 'pino';
import {
  Dataplane,
  type DataplaneStats,
  type PortInfo,
  type ServiceDefinition,
  type WildcardAffinity,
} from '../../firmware/dataplane.js';
import { inSubnet, type ApplianceConfig } from './config.js';

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
  #resolveTimer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, options: { resolveIntervalMs?: number } = {}) {
    this.#logger = logger;
    this.#resolveIntervalMs = options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS;
  }

  get state(): ApplianceState {
    return this.#state;
  }

  start(config: ApplianceConfig): void {
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
      dp.start();
      this.#state = 'running';
      this.#resolveServers(dp, config);
      this.#resolveTimer = setInterval(() => this.#resolveServers(dp, config), this.#resolveIntervalMs);
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
      dp.configurePort(info.id, { address: port.address, prefixLength: port.prefixLength });
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
      };
      dp.setService(definition);
      wildcards.push({
        protocol: service.protocol,
        srcIp: '0.0.0.0',
        srcMask: '0.0.0.0',
        dstIp: service.vip,
        dstMask: '255.255.255.255',
        srcPort: 0,
        dstPort: service.port,
        precedence: SERVICE_PRECEDENCE,
        action: { type: 'service', serviceId: id },
      });
      // Clients on a connected subnet ARP for the VIP itself; routed clients reach it via our address.
      for (const port of config.ports) {
        if (inSubnet(service.vip, port.address, port.prefixLength)) dp.addLocalAddress(this.#portId(port.device), service.vip);
      }
      this.#logger.info({ service: service.name, id, vip: service.vip, port: service.port, servers: definition.servers }, 'service installed');
    });
    dp.setWildcards(wildcards);
  }

  /** NAT mode needs each server's MAC; ARP answers fill the data plane's neighbour table. */
  #resolveServers(dp: Dataplane, config: ApplianceConfig): void {
    const addresses = new Set(config.services.flatMap((service) => service.servers.map((s) => s.address)));
    for (const address of addresses) {
      try {
        dp.resolve(address);
      } catch (error) {
        this.#logger.warn({ err: error, server: address }, 'cannot resolve server');
      }
    }
  }
}

function describePort(info: PortInfo): string {
  return `${info.name} (port ${info.id}, ${info.driver}, ${info.mac})`;
}

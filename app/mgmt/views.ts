/* The JSON the management API answers with, computed from the appliance on each request. */
import type { ManagedAppliance } from './managed-appliance.js';
import { isActive, type Flow } from './flows.js';

export type ServerState = 'active' | 'draining' | 'drained';

export interface ServerView {
  service: string;
  address: string;
  port: number;
  /** `address:port`, the id used in URLs. */
  server: string;
  weight: number;
  /** The weight undrain restores. */
  configuredWeight: number;
  state: ServerState;
  /** Connections the data plane tracks to this server now (not closing). */
  activeFlows: number;
  /** Totals since the data plane started: new connections, packets and bytes (both directions). */
  flows: number;
  packets: number;
  bytes: number;
  /** Connection setups timed by the data plane (client SYN to server SYN-ACK) and their total time. */
  handshakes: number;
  handshakeMicros: number;
}

export interface ServiceView {
  name: string;
  vip: string;
  port: number;
  protocol: string;
  activeFlows: number;
  servers: ServerView[];
}

/** Weights as configured at start, by `service/address:port`: what undrain goes back to. */
export type ConfiguredWeights = ReadonlyMap<string, number>;

export const serverId = (service: string, server: string) => `${service}/${server}`;

export function configuredWeights(appliance: ManagedAppliance): Map<string, number> {
  return new Map(
    appliance
      .services()
      .flatMap(({ name, definition }) => definition.servers.map((s) => [serverId(name, `${s.ip}:${s.port}`), s.weight] as const)),
  );
}

export function serviceViews(appliance: ManagedAppliance, flows: Flow[], configured: ConfiguredWeights): ServiceView[] {
  const stats = appliance.stats();
  const active = new Map<string, number>();
  for (const flow of flows) {
    if (!isActive(flow) || flow.killed) continue;
    const id = serverId(flow.service, flow.server);
    active.set(id, (active.get(id) ?? 0) + 1);
  }
  return appliance.services().map(({ name, definition }) => {
    const servers = definition.servers.map((s): ServerView => {
      const server = `${s.ip}:${s.port}`;
      const counters = stats.servers.find((c) => c.serviceId === definition.id && c.ip === s.ip && c.port === s.port);
      const activeFlows = active.get(serverId(name, server)) ?? 0;
      return {
        service: name,
        address: s.ip,
        port: s.port,
        server,
        weight: s.weight,
        configuredWeight: configured.get(serverId(name, server)) ?? s.weight,
        state: s.weight > 0 ? 'active' : activeFlows > 0 ? 'draining' : 'drained',
        activeFlows,
        flows: counters?.flows ?? 0,
        packets: counters?.packets ?? 0,
        bytes: counters?.bytes ?? 0,
        handshakes: counters?.handshakes ?? 0,
        handshakeMicros: counters?.handshakeMicros ?? 0,
      };
    });
    return {
      name,
      vip: definition.vip,
      port: definition.port,
      protocol: definition.protocol,
      activeFlows: servers.reduce((sum, s) => sum + s.activeFlows, 0),
      servers,
    };
  });
}

/** Data plane counters with ports and services named as in the configuration. */
export function counterView(appliance: ManagedAppliance) {
  const stats = appliance.stats();
  return {
    ...stats,
    ports: stats.ports.map((p) => ({ device: appliance.portDevice(p.id), ...p })),
    servers: stats.servers.map((s) => ({ service: appliance.serviceName(s.serviceId), server: `${s.ip}:${s.port}`, ...s })),
  };
}

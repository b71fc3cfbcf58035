/* Where an operator's server changes go. The control application gives the management server its
 * service manager (app/control/management.ts), which keeps an operator's weights and servers over
 * health-check and least-load updates; without one they go straight into the data plane's pools. */
import type { ManagedAppliance } from './managed-appliance.js';

export interface Endpoint {
  ip: string;
  port: number;
}

export interface ServerPools {
  /** 0 drains; established connections keep their server. */
  setWeight(service: string, server: Endpoint, weight: number): void;
  add(service: string, server: Endpoint, weight: number): void;
  /** Established connections keep the server until they end. */
  remove(service: string, server: Endpoint): void;
}

export function dataplanePools(appliance: ManagedAppliance): ServerPools {
  const pool = (service: string) => {
    const found = appliance.services().find((s) => s.name === service);
    if (!found) throw new Error(`service "${service}" does not exist`);
    return found.definition.servers;
  };
  return {
    setWeight: (service, server, weight) => appliance.setServerWeight(service, server, weight),
    add: (service, server, weight) => appliance.replaceServers(service, [...pool(service), { ...server, weight }]),
    remove: (service, server) => appliance.replaceServers(service, pool(service).filter((s) => s.ip !== server.ip || s.port !== server.port)),
  };
}

/* Applies a signed policy the cluster adopted (app/cluster/cluster-policy.ts) to this unit's data
 * plane: each service the appliance runs gets the new policy's server pool and weights (established
 * flows keep their server). Adding or removing whole services needs the VIP's wildcard and local
 * address set up or torn down: not done while running (docs/cluster.md "Missing"); they are logged. */
import type { Policy } from '../../flash-config/index.js';
import type { ClusterLog } from '../cluster/master-role.js';
import type { Appliance } from './appliance.js';

export function applyAdoptedPolicy(appliance: Appliance, policy: Policy, log: ClusterLog): void {
  const running = new Set(appliance.services().map((service) => service.name));
  const wanted = new Set(policy.services.map((service) => service.name));
  for (const service of policy.services) {
    if (!running.has(service.name)) continue;
    appliance.replaceServers(
      service.name,
      service.servers.map((server) => ({ ip: server.address, port: server.port, weight: server.weight })),
    );
    log('info', 'policy applied to service', { service: service.name, configVersion: policy.configVersion, servers: service.servers.length });
  }
  const added = [...wanted].filter((name) => !running.has(name));
  const removed = [...running].filter((name) => !wanted.has(name));
  if (added.length > 0 || removed.length > 0) {
    log('warn', 'policy services not applied until restart', { configVersion: policy.configVersion, added, removed });
  }
}

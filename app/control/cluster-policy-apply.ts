/* Applies a signed policy the cluster adopted (app/cluster/cluster-policy.ts) to this unit's running
 * services (docs/cluster.md "Policy distribution"). The adopted policy is the service set the unit
 * runs: its services are converted as at boot (flash-config-loader policyServiceSettings: same
 * schema and cross-field rules), compared by name with the running ones, and the differences go
 * through the service manager into the data plane - removed services first (they free their
 * VIP:port), then changed ones, then new ones. A policy that does not fit this unit (e.g. a full-NAT
 * service whose servers are on no data port's subnet) is refused as a whole before anything
 * changes; a step the data plane refuses is logged and the other steps still run. */
import type { Policy } from '../../flash-config/index.js';
import type { ClusterLog } from '../cluster/master-role.js';
import { ConfigError, type PortSettings, type ServiceSettings } from './config.js';
import { policyServiceSettings } from './flash-config-loader.js';

/** What applying needs of the unit: the service manager (services.ts) in the control application. */
export interface PolicyTarget {
  serviceSettings(): ServiceSettings[];
  portSettings(): PortSettings[];
  addService(settings: ServiceSettings): void;
  removeService(name: string): void;
  updateService(settings: ServiceSettings): void;
}

export interface PolicyPlan {
  removed: ServiceSettings[];
  changed: ServiceSettings[];
  added: ServiceSettings[];
  unchanged: string[];
}

export type PolicyApplyResult =
  | { applied: true; configVersion: number; removed: string[]; changed: string[]; added: string[]; failed: { service: string; step: string; reason: string }[] }
  | { applied: false; configVersion: number; reason: string };

/** The differences between the running services and the policy's; throws ConfigError when the
 * policy's services cannot run on these ports. */
export function planPolicy(running: ServiceSettings[], ports: PortSettings[], policy: Policy): PolicyPlan {
  const wanted = policyServiceSettings(policy, ports);
  const byName = new Map(running.map((service) => [service.name, service]));
  const wantedNames = new Set(wanted.map((service) => service.name));
  const plan: PolicyPlan = { removed: running.filter((service) => !wantedNames.has(service.name)), changed: [], added: [], unchanged: [] };
  for (const service of wanted) {
    const current = byName.get(service.name);
    if (!current) plan.added.push(service);
    else if (canonical(current) !== canonical(service)) plan.changed.push(service);
    else plan.unchanged.push(service.name);
  }
  return plan;
}

export function applyAdoptedPolicy(target: PolicyTarget, policy: Policy, log: ClusterLog): PolicyApplyResult {
  const { configVersion } = policy;
  let plan: PolicyPlan;
  try {
    plan = planPolicy(target.serviceSettings(), target.portSettings(), policy);
  } catch (error) {
    const reason = error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message;
    log('warn', 'policy not applied: the running services stay as they were', { configVersion, reason });
    return { applied: false, configVersion, reason };
  }
  const failed: { service: string; step: string; reason: string }[] = [];
  const step = (service: ServiceSettings, name: string, action: () => void, fields: Record<string, unknown>): boolean => {
    try {
      action();
      log('info', `policy service ${name}`, { configVersion, service: service.name, ...fields });
      return true;
    } catch (error) {
      const reason = (error as Error).message;
      failed.push({ service: service.name, step: name, reason });
      log('warn', `policy service not ${name}`, { configVersion, service: service.name, reason });
      return false;
    }
  };
  const listener = (service: ServiceSettings) => ({ vip: service.vip, port: service.port, protocol: service.protocol });
  const pool = (service: ServiceSettings) => service.servers.map((server) => `${server.address}:${server.port}=${server.weight}`);
  const removed = plan.removed.filter((service) =>
    step(service, 'removed', () => target.removeService(service.name), { ...listener(service), establishedFlows: service.onServerFailure }),
  );
  const changed = plan.changed.filter((service) =>
    step(service, 'changed', () => target.updateService(service), { ...listener(service), algorithm: service.algorithm, mode: service.mode, servers: pool(service) }),
  );
  const added = plan.added.filter((service) =>
    step(service, 'added', () => target.addService(service), { ...listener(service), algorithm: service.algorithm, mode: service.mode, servers: pool(service) }),
  );
  const names = (list: ServiceSettings[]) => list.map((service) => service.name);
  log(failed.length === 0 ? 'info' : 'warn', 'policy applied', {
    configVersion,
    removed: names(removed),
    changed: names(changed),
    added: names(added),
    unchanged: plan.unchanged,
    failed: failed.map((entry) => `${entry.service} (${entry.step}): ${entry.reason}`),
  });
  return { applied: true, configVersion, removed: names(removed), changed: names(changed), added: names(added), failed };
}

/** JSON with object keys sorted: settings compare equal whatever order their fields were built in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

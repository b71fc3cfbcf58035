/* Operator changes to a service's servers, applied to this unit's data plane: drain, undrain,
 * weight, add, remove. On a cluster member the API applies each change here and forwards the same
 * change to every other member (api-routes.ts), so every unit balances with the same pool. */
import type { EventLog } from './event-log.js';
import { splitEndpoint } from './flows.js';
import type { ManagedAppliance } from './managed-appliance.js';
import type { ServerPools } from './server-pools.js';
import { serverId } from './views.js';

export type ServerChange =
  | { action: 'drain' | 'undrain' | 'remove'; service: string; server: string }
  | { action: 'weight' | 'add'; service: string; server: string; weight: number };

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ChangeContext {
  appliance: ManagedAppliance;
  /** Where the changes go (the service manager, or the data plane directly). */
  pools: ServerPools;
  /** Weights as configured (or as added), by `service/address:port`: what undrain goes back to. */
  configured: Map<string, number>;
  events: EventLog;
}

function serviceOf(context: ChangeContext, service: string) {
  const found = context.appliance.services().find((s) => s.name === service);
  if (!found) throw new HttpError(404, `service "${service}" does not exist`);
  return found;
}

/** Applies the change here and records it; `origin` names the member an operator asked, when the
 * change was forwarded from it. */
export function applyServerChange(context: ChangeContext, change: ServerChange, by: string, origin?: string): void {
  const { name, definition } = serviceOf(context, change.service);
  const [ip, port] = splitEndpoint(change.server);
  const id = serverId(name, change.server);
  const existing = definition.servers.find((s) => s.ip === ip && s.port === port);
  const via: Record<string, string> = origin ? { via: origin } : {};
  if (change.action === 'add') {
    if (existing) throw new HttpError(409, `service "${name}" already has server ${change.server}`);
    context.pools.add(name, { ip, port }, change.weight);
    context.configured.set(id, change.weight);
    context.events.record('server-add', by, { service: name, server: change.server, weight: change.weight, ...via });
    return;
  }
  if (!existing) throw new HttpError(404, `service "${name}" has no server ${change.server}`);
  if (change.action === 'remove') {
    context.pools.remove(name, { ip, port });
    context.configured.delete(id);
    context.events.record('server-remove', by, { service: name, server: change.server, ...via });
    return;
  }
  const configured = context.configured.get(id) ?? existing.weight;
  const next = change.action === 'drain' ? 0 : change.action === 'undrain' ? configured : 'weight' in change ? change.weight : configured;
  context.pools.setWeight(name, { ip, port }, next);
  context.events.record(change.action, by, { service: name, server: change.server, from: existing.weight, to: next, ...via });
}

/** Refuses a change that cannot apply here, before it is forwarded anywhere. */
export function checkServerChange(context: ChangeContext, change: ServerChange): void {
  const { definition } = serviceOf(context, change.service);
  const [ip, port] = splitEndpoint(change.server);
  const exists = definition.servers.some((s) => s.ip === ip && s.port === port);
  if (change.action === 'add' && exists) throw new HttpError(409, `service "${change.service}" already has server ${change.server}`);
  if (change.action !== 'add' && !exists) throw new HttpError(404, `service "${change.service}" has no server ${change.server}`);
  if (change.action === 'remove' && definition.servers.length === 1) throw new HttpError(409, `${change.server} is the last server of service "${change.service}"; drain it instead`);
}

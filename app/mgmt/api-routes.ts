/* The management API's routes, each with the role it needs and JSON schemas for its input. The same
 * table builds the OpenAPI document, so the description cannot drift from what is served.
 * On a cluster member the reads are cluster-wide (the member asks its peers' /api/peer/ routes and
 * merges, cluster-views.ts) and the changes are applied here and forwarded to every other member. */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApplianceError } from '../control/appliance.js';
import { clusterSummary, gatherUnits, mergeFlows, mergeServices, sumCounters, type ClusterContext, type UnitReport } from './cluster-views.js';
import type { EventLog } from './event-log.js';
import { filterFlows, killFlow, listFlows, splitEndpoint, type Flow, type FlowFilter } from './flows.js';
import type { LogTail } from './log-tail.js';
import type { ManagedAppliance } from './managed-appliance.js';
import type { Access, Operator } from './roles.js';
import type { ServerPools } from './server-pools.js';
import { applyServerChange, checkServerChange, HttpError, type ServerChange } from './server-changes.js';
import { counterView, serviceViews, type ServiceView } from './views.js';

export { HttpError } from './server-changes.js';

export interface ApiContext {
  appliance: ManagedAppliance;
  /** Where server changes go: the service manager, or the data plane's pools directly. */
  pools: ServerPools;
  unitId: string;
  startedAt: Date;
  /** Digest of the configuration the appliance started from. */
  configDigest: string;
  /** Weights as configured or added, by `service/address:port`: what undrain goes back to. */
  configured: Map<string, number>;
  events: EventLog;
  logs?: LogTail;
  /** How long a killed connection stays blocked: longer than the data plane's established timeout. */
  killSeconds: number;
  /** Present on a cluster member: its membership and its peers' management APIs. */
  cluster?: ClusterContext;
}

type Handler = (context: ApiContext, request: FastifyRequest, reply: FastifyReply, operator: Operator) => unknown;

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Fastify path syntax (`:name`); the OpenAPI document converts it. */
  url: string;
  role: Access;
  summary: string;
  params?: object;
  querystring?: object;
  body?: object;
  handler: Handler;
}

const SERVICE_NAME = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'service name' } as const;
const ENDPOINT = { type: 'string', pattern: '^[0-9.]+:[0-9]{1,5}$', description: 'server as address:port' } as const;

const serverParams = { type: 'object', required: ['service', 'server'], properties: { service: SERVICE_NAME, server: ENDPOINT } } as const;
const serviceParams = { type: 'object', required: ['service'], properties: { service: SERVICE_NAME } } as const;

const flowFilterProperties = {
  service: { type: 'string', description: 'only connections of this service' },
  server: { type: 'string', description: 'only connections to this server (address:port)' },
  client: { type: 'string', description: 'only connections from this client address or address:port' },
  state: { type: 'string', enum: ['syn', 'established', 'fin', 'rst', 'none'] },
  limit: { type: 'integer', minimum: 0, maximum: 10000, default: 100, description: 'most connections returned (count is not limited)' },
} as const;

const flowFilterQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...flowFilterProperties,
    scope: { type: 'string', enum: ['cluster', 'unit'], default: 'cluster', description: "cluster: every member's connections; unit: this unit's own" },
  },
} as const;

const changeBody = {
  type: 'object',
  required: ['change', 'by'],
  additionalProperties: false,
  properties: {
    change: {
      type: 'object',
      required: ['action', 'service', 'server'],
      additionalProperties: false,
      properties: {
        action: { type: 'string', enum: ['drain', 'undrain', 'weight', 'add', 'remove'] },
        service: SERVICE_NAME,
        server: ENDPOINT,
        weight: { type: 'integer', minimum: 0, maximum: 65535 },
      },
    },
    by: { type: 'string', description: 'the operator who asked' },
    origin: { type: 'string', description: 'the member the operator asked' },
  },
} as const;

/** Connections this unit speaks for: on a cluster member, those of the work units it owns. */
function ownFlows(context: ApiContext): Flow[] {
  const flows = listFlows(context.appliance);
  const cluster = context.cluster;
  if (!cluster) return flows;
  return flows.filter((flow) => cluster.source.ownsClient(...splitEndpoint(flow.client)));
}

function localServices(context: ApiContext): ServiceView[] {
  return context.appliance.state === 'running' ? serviceViews(context.appliance, ownFlows(context), context.configured) : [];
}

function unitView(context: ApiContext) {
  return {
    id: context.unitId,
    state: context.appliance.state,
    uptimeSeconds: Math.round((Date.now() - context.startedAt.getTime()) / 1000),
    ports: context.appliance.state === 'running' ? context.appliance.portStatus() : [],
  };
}

function unitReport(context: ApiContext, cluster: ClusterContext): UnitReport {
  const owners = cluster.source.owners();
  return {
    unit: unitView(context),
    cluster: {
      role: cluster.source.role(),
      masterId: cluster.source.masterId() ?? null,
      ownedUnits: owners.filter((owner) => owner === context.unitId).length,
      members: cluster.source.members().length,
    },
    configVersion: configVersion(context),
    services: localServices(context),
  };
}

async function services(context: ApiContext): Promise<ServiceView[]> {
  if (!context.cluster) return localServices(context);
  return mergeServices(await gatherUnits(context.cluster, unitReport(context, context.cluster)));
}

/** Applies an operator's change here, then on every other member; answers with the server's
 * cluster-wide row and which members applied it. */
async function changeServer(context: ApiContext, change: ServerChange, operator: Operator) {
  checkServerChange(context, change);
  applyServerChange(context, change, operator.name);
  const applied: { unit: string; ok: boolean; error?: string }[] = [{ unit: context.unitId, ok: true }];
  if (context.cluster) {
    const peers = context.cluster.source.members().slice(1);
    const answers = await context.cluster.peers.all(peers, 'POST', '/api/peer/changes', { change, by: operator.name, origin: context.unitId });
    applied.push(...answers.map((answer) => (answer.ok ? { unit: answer.id, ok: true } : { unit: answer.id, ok: false, error: answer.error })));
  }
  const row = (await services(context)).find((s) => s.name === change.service)?.servers.find((s) => s.server === change.server);
  return { ...(row ?? { service: change.service, server: change.server, removed: true }), applied };
}

/** The change a drain, undrain or remove route asks for, from its path parameters. */
const pathChange = (request: FastifyRequest, action: 'drain' | 'undrain' | 'remove'): ServerChange => {
  const { service, server } = request.params as { service: string; server: string };
  return { action, service, server };
};

export const apiRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/api/status',
    role: 'read-only',
    summary: 'This unit, the cluster (members, health, work units) and every service with its servers, cluster-wide',
    handler: async (context) => {
      if (!context.cluster) {
        return { unit: unitView(context), cluster: singleUnitView(context), services: localServices(context), configVersion: configVersion(context) };
      }
      const answers = await gatherUnits(context.cluster, unitReport(context, context.cluster));
      return { unit: unitView(context), cluster: clusterSummary(context.cluster, answers), services: mergeServices(answers), configVersion: configVersion(context) };
    },
  },
  {
    method: 'GET',
    url: '/api/cluster',
    role: 'read-only',
    summary: 'Cluster members (role, health, last keepalive, owned work units) and the owner of each of the 1024 work units',
    handler: async (context) => {
      if (!context.cluster) return singleUnitView(context);
      return clusterSummary(context.cluster, await gatherUnits(context.cluster, unitReport(context, context.cluster)));
    },
  },
  {
    method: 'GET',
    url: '/api/services',
    role: 'read-only',
    summary: 'Virtual services with their servers, weights, drain state and counters (cluster-wide, with each member\'s share)',
    handler: (context) => services(context),
  },
  {
    method: 'GET',
    url: '/api/servers',
    role: 'read-only',
    summary: 'All servers of all services, one row each (cluster-wide)',
    querystring: { type: 'object', additionalProperties: false, properties: { service: { type: 'string' } } },
    handler: async (context, request) => {
      const { service } = request.query as { service?: string };
      return (await services(context)).filter((s) => service === undefined || s.name === service).flatMap((s) => s.servers);
    },
  },
  {
    method: 'POST',
    url: '/api/services/:service/servers',
    role: 'operator',
    summary: 'Add a server to a service (on every member)',
    params: serviceParams,
    body: {
      type: 'object',
      required: ['server'],
      additionalProperties: false,
      properties: { server: ENDPOINT, weight: { type: 'integer', minimum: 0, maximum: 65535, default: 1 } },
    },
    handler: (context, request, _reply, operator) => {
      const { service } = request.params as { service: string };
      const { server, weight } = request.body as { server: string; weight: number };
      return changeServer(context, { action: 'add', service, server, weight }, operator);
    },
  },
  {
    method: 'DELETE',
    url: '/api/services/:service/servers/:server',
    role: 'operator',
    summary: 'Remove a server from a service (on every member); its established connections keep it until they end',
    params: serverParams,
    handler: (context, request, _reply, operator) => changeServer(context, pathChange(request, 'remove'), operator),
  },
  {
    method: 'POST',
    url: '/api/services/:service/servers/:server/drain',
    role: 'operator',
    summary: 'Drain a server on every member: weight 0, no new connections, established ones stay until they end',
    params: serverParams,
    handler: (context, request, _reply, operator) => changeServer(context, pathChange(request, 'drain'), operator),
  },
  {
    method: 'POST',
    url: '/api/services/:service/servers/:server/undrain',
    role: 'operator',
    summary: 'Undrain a server on every member: back to its configured weight',
    params: serverParams,
    handler: (context, request, _reply, operator) => changeServer(context, pathChange(request, 'undrain'), operator),
  },
  {
    method: 'PUT',
    url: '/api/services/:service/servers/:server/weight',
    role: 'operator',
    summary: "Set a server's weight on every member (0..65535; 0 drains)",
    params: serverParams,
    body: {
      type: 'object',
      required: ['weight'],
      additionalProperties: false,
      properties: { weight: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    handler: (context, request, _reply, operator) => {
      const { service, server } = request.params as { service: string; server: string };
      return changeServer(context, { action: 'weight', service, server, weight: (request.body as { weight: number }).weight }, operator);
    },
  },
  {
    method: 'GET',
    url: '/api/flows',
    role: 'read-only',
    summary: "Client connections, filtered; count is the number matching. Cluster-wide each member lists the connections of its own work units",
    querystring: flowFilterQuery,
    handler: async (context, request) => {
      const { limit, scope, ...filter } = request.query as FlowFilter & { limit: number; scope: 'cluster' | 'unit' };
      const own = filterFlows(ownFlows(context), filter);
      if (!context.cluster || scope === 'unit') return { count: own.length, flows: own.slice(0, limit) };
      const self = context.cluster.source.members()[0]!;
      const query = new URLSearchParams(Object.entries({ ...filter, limit }).map(([k, v]) => [k, String(v)])).toString();
      const answers = await context.cluster.peers.all<{ count: number; flows: Flow[] }>(context.cluster.source.members().slice(1), 'GET', `/api/peer/flows?${query}`);
      return mergeFlows([{ ...self, ok: true, value: { count: own.length, flows: own.slice(0, limit) }, answeredInMs: 0 }, ...answers], limit);
    },
  },
  {
    method: 'DELETE',
    url: '/api/flows',
    role: 'operator',
    summary: 'Kill one connection (on every member): both directions are dropped until the data plane forgets it',
    body: {
      type: 'object',
      required: ['service', 'client'],
      additionalProperties: false,
      properties: {
        service: { type: 'string' },
        client: { type: 'string', pattern: '^[0-9.]+:[0-9]{1,5}$', description: 'client address:port' },
      },
    },
    handler: async (context, request, _reply, operator) => {
      const target = request.body as { service: string; client: string };
      const killed = killFlow(context.appliance, target, context.killSeconds);
      if (!killed) throw new HttpError(404, `service "${target.service}" has no connection from ${target.client}`);
      context.events.record('flow-kill', operator.name, { service: killed.service, client: killed.client, server: killed.server });
      if (context.cluster) {
        await context.cluster.peers.all(context.cluster.source.members().slice(1), 'POST', '/api/peer/kill', { ...target, by: operator.name, origin: context.unitId });
      }
      return killed;
    },
  },
  {
    method: 'GET',
    url: '/api/affinities',
    role: 'read-only',
    summary: "Affinities installed by this unit's control application (fixed 5-tuple rules, including kills)",
    querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 } } },
    handler: (context, request) => {
      const { limit } = request.query as { limit: number };
      return context.appliance.affinities({ max: limit, includeLearned: false });
    },
  },
  {
    method: 'GET',
    url: '/api/counters',
    role: 'read-only',
    summary: 'Data plane counters: ports, lcores, actions, drops, lookups, flows, per-server traffic; on a cluster the sum over members and each member\'s own under units',
    handler: async (context) => {
      const own = counterView(context.appliance);
      if (!context.cluster) return own;
      const answers = await context.cluster.peers.all<ReturnType<typeof counterView>>(context.cluster.source.members().slice(1), 'GET', '/api/peer/counters');
      let total: unknown = own;
      for (const answer of answers) if (answer.ok) total = sumCounters(total, answer.value);
      return {
        ...(total as object),
        units: [{ unit: context.unitId, ok: true, counters: own }, ...answers.map((a) => (a.ok ? { unit: a.id, ok: true, counters: a.value } : { unit: a.id, ok: false, error: a.error }))],
      };
    },
  },
  {
    method: 'GET',
    url: '/api/config-version',
    role: 'read-only',
    summary: 'Digest of the configuration this unit started from, and the revision of runtime changes since',
    handler: (context) => configVersion(context),
  },
  {
    method: 'GET',
    url: '/api/events',
    role: 'read-only',
    summary: 'Events this unit saw, oldest first: operator changes (forwarded ones name the member asked), roles, members joining and leaving, new masters',
    querystring: { type: 'object', additionalProperties: false, properties: { since: { type: 'integer', minimum: 0, default: 0 } } },
    handler: (context, request) => context.events.since((request.query as { since: number }).since),
  },
  {
    method: 'GET',
    url: '/api/logs',
    role: 'read-only',
    summary: "A unit's control application's last log lines (JSON lines as logged): this unit's, or a member's (unit=<id>)",
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { lines: { type: 'integer', minimum: 1, maximum: 2000, default: 100 }, unit: { type: 'string', description: 'a cluster member id (default: this unit)' } },
    },
    handler: async (context, request) => {
      const { lines, unit } = request.query as { lines: number; unit?: string };
      if (unit === undefined || unit === context.unitId) return logTail(context, lines);
      const peer = context.cluster?.source.members().find((member) => member.id === unit);
      if (!context.cluster || !peer) throw new HttpError(404, `${unit} is not a member of this unit's cluster`);
      try {
        return await context.cluster.peers.call(peer, 'GET', `/api/peer/logs?lines=${lines}`);
      } catch (error) {
        throw new HttpError(502, (error as Error).message);
      }
    },
  },
  // Cluster-internal: a member's own view and changes forwarded to it, for its peers' unit certificates.
  {
    method: 'GET',
    url: '/api/peer/unit',
    role: 'peer',
    summary: "(members only) This unit's own state, cluster role and service counters",
    handler: (context) => {
      if (!context.cluster) throw new HttpError(409, 'this unit is not a cluster member');
      return unitReport(context, context.cluster);
    },
  },
  {
    method: 'GET',
    url: '/api/peer/flows',
    role: 'peer',
    summary: '(members only) The connections of the work units this unit owns, filtered',
    querystring: { type: 'object', additionalProperties: false, properties: flowFilterProperties },
    handler: (context, request) => {
      const { limit, ...filter } = request.query as FlowFilter & { limit: number };
      const flows = filterFlows(ownFlows(context), filter);
      return { count: flows.length, flows: flows.slice(0, limit) };
    },
  },
  {
    method: 'GET',
    url: '/api/peer/logs',
    role: 'peer',
    summary: "(members only) This unit's last log lines",
    querystring: { type: 'object', additionalProperties: false, properties: { lines: { type: 'integer', minimum: 1, maximum: 2000, default: 100 } } },
    handler: (context, request) => logTail(context, (request.query as { lines: number }).lines),
  },
  {
    method: 'GET',
    url: '/api/peer/counters',
    role: 'peer',
    summary: "(members only) This unit's data plane counters",
    handler: (context) => counterView(context.appliance),
  },
  {
    method: 'POST',
    url: '/api/peer/changes',
    role: 'peer',
    summary: '(members only) Apply a server change an operator made on another member',
    body: changeBody,
    handler: (context, request, _reply, peer) => {
      const { change, by, origin } = request.body as { change: ServerChange; by: string; origin?: string };
      applyServerChange(context, change.action === 'weight' || change.action === 'add' ? { ...change, weight: change.weight ?? 1 } : change, by, origin ?? peer.name);
      return { unit: context.unitId, applied: change };
    },
  },
  {
    method: 'POST',
    url: '/api/peer/kill',
    role: 'peer',
    summary: '(members only) Kill a connection an operator killed on another member',
    body: {
      type: 'object',
      required: ['service', 'client', 'by'],
      additionalProperties: false,
      properties: { service: { type: 'string' }, client: { type: 'string', pattern: '^[0-9.]+:[0-9]{1,5}$' }, by: { type: 'string' }, origin: { type: 'string' } },
    },
    handler: (context, request, _reply, peer) => {
      const target = request.body as { service: string; client: string; by: string; origin?: string };
      const killed = killFlow(context.appliance, target, context.killSeconds);
      if (killed) context.events.record('flow-kill', target.by, { service: killed.service, client: killed.client, server: killed.server, via: target.origin ?? peer.name });
      return { unit: context.unitId, killed: killed !== undefined };
    },
  },
];

function logTail(context: ApiContext, lines: number): unknown[] {
  if (!context.logs) throw new HttpError(404, 'this unit keeps no log tail');
  return context.logs.tail(lines).map((line) => JSON.parse(line) as unknown);
}

function singleUnitView(context: ApiContext) {
  return {
    mode: 'single-unit',
    note: 'not clustered: this unit serves every service itself (start it with a cluster section or --flash-config to join a cluster)',
    members: [{ id: context.unitId, self: true, state: context.appliance.state }],
    workUnits: { total: 1024, unassigned: 0, owners: [] },
  };
}

function configVersion(context: ApiContext) {
  return { configDigest: context.configDigest, revision: context.events.revision };
}

/** sha256 over the configuration as started (canonical JSON of the parsed config). */
export function digestConfig(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

export function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  if (error instanceof ApplianceError) return new HttpError(503, error.message);
  return undefined;
}

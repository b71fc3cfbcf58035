/* The management API's routes, each with the role it needs and JSON schemas for its input. The same
 * table builds the OpenAPI document, so the description cannot drift from what is served. */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApplianceError } from '../control/appliance.js';
import type { EventLog } from './event-log.js';
import { filterFlows, killFlow, listFlows, splitEndpoint, type FlowFilter } from './flows.js';
import type { LogTail } from './log-tail.js';
import type { ManagedAppliance } from './managed-appliance.js';
import type { Operator, Role } from './roles.js';
import { counterView, serviceViews, serverId, type ConfiguredWeights } from './views.js';

export interface ApiContext {
  appliance: ManagedAppliance;
  unitId: string;
  startedAt: Date;
  /** Digest of the configuration the appliance started from. */
  configDigest: string;
  configured: ConfiguredWeights;
  events: EventLog;
  logs?: LogTail;
  /** How long a killed connection stays blocked: longer than the data plane's established timeout. */
  killSeconds: number;
}

type Handler = (context: ApiContext, request: FastifyRequest, reply: FastifyReply, operator: Operator) => unknown;

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Fastify path syntax (`:name`); the OpenAPI document converts it. */
  url: string;
  role: Role;
  summary: string;
  params?: object;
  querystring?: object;
  body?: object;
  handler: Handler;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const serverParams = {
  type: 'object',
  required: ['service', 'server'],
  properties: {
    service: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'service name' },
    server: { type: 'string', pattern: '^[0-9.]+:[0-9]{1,5}$', description: 'server as address:port' },
  },
} as const;

const flowFilterQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    service: { type: 'string', description: 'only connections of this service' },
    server: { type: 'string', description: 'only connections to this server (address:port)' },
    client: { type: 'string', description: 'only connections from this client address or address:port' },
    state: { type: 'string', enum: ['syn', 'established', 'fin', 'rst', 'none'] },
    limit: { type: 'integer', minimum: 0, maximum: 10000, default: 100, description: 'most connections returned (count is not limited)' },
  },
} as const;

function findServer(context: ApiContext, service: string, server: string) {
  const found = context.appliance.services().find((s) => s.name === service);
  if (!found) throw new HttpError(404, `service "${service}" does not exist`);
  const [ip, port] = splitEndpoint(server);
  const entry = found.definition.servers.find((s) => s.ip === ip && s.port === port);
  if (!entry) throw new HttpError(404, `service "${service}" has no server ${server}`);
  return { ip, port, weight: entry.weight };
}

function changeWeight(context: ApiContext, request: FastifyRequest, operator: Operator, weight: (current: number, configured: number) => number, kind: 'drain' | 'undrain' | 'weight') {
  const { service, server } = request.params as { service: string; server: string };
  const target = findServer(context, service, server);
  const configured = context.configured.get(serverId(service, server)) ?? target.weight;
  const next = weight(target.weight, configured);
  context.appliance.setServerWeight(service, target, next);
  context.events.record(kind, operator.name, { service, server, from: target.weight, to: next });
  const view = serviceViews(context.appliance, listFlows(context.appliance), context.configured)
    .find((s) => s.name === service)!
    .servers.find((s) => s.server === server)!;
  return view;
}

export const apiRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/api/status',
    role: 'read-only',
    summary: 'This unit and the cluster: state, ports, members, services with their server states',
    handler: (context) => {
      const flows = context.appliance.state === 'running' ? listFlows(context.appliance) : [];
      return {
        unit: {
          id: context.unitId,
          state: context.appliance.state,
          uptimeSeconds: Math.round((Date.now() - context.startedAt.getTime()) / 1000),
          ports: context.appliance.state === 'running' ? context.appliance.portStatus() : [],
        },
        cluster: clusterView(context),
        services: context.appliance.state === 'running' ? serviceViews(context.appliance, flows, context.configured) : [],
        configVersion: configVersion(context),
      };
    },
  },
  {
    method: 'GET',
    url: '/api/cluster',
    role: 'read-only',
    summary: 'Cluster members and the work-unit map (single-unit mode: this unit only)',
    handler: (context) => clusterView(context),
  },
  {
    method: 'GET',
    url: '/api/services',
    role: 'read-only',
    summary: 'Virtual services with their servers, weights, drain state and counters',
    handler: (context) => serviceViews(context.appliance, listFlows(context.appliance), context.configured),
  },
  {
    method: 'GET',
    url: '/api/servers',
    role: 'read-only',
    summary: 'All servers of all services, one row each',
    querystring: { type: 'object', additionalProperties: false, properties: { service: { type: 'string' } } },
    handler: (context, request) => {
      const { service } = request.query as { service?: string };
      return serviceViews(context.appliance, listFlows(context.appliance), context.configured)
        .filter((s) => service === undefined || s.name === service)
        .flatMap((s) => s.servers);
    },
  },
  {
    method: 'POST',
    url: '/api/services/:service/servers/:server/drain',
    role: 'operator',
    summary: 'Drain a server: weight 0, no new connections, established ones stay until they end',
    params: serverParams,
    handler: (context, request, _reply, operator) => changeWeight(context, request, operator, () => 0, 'drain'),
  },
  {
    method: 'POST',
    url: '/api/services/:service/servers/:server/undrain',
    role: 'operator',
    summary: 'Undrain a server: back to its configured weight',
    params: serverParams,
    handler: (context, request, _reply, operator) => changeWeight(context, request, operator, (_now, configured) => configured, 'undrain'),
  },
  {
    method: 'PUT',
    url: '/api/services/:service/servers/:server/weight',
    role: 'operator',
    summary: "Set a server's weight (0..65535; 0 drains)",
    params: serverParams,
    body: {
      type: 'object',
      required: ['weight'],
      additionalProperties: false,
      properties: { weight: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    handler: (context, request, _reply, operator) =>
      changeWeight(context, request, operator, () => (request.body as { weight: number }).weight, 'weight'),
  },
  {
    method: 'GET',
    url: '/api/flows',
    role: 'read-only',
    summary: 'Client connections the data plane tracks, filtered; count is the number matching',
    querystring: flowFilterQuery,
    handler: (context, request) => {
      const { limit, ...filter } = request.query as FlowFilter & { limit: number };
      const flows = filterFlows(listFlows(context.appliance), filter);
      return { count: flows.length, flows: flows.slice(0, limit) };
    },
  },
  {
    method: 'DELETE',
    url: '/api/flows',
    role: 'operator',
    summary: 'Kill one connection: both directions are dropped until the data plane forgets it',
    body: {
      type: 'object',
      required: ['service', 'client'],
      additionalProperties: false,
      properties: {
        service: { type: 'string' },
        client: { type: 'string', pattern: '^[0-9.]+:[0-9]{1,5}$', description: 'client address:port' },
      },
    },
    handler: (context, request, _reply, operator) => {
      const target = request.body as { service: string; client: string };
      const killed = killFlow(context.appliance, target, context.killSeconds);
      if (!killed) throw new HttpError(404, `service "${target.service}" has no connection from ${target.client}`);
      context.events.record('flow-kill', operator.name, { service: killed.service, client: killed.client, server: killed.server });
      return killed;
    },
  },
  {
    method: 'GET',
    url: '/api/affinities',
    role: 'read-only',
    summary: 'Affinities installed by the control application (fixed 5-tuple rules, including kills)',
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
    summary: 'Data plane counters: ports, lcores, actions, drops, lookups, flows, per-server traffic',
    handler: (context) => counterView(context.appliance),
  },
  {
    method: 'GET',
    url: '/api/config-version',
    role: 'read-only',
    summary: 'Digest of the configuration started from, and the revision of runtime changes since',
    handler: (context) => configVersion(context),
  },
  {
    method: 'GET',
    url: '/api/events',
    role: 'read-only',
    summary: 'Drains, weight changes and connection kills, oldest first',
    querystring: { type: 'object', additionalProperties: false, properties: { since: { type: 'integer', minimum: 0, default: 0 } } },
    handler: (context, request) => context.events.since((request.query as { since: number }).since),
  },
  {
    method: 'GET',
    url: '/api/logs',
    role: 'read-only',
    summary: "The control application's last log lines (JSON lines as logged)",
    querystring: { type: 'object', additionalProperties: false, properties: { lines: { type: 'integer', minimum: 1, maximum: 2000, default: 100 } } },
    handler: (context, request) => {
      if (!context.logs) throw new HttpError(404, 'this unit keeps no log tail');
      return context.logs.tail((request.query as { lines: number }).lines).map((line) => JSON.parse(line) as unknown);
    },
  },
];

function clusterView(context: ApiContext) {
  return {
    mode: 'single-unit',
    note: 'clustering is not implemented yet: this unit is the only member and serves every service itself',
    members: [{ id: context.unitId, self: true, state: context.appliance.state }],
    workUnits: [],
  };
}

function configVersion(context: ApiContext) {
  return { configDigest: context.configDigest, revision: context.events.sequence };
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

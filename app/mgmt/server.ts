/* The management server: HTTPS with mutual TLS on the management address. Every request needs a
 * client certificate from the cluster CA that names an operator; each route needs a role. Serves
 * the JSON API, its OpenAPI description, Prometheus metrics and the dashboard. */
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DataplaneMetrics } from '../control/metrics.js';
import { apiRoutes, toHttpError, type ApiContext } from './api-routes.js';
import { identifyClient, type RevokedSerials } from './client-identity.js';
import { loadDashboardFiles } from './dashboard-files.js';
import { EventLog } from './event-log.js';
import type { LogTail } from './log-tail.js';
import type { ManagedAppliance } from './managed-appliance.js';
import { METRICS_PATH, OPENAPI_PATH, openApiDocument } from './openapi.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import type { ClusterSource } from './cluster-source.js';
import { PeerClient } from './peer-client.js';
import { dataplanePools, type ServerPools } from './server-pools.js';
import { roleAllows, type Access, type Operator } from './roles.js';
import { configuredWeights } from './views.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: Access;
  }
  interface FastifyRequest {
    operator?: Operator;
  }
}

export interface ManagementTls {
  /** The cluster CA (PEM): the only issuer of client certificates accepted. */
  ca: string;
  /** This unit's certificate and key (PEM), from its flash config. */
  cert: string;
  key: string;
}

export interface ManagementOptions {
  host: string;
  port: number;
  tls: ManagementTls;
  unitId: string;
  configDigest: string;
  /** Seconds a killed connection stays blocked; use the data plane's established timeout + 1. */
  killSeconds: number;
  revokedSerials?: RevokedSerials;
  logs?: LogTail;
  /** On a cluster member: views become cluster-wide and changes go to every member. */
  cluster?: ClusterSource;
  /** Where server changes go; default: straight into the data plane's pools. */
  pools?: ServerPools;
}

export interface ManagementServer {
  url: string;
  events: EventLog;
  close(): Promise<void>;
}

export async function startManagementServer(appliance: ManagedAppliance, options: ManagementOptions, logger: Logger): Promise<ManagementServer> {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    https: { ...options.tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } },
  });
  const context: ApiContext = {
    appliance,
    pools: options.pools ?? dataplanePools(appliance),
    unitId: options.unitId,
    startedAt: new Date(),
    configDigest: options.configDigest,
    configured: configuredWeights(appliance),
    events: new EventLog(),
    logs: options.logs,
    killSeconds: options.killSeconds,
    ...(options.cluster ? { cluster: { source: options.cluster, peers: new PeerClient(options.tls, options.cluster.managementPort) } } : {}),
  };
  options.cluster?.onEvent((kind, detail) => context.events.record(kind, 'cluster', detail));
  const revoked = options.revokedSerials ?? new Set<string>();

  app.addHook('onRequest', async (request, reply) => {
    const identity = identifyClient(request.raw.socket as TLSSocket, revoked);
    if ('refused' in identity) return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: identity.refused });
    const needed = request.routeOptions.config.role ?? 'operator';
    const refuse = (message: string) => reply.code(403).send({ statusCode: 403, error: 'Forbidden', message });
    if ('unit' in identity) {
      if (needed !== 'peer') return refuse(`certificate names no operator role: unit ${identity.unit}'s certificate may only call the cluster-internal /api/peer/ routes`);
      request.operator = { name: `unit:${identity.unit}`, role: 'read-only' };
      return;
    }
    if (needed === 'peer') return refuse(`${request.routeOptions.url} is for cluster members' unit certificates; ${identity.operator.name} is an operator`);
    if (!roleAllows(identity.operator.role, needed)) {
      logger.warn({ operator: identity.operator, url: request.url }, 'refused: role too weak');
      return reply.code(403).send({
        statusCode: 403,
        error: 'Forbidden',
        message: `${identity.operator.name} has role ${identity.operator.role}; ${request.method} ${request.routeOptions.url} needs ${needed}`,
      });
    }
    request.operator = identity.operator;
  });

  app.setErrorHandler((error, request, reply) => {
    const known = toHttpError(error);
    if (known) return reply.code(known.statusCode).send({ statusCode: known.statusCode, error: 'Request refused', message: known.message });
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status < 500) return reply.code(status).send(error);
    logger.error({ err: error, url: request.url }, 'management request failed');
    return reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: (error as Error).message });
  });

  for (const route of apiRoutes) {
    app.route({
      method: route.method,
      url: route.url,
      config: { role: route.role },
      // Only the parts a route has: fastify warns (FSTWRN001) about every part given as undefined.
      schema: Object.fromEntries(Object.entries({ params: route.params, querystring: route.querystring, body: route.body }).filter(([, part]) => part !== undefined)),
      handler: async (request, reply) => {
        const result = await route.handler(context, request, reply, request.operator!);
        if (route.method !== 'GET') logger.info({ operator: request.operator, route: `${route.method} ${route.url}`, params: request.params }, 'management change');
        return result;
      },
    });
  }

  const document = openApiDocument(apiRoutes);
  app.get(OPENAPI_PATH, { config: { role: 'read-only' } }, async () => document);

  const metrics = new DataplaneMetrics(appliance);
  if (options.cluster) registerClusterMetrics(metrics.registry, options.cluster);
  app.get(METRICS_PATH, { config: { role: 'read-only' } }, async (_request, reply) => {
    metrics.update(appliance.stats());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const dashboard = loadDashboardFiles();
  const serveDashboard = async (request: FastifyRequest, reply: FastifyReply) => {
    const name = (request.params as { file?: string }).file || 'index.html';
    const file = dashboard.get(name);
    if (!file) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no dashboard file ${name}` });
    return reply.type(file.type).send(file.body);
  };
  app.get('/', { config: { role: 'read-only' } }, async (_request, reply) => reply.redirect('/dashboard/'));
  app.get('/dashboard/', { config: { role: 'read-only' } }, serveDashboard);
  app.get('/dashboard/:file', { config: { role: 'read-only' } }, serveDashboard);

  const url = await app.listen({ host: options.host, port: options.port });
  return {
    url,
    events: context.events,
    close: async () => {
      await app.close();
      context.cluster?.peers.close();
    },
  };
}

/* The management HTTP endpoint: health for supervisors and load balancers in front, metrics for
 * Prometheus. It only reads from the appliance. */
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Appliance } from './appliance.js';
import { DataplaneMetrics } from './metrics.js';

export interface HttpServer {
  url: string;
  close(): Promise<void>;
}

type ObservedAppliance = Pick<Appliance, 'state' | 'portStatus' | 'stats' | 'portDevice' | 'serviceName'>;

export async function startHttp(
  appliance: ObservedAppliance,
  options: { host: string; port: number },
  logger: Logger,
  /** Metrics of other parts of the control application (agent listener, service manager). */
  otherRegistries: Registry[] = [],
): Promise<HttpServer> {
  const metrics = new DataplaneMetrics(appliance);
  const registry = Registry.merge([metrics.registry, ...otherRegistries]);
  // Scrapes every few seconds would drown the journal in request lines.
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });

  app.get('/healthz', async (_request, reply) => {
    if (appliance.state !== 'running') return reply.code(503).send({ status: 'unavailable', state: appliance.state });
    const ports = appliance.portStatus().map(({ device, linkUp }) => ({ device, linkUp }));
    return { status: 'ok', state: appliance.state, ports };
  });

  app.get('/metrics', async (_request, reply) => {
    if (appliance.state !== 'running') {
      return reply.code(503).type('text/plain').send(`data plane is ${appliance.state}\n`);
    }
    metrics.update(appliance.stats());
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  const address = await app.listen({ host: options.host, port: options.port });
  return { url: address, close: () => app.close() };
}

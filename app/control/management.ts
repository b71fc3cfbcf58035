/* Starts the mutual-TLS management API (app/mgmt): from the configuration's `management` section
 * (operators' certificates must chain to its caFile), or, on a cluster member without one, from the
 * unit's flash config: its unit certificate and key serve the API on its cluster address, and the
 * cluster CA issues the operators' certificates and its peers' unit certificates. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { digestConfig } from '../mgmt/api-routes.js';
import type { ClusterSource } from '../mgmt/cluster-source.js';
import type { LogTail } from '../mgmt/log-tail.js';
import { HttpError } from '../mgmt/server-changes.js';
import type { ServerPools } from '../mgmt/server-pools.js';
import { startManagementServer, type ManagementServer } from '../mgmt/server.js';
import type { Appliance } from './appliance.js';
import type { ClusterSettings } from './clustered.js';
import type { ApplianceConfig } from './config.js';
import { RefusedMessage, type ServiceManager } from './services.js';

export interface ManagementCluster {
  settings: ClusterSettings;
  source: ClusterSource;
}

export async function startManagement(
  appliance: Appliance,
  config: ApplianceConfig,
  logger: Logger,
  options: { cluster?: ManagementCluster; logs?: LogTail; services?: ServiceManager } = {},
): Promise<ManagementServer | undefined> {
  const settings = config.management;
  const { cluster } = options;
  if (!settings && !cluster) return undefined;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`management.${what}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const endpoint = settings
    ? {
        host: settings.host,
        port: settings.port,
        unitId: settings.unitId,
        tls: { ca: read(settings.caFile, 'caFile'), cert: read(settings.certFile, 'certFile'), key: read(settings.keyFile, 'keyFile') },
      }
    : {
        host: cluster!.settings.address,
        port: cluster!.settings.managementPort,
        unitId: cluster!.settings.verified.identity.unit.id,
        tls: cluster!.settings.verified.tls,
      };
  return startManagementServer(
    appliance,
    {
      ...endpoint,
      configDigest: digestConfig(config),
      // a killed connection stays blocked as long as its learned flow could live
      killSeconds: config.dataplane.timeouts.establishedSeconds + 1,
      ...(cluster ? { cluster: cluster.source, revokedSerials: cluster.settings.verified.revokedSerials } : {}),
      ...(options.logs ? { logs: options.logs } : {}),
      ...(options.services ? { pools: managedPools(options.services) } : {}),
    },
    logger,
  );
}

/** Operator changes through the service manager, so its health checks and least-load weights
 * keep them instead of pushing the configured pool over them. */
function managedPools(services: ServiceManager): ServerPools {
  const refused = (action: () => void) => {
    try {
      action();
    } catch (error) {
      if (error instanceof RefusedMessage) throw new HttpError(error.reason === 'not-registered' ? 404 : 409, error.message);
      throw error;
    }
  };
  return {
    setWeight: (service, server, weight) => refused(() => services.setOperatorWeight({ service, address: server.ip, port: server.port }, weight)),
    add: (service, server, weight) => refused(() => services.addStaticServer({ service, address: server.ip, port: server.port }, weight)),
    remove: (service, server) => refused(() => services.removeServer({ service, address: server.ip, port: server.port })),
  };
}

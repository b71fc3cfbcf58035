/* Starts the mutual-TLS management API (app/mgmt) when the configuration has a `management`
 * section: the unit's certificate serves it, operators' certificates must chain to the CA. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { digestConfig } from '../mgmt/api-routes.js';
import { startManagementServer, type ManagementServer } from '../mgmt/server.js';
import type { Appliance } from './appliance.js';
import type { ApplianceConfig } from './config.js';

export async function startManagement(appliance: Appliance, config: ApplianceConfig, logger: Logger): Promise<ManagementServer | undefined> {
  const settings = config.management;
  if (!settings) return undefined;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`management.${what}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const tls = { ca: read(settings.caFile, 'caFile'), cert: read(settings.certFile, 'certFile'), key: read(settings.keyFile, 'keyFile') };
  return startManagementServer(
    appliance,
    {
      host: settings.host,
      port: settings.port,
      tls,
      unitId: settings.unitId,
      configDigest: digestConfig(config),
      // a killed connection stays blocked as long as its learned flow could live
      killSeconds: config.dataplane.timeouts.establishedSeconds + 1,
    },
    logger,
  );
}

/* The control application's entry point: config -> data plane -> cluster -> management, until a signal.
 * The config comes from a JSON file (--config) or, on an appliance, from its flash config
 * (--flash-config DIR: verified identity + signed policy + production defaults). A unit runs as a
 * cluster member when its config file has a `cluster` section, and always with --flash-config.
 * Exit codes: 0 after a clean stop, 1 when the appliance cannot start, 2 for a bad command line or
 * configuration file, 78 (EX_CONFIG) for a flash config that is refused: edgeplane.service does not
 * restart on it, since retrying cannot fix it. */
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { Appliance } from './appliance.js';
import { isLocalAddress, readClusterSettings, startClusteredUnit, type ClusterSettings, type ClusteredUnit } from './clustered.js';
import { clusterDefaults, ConfigError, loadConfig, type ApplianceConfig } from './config.js';
import { loadFlashConfig } from './flash-config-loader.js';
import { FlashConfigError } from '../../flash-config/index.js';
import { Notifier } from './notify.js';
import { startAgentListener, type AgentListener } from './agent-listener.js';
import { startHttp, type HttpServer } from './http.js';
import { startManagement } from './management.js';
import { LogTail } from '../mgmt/log-tail.js';
import type { ManagementServer } from '../mgmt/server.js';
import { ServiceManager } from './services.js';

const EXIT_START_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;

type Source = { config: string; flashConfig?: undefined } | { config?: undefined; flashConfig: string };

function readOptions(argv: string[]): Source {
  const program = new Command()
    .name('edgeplane-control')
    .description('Runs the edgeplane data plane and its management HTTP endpoint')
    .option('-c, --config <file>', 'configuration file (JSON, see docs/control.md)')
    .option('--flash-config <dir>', "the unit's flash config (docs/flash-config.md); data NICs: the devices bound to vfio-pci")
    .exitOverride();
  let options: { config?: string; flashConfig?: string };
  try {
    options = program.parse(argv).opts<{ config?: string; flashConfig?: string }>();
  } catch (error) {
    const exitCode = error instanceof CommanderError ? error.exitCode : EXIT_USAGE;
    process.exit(exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (options.config !== undefined && options.flashConfig === undefined) return { config: options.config };
  if (options.flashConfig !== undefined && options.config === undefined) return { flashConfig: options.flashConfig };
  process.stderr.write('error: give exactly one of --config FILE or --flash-config DIR\n');
  process.exit(EXIT_USAGE);
}

interface Startup {
  config: ApplianceConfig;
  cluster?: ClusterSettings;
}

/** Verifies the flash config; a refused one is reported as "refusing to start: <file>: <reason>".
 * A unit started from its flash config is always a cluster member. */
async function readFlashConfig(dir: string): Promise<Startup> {
  try {
    const { verified, config } = await loadFlashConfig(dir);
    process.stderr.write(
      `edgeplane: flash config ${dir} verified: unit ${verified.identity.unit.id} of cluster ${verified.identity.cluster.name}, ` +
        `config version ${verified.identity.configVersion}, ${config.services.length} service(s), data NICs ${config.eal.allowPci.join(' ')}\n`,
    );
    const cluster = await readClusterSettings(config.cluster ?? clusterDefaults(dir));
    // The image gives the management NIC identity.json's address (edgeplane-management-network);
    // a host without it cannot reach its peers: it serves alone rather than hold every connection.
    if (!isLocalAddress(cluster.address)) {
      process.stderr.write(`edgeplane: not clustering: the management address ${cluster.address} from ${dir}/identity.json is on no interface; serving alone\n`);
      return { config };
    }
    return { config, cluster };
  } catch (error) {
    if (error instanceof FlashConfigError) {
      process.stderr.write(`edgeplane: refusing to start: flash config ${dir}/${error.file}: ${error.reason}\n`);
    } else if (error instanceof ConfigError) {
      process.stderr.write(`edgeplane: refusing to start: ${error.message}\n`);
    } else {
      throw error;
    }
    process.exit(EXIT_CONFIG);
  }
}

async function readConfig(file: string): Promise<Startup> {
  let config: ApplianceConfig;
  try {
    config = loadConfig(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  if (!config.cluster) return { config };
  try {
    return { config, cluster: await readClusterSettings(config.cluster) };
  } catch (error) {
    if (!(error instanceof FlashConfigError)) throw error;
    process.stderr.write(`edgeplane: refusing to start: ${file} cluster.flashConfigDir: ${config.cluster.flashConfigDir}/${error.file}: ${error.reason}\n`);
    process.exit(EXIT_CONFIG);
  }
}

async function main(): Promise<void> {
  const source = readOptions(process.argv);
  const { config, cluster: clusterSettings } = source.config !== undefined ? await readConfig(source.config) : await readFlashConfig(source.flashConfig);
  const logs = new LogTail();
  const logger = pino({ name: 'edgeplane-control', level: config.log.level }, pino.multistream([{ stream: process.stdout, level: config.log.level }, { stream: logs, level: config.log.level }]));
  const notifier = new Notifier(logger);

  const appliance = new Appliance(logger);
  try {
    appliance.start(config, { clustered: clusterSettings !== undefined });
  } catch (error) {
    logger.fatal({ err: error }, `cannot start the appliance: ${(error as Error).message}`);
    process.exit(EXIT_START_FAILED);
  }
  // Without agents a static server is never silent; the silence limit only applies to agent-registered ones.
  const silenceMs = config.agents ? config.agents.reportIntervalMs * config.agents.missedReports : Number.POSITIVE_INFINITY;
  // Before the cluster: a policy the cluster hands over while joining goes through it.
  const services = new ServiceManager(appliance, config.services, { silenceMs, logger });
  let cluster: ClusteredUnit | undefined;
  if (clusterSettings) {
    try {
      cluster = await startClusteredUnit(appliance, services, clusterSettings, logger);
    } catch (error) {
      logger.fatal({ err: error }, `cannot join the cluster on ${clusterSettings.address}: ${(error as Error).message}`);
      appliance.stop();
      process.exit(EXIT_START_FAILED);
    }
  }
  services.start();
  let agents: AgentListener | undefined;
  if (config.agents) {
    try {
      agents = await startAgentListener(config.agents, services, logger);
    } catch (error) {
      logger.fatal({ err: error }, `cannot listen for server agents on ${config.agents.host}:${config.agents.port}: ${(error as Error).message}`);
      services.stop();
      await cluster?.stop();
      appliance.stop();
      process.exit(EXIT_START_FAILED);
    }
  }
  let http: HttpServer;
  try {
    http = await startHttp(appliance, config.http, logger, agents ? [agents.registry] : []);
  } catch (error) {
    logger.fatal({ err: error }, `cannot serve HTTP on ${config.http.host}:${config.http.port}: ${(error as Error).message}`);
    await agents?.close();
    services.stop();
    await cluster?.stop();
    appliance.stop();
    process.exit(EXIT_START_FAILED);
  }
  let management: ManagementServer | undefined;
  try {
    management = await startManagement(appliance, config, logger, { logs, services, ...(cluster && clusterSettings ? { cluster: { settings: clusterSettings, source: cluster.source } } : {}) });
  } catch (error) {
    logger.fatal({ err: error }, `cannot start the management API: ${(error as Error).message}`);
    await http.close();
    await agents?.close();
    services.stop();
    await cluster?.stop();
    appliance.stop();
    process.exit(EXIT_START_FAILED);
  }
  if (management) logger.info({ url: management.url }, `management API (mutual TLS) on ${management.url}`);
  logger.info({ url: http.url }, `ready: management HTTP on ${http.url}`);
  notifier.ready(() => [readiness(appliance), cluster?.summary()].filter(Boolean).join('; '));

  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    notifier.stopping(`stopping on ${signal}`);
    await management?.close();
    await http.close();
    await agents?.close();
    services.stop();
    await cluster?.stop();
    appliance.stop();
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

/** The STATUS= line systemctl status shows: ports with link, services, learned flows. */
function readiness(appliance: Appliance): string {
  const ports = appliance.portStatus();
  const stats = appliance.stats();
  return `ports up ${ports.filter((p) => p.linkUp).length}/${ports.length}, services ${appliance.services().length}, flows ${stats.flows.learned}`;
}

await main();

/* The control application's entry point: config -> data plane -> management HTTP, until a signal.
 * Exit codes: 0 after a clean stop, 1 when the appliance cannot start, 2 for a bad command line or
 * configuration (nothing was started, nothing to clean up). */
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { Appliance } from './appliance.js';
import { ConfigError, loadConfig, type ApplianceConfig } from './config.js';
import { startAgentListener, type AgentListener } from './agent-listener.js';
import { startHttp, type HttpServer } from './http.js';
import { ServiceManager } from './services.js';

const EXIT_START_FAILED = 1;
const EXIT_USAGE = 2;

function readOptions(argv: string[]): { config: string } {
  const program = new Command()
    .name('edgeplane-control')
    .description('Runs the edgeplane data plane and its management HTTP endpoint')
    .requiredOption('-c, --config <file>', 'configuration file (JSON, see docs/control.md)')
    .exitOverride();
  try {
    return program.parse(argv).opts<{ config: string }>();
  } catch (error) {
    const exitCode = error instanceof CommanderError ? error.exitCode : EXIT_USAGE;
    process.exit(exitCode === 0 ? 0 : EXIT_USAGE);
  }
}

function readConfig(file: string): ApplianceConfig {
  try {
    return loadConfig(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
}

async function main(): Promise<void> {
  const options = readOptions(process.argv);
  const config = readConfig(options.config);
  const logger = pino({ name: 'edgeplane-control', level: config.log.level });

  const appliance = new Appliance(logger);
  try {
    appliance.start(config);
  } catch (error) {
    logger.fatal({ err: error }, `cannot start the appliance: ${(error as Error).message}`);
    process.exit(EXIT_START_FAILED);
  }
  // Without agents a static server is never silent; the silence limit only applies to agent-registered ones.
  const silenceMs = config.agents ? config.agents.reportIntervalMs * config.agents.missedReports : Number.POSITIVE_INFINITY;
  const services = new ServiceManager(appliance, config.services, { silenceMs, logger });
  services.start();
  let agents: AgentListener | undefined;
  if (config.agents) {
    try {
      agents = await startAgentListener(config.agents, services, logger);
    } catch (error) {
      logger.fatal({ err: error }, `cannot listen for server agents on ${config.agents.host}:${config.agents.port}: ${(error as Error).message}`);
      services.stop();
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
    appliance.stop();
    process.exit(EXIT_START_FAILED);
  }
  logger.info({ url: http.url }, `ready: management HTTP on ${http.url}`);

  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await http.close();
    await agents?.close();
    services.stop();
    appliance.stop();
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

await main();

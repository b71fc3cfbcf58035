/* Brings the demo topology (a client and two nginx servers) up or down for scripts/start.sh.
 *   up --config FILE   build the topology, start the servers, write the appliance's config
 *   down               remove it all again (also what a crashed run left) */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { natConfig } from './nat-config.js';
import { startNginx } from './nginx.js';
import { buildTopology, teardownTopology } from './topology.js';

const PREFIX = 'epdemo';

const program = new Command().name('demo-topology');

program
  .command('up')
  .requiredOption('--config <file>', 'where to write the control application configuration')
  .option('--http-port <port>', 'management HTTP port', '9180')
  .action(async (options: { config: string; httpPort: string }) => {
    const topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    for (const server of topology.servers) await startNginx(server.namespace, server.ip);
    const config = natConfig(topology, { filePrefix: PREFIX, httpPort: Number(options.httpPort) });
    writeFileSync(options.config, `${JSON.stringify(config, null, 2)}\n`);
    process.stdout.write(`client namespace: ${topology.client.namespace}\n`);
    process.exit(0);
  });

program.command('down').action(async () => {
  await teardownTopology(PREFIX);
});

await program.parseAsync(process.argv);

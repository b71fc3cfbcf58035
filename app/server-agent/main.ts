/* The server agent: runs next to a server (e.g. nginx) and keeps the appliance informed (SR-R1/R2):
 * registers the server with a virtual service, reports its load every interval, and on SIGTERM or
 * SIGINT de-registers it gracefully (the appliance drains it until the deadline) before exiting.
 * It re-registers after losing the connection. Protocol: docs/services.md. */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError } from 'commander';
import { AgentClient } from './client.js';
import { CpuMeter, establishedConnections } from './load.js';
import { readKeyFile, type Reply } from './protocol.js';

interface Options {
  appliance: { host: string; port: number };
  id: string;
  service: string;
  address: string;
  port: number;
  capacity: number;
  keyFile: string;
  checkAddress?: string;
  intervalMs: number;
  drainMs: number;
  cpu: boolean;
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a whole number`);
  return Number(value);
}

function hostPort(value: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError(`"${value}" is not HOST:PORT`);
  return { host: match[1]!, port: Number(match[2]) };
}

function readOptions(argv: string[]): Options {
  return new Command()
    .name('edgeplane-server-agent')
    .description('Registers a server with an edgeplane virtual service and reports its load')
    .requiredOption('--appliance <host:port>', "the appliance's agent listener", hostPort)
    .option('--id <name>', 'agent name, as in the appliance config (agents.keys[].id)', hostname())
    .requiredOption('--service <name>', 'virtual service to join')
    .requiredOption('--address <ip>', 'server address the appliance forwards to')
    .requiredOption('--port <port>', 'server port (0 = the client\'s destination port)', integer)
    .requiredOption('--capacity <n>', 'connections the server is built for', integer)
    .requiredOption('--key-file <file>', 'HMAC key shared with the appliance')
    .option('--check-address <ip>', 'address the appliance health-checks (management network)')
    .option('--interval-ms <ms>', 'load report interval', integer, 1000)
    .option('--drain-ms <ms>', 'drain deadline asked for on SIGTERM', integer, 30_000)
    .option('--no-cpu', 'report CPU as 0 (servers sharing one machine would all report the same CPU)')
    .parse(argv)
    .opts<Options>();
}

function log(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}

function expectOk(reply: Reply, what: string): void {
  if (!reply.ok) throw new Error(`${what} refused: ${reply.reason}: ${reply.detail}`);
}

async function main(): Promise<void> {
  const options = readOptions(process.argv);
  const key = readKeyFile(options.keyFile);
  const server = { service: options.service, address: options.address, port: options.port };
  const cpu = new CpuMeter();
  let client: AgentClient | undefined;
  let stopping = false;

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      // a connection lost just now (e.g. while reconnecting) must not cost the graceful drain
      if (!client || client.closed) {
        client = await AgentClient.connect(options.appliance.host, options.appliance.port, options.id, key);
      }
      const reply = await client.send({ type: 'deregister', ...server, deadlineMs: options.drainMs });
      expectOk(reply, 'deregister');
      log('deregistered', { signal, deadlineMs: reply.ok ? reply.deadlineMs : undefined });
    } catch (error) {
      log('deregister failed', { error: (error as Error).message });
    }
    client?.close();
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));

  while (!stopping) {
    try {
      client = await AgentClient.connect(options.appliance.host, options.appliance.port, options.id, key);
      const registration = { type: 'register' as const, ...server, capacity: options.capacity, ...(options.checkAddress ? { checkAddress: options.checkAddress } : {}) };
      expectOk(await client.send(registration), 'register');
      log('registered', { ...server, capacity: options.capacity });
      while (!stopping && !client.closed) {
        await sleep(options.intervalMs);
        if (stopping) break;
        const load = { connections: establishedConnections(options.port), cpu: options.cpu ? cpu.read() : 0 };
        expectOk(await client.send({ type: 'report', ...server, ...load }), 'report');
      }
    } catch (error) {
      if (stopping) break;
      log('connection lost, retrying', { error: (error as Error).message });
      client?.close();
      await sleep(1000);
    }
  }
}

await main();

/* The `edgeplane` command line: operates an appliance cluster through any member's management API,
 * and wraps the provisioning and image tools. Human tables by default, --json for scripts.
 * Exit codes: 0 ok, 1 refused or failed (a change some member did not apply included), 2 usage,
 * 3 appliance unreachable, 4 certificate refused. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { runCli as runFlashConfig } from '../../flash-config/cli-program.js';
import { issueOperatorCertificate, OPERATOR_FILES, writeOperatorCredentials } from '../mgmt/operator-certificate.js';
import { isRole, OPERATOR_NAME, ROLES } from '../mgmt/roles.js';
import { ApiClient, ApiError, CertificateError, readCredentials, UnreachableError } from './api-client.js';
import { fileURLToPath } from 'node:url';
import { buildImage, ImageBuildError, imageBuildProblems } from './image-build.js';
import { flashImage } from './image-flash.js';
import { ProgressBar } from './progress.js';
import { formatTable } from './table.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, certificate: 4 } as const;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

interface GlobalOptions {
  url: string;
  credentials?: string;
  cert?: string;
  key?: string;
  ca?: string;
  json: boolean;
  timeout: number;
}

interface ServerRow {
  service: string;
  applied?: { unit: string; ok: boolean; error?: string }[];
  server: string;
  state: string;
  weight: number;
  configuredWeight: number;
  activeFlows: number;
  flows: number;
  bytes: number;
}

const integer = (min: number, max: number) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
  return parsed;
};

const endpointArgument = (value: string) => {
  if (!/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not address:port (e.g. 10.0.2.11:80)`);
  return value;
};

function client(options: GlobalOptions): ApiClient {
  const from = (file: string | undefined, name: string) => file ?? (options.credentials ? path.join(options.credentials, name) : undefined);
  const cert = from(options.cert, OPERATOR_FILES.certificate);
  const key = from(options.key, OPERATOR_FILES.key);
  const ca = from(options.ca, OPERATOR_FILES.ca);
  if (!cert || !key || !ca) {
    throw new CommanderError(EXIT.usage, 'edgeplane.credentials', 'error: give --credentials DIR (or EDGEPLANE_CREDENTIALS), or all of --cert, --key and --ca');
  }
  return new ApiClient(options.url, readCredentials({ cert, key, ca }), options.timeout);
}

interface MemberRow {
  id: string;
  address?: string;
  self: boolean;
  role?: string;
  health?: string;
  state: string;
  ownedUnits?: number;
  lastKeepaliveMsAgo?: number | null;
  answeredInMs?: number | null;
  configRevision?: number | null;
  error?: string;
}

interface ClusterView {
  mode: 'cluster' | 'single-unit';
  self?: string;
  role?: string;
  masterId?: string | null;
  note?: string;
  members: MemberRow[];
  workUnits: { total: number; unassigned: number; owners: (string | null)[] };
}

const memberTable = (cluster: ClusterView) =>
  formatTable(
    ['unit', 'address', 'role', 'health', 'work units', 'keepalive', 'answered', 'revision'],
    cluster.members.map((m) => [
      `${m.id}${m.self ? ' *' : ''}`,
      m.address ?? '-',
      m.role ?? m.state,
      m.health ?? '-',
      m.ownedUnits ?? '-',
      m.lastKeepaliveMsAgo === null || m.lastKeepaliveMsAgo === undefined ? '-' : `${m.lastKeepaliveMsAgo} ms ago`,
      m.answeredInMs === null || m.answeredInMs === undefined ? (m.error ? 'no answer' : '-') : `${m.answeredInMs} ms`,
      m.configRevision ?? '-',
    ]),
  );

/** "0-3, 7, 9-12": the work units an owner holds, as ranges. */
export function unitRanges(units: number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < units.length; ) {
    let j = i;
    while (j + 1 < units.length && units[j + 1] === units[j]! + 1) j += 1;
    ranges.push(i === j ? `${units[i]}` : `${units[i]}-${units[j]}`);
    i = j + 1;
  }
  return ranges.join(', ');
}

function clusterLine(cluster: ClusterView): string {
  if (cluster.mode !== 'cluster') return `cluster: ${cluster.mode}, ${cluster.members.length} member(s)`;
  const healthy = cluster.members.filter((m) => m.health === 'ok').length;
  return `cluster: ${cluster.members.length} member(s), ${healthy} healthy, master ${cluster.masterId ?? 'none'}, this unit ${cluster.role}; work units ${cluster.workUnits.total - cluster.workUnits.unassigned}/${cluster.workUnits.total} assigned`;
}

/** A change some member did not apply is a failure the operator must see. */
function checkApplied(row: ServerRow, io: CliIo): void {
  const failed = (row.applied ?? []).filter((a) => !a.ok);
  if (failed.length === 0) return;
  for (const member of failed) io.err(`warning: ${member.unit} did not apply the change: ${member.error}`);
  throw new CommanderError(EXIT.failed, 'edgeplane.partial', `error: applied on ${(row.applied ?? []).filter((a) => a.ok).map((a) => a.unit).join(', ')} only`);
}

const DEFAULT_BUILD_SCRIPT = fileURLToPath(new URL('../../image/build.sh', import.meta.url));

const serverRows = (rows: ServerRow[]) =>
  formatTable(
    ['service', 'server', 'state', 'weight', 'connections', 'total conns', 'bytes'],
    rows.map((s) => [s.service, s.server, s.state, s.weight, s.activeFlows, s.flows, s.bytes]),
  );

export function buildProgram(io: CliIo): Command {
  const program = new Command()
    .name('edgeplane')
    .description('Operate edgeplane appliances through their management API (mutual TLS), provision units, flash images')
    .addOption(new Option('-u, --url <url>', 'management API of the appliance').env('EDGEPLANE_URL').default('https://127.0.0.1:9443'))
    .addOption(new Option('--credentials <dir>', `directory with ${OPERATOR_FILES.certificate}, ${OPERATOR_FILES.key}, ${OPERATOR_FILES.ca}`).env('EDGEPLANE_CREDENTIALS'))
    .addOption(new Option('--cert <file>', 'operator certificate (overrides --credentials)').env('EDGEPLANE_CERT'))
    .addOption(new Option('--key <file>', 'operator private key').env('EDGEPLANE_KEY'))
    .addOption(new Option('--ca <file>', 'cluster CA certificate').env('EDGEPLANE_CA'))
    .option('--json', 'print JSON for scripts instead of tables', false)
    .addOption(new Option('--timeout <ms>', 'give up on an unanswered request after this long').argParser(integer(100, 600_000)).default(10_000))
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) })
    .showHelpAfterError();
  const globals = () => program.opts<GlobalOptions>();
  const print = (json: unknown, human: () => string) => io.out(globals().json ? JSON.stringify(json, null, 2) : human());

  program
    .command('status')
    .description('unit state, cluster members, services and servers')
    .action(async () => {
      const status = await client(globals()).call<{
        unit: { id: string; state: string; uptimeSeconds: number; ports: { device: string; linkUp: boolean }[] };
        cluster: ClusterView;
        services: { servers: ServerRow[] }[];
        configVersion: { configDigest: string; revision: number };
      }>('GET', '/api/status');
      print(status, () =>
        [
          `unit ${status.unit.id}  ${status.unit.state}  up ${status.unit.uptimeSeconds}s  config ${status.configVersion.configDigest.slice(0, 12)} revision ${status.configVersion.revision}`,
          clusterLine(status.cluster),
          `ports: ${status.unit.ports.map((p) => `${p.device} ${p.linkUp ? 'up' : 'DOWN'}`).join(', ') || '-'}`,
          ...(status.cluster.mode === 'cluster' ? ['', memberTable(status.cluster)] : []),
          '',
          serverRows(status.services.flatMap((s) => s.servers)),
        ].join('\n'),
      );
    });

  program
    .command('members')
    .description('cluster members: role, health, last keepalive, work units owned (* = the unit asked)')
    .action(async () => {
      const cluster = await client(globals()).call<ClusterView>('GET', '/api/cluster');
      const { owners, ...summary } = cluster.workUnits;
      print({ ...cluster, workUnits: summary }, () => [clusterLine(cluster), memberTable(cluster), ...(cluster.note ? [cluster.note] : [])].join('\n'));
    });

  program
    .command('units')
    .description('the work-unit map: which member owns which of the 1024 work units')
    .option('--map', 'print the owner of every work unit, one per line', false)
    .action(async (options: { map: boolean }) => {
      const cluster = await client(globals()).call<ClusterView>('GET', '/api/cluster');
      const owners = cluster.workUnits.owners;
      const byOwner = new Map<string, number[]>();
      owners.forEach((owner, unit) => byOwner.set(owner ?? '(unassigned)', [...(byOwner.get(owner ?? '(unassigned)') ?? []), unit]));
      const rows = [...byOwner].map(([owner, units]) => ({ owner, count: units.length, ranges: unitRanges(units) }));
      if (options.map) return print(owners, () => owners.map((owner, unit) => `${unit}\t${owner ?? '-'}`).join('\n'));
      print({ total: cluster.workUnits.total, unassigned: cluster.workUnits.unassigned, owners: rows }, () =>
        cluster.mode !== 'cluster'
          ? `${cluster.members[0]?.id ?? 'this unit'} is not clustered: it owns every work unit`
          : `${formatTable(['owner', 'work units', 'ranges'], rows.map((r) => [r.owner, r.count, r.ranges.length > 70 ? `${r.ranges.slice(0, 67)}...` : r.ranges]))}\n${cluster.workUnits.total - cluster.workUnits.unassigned} of ${cluster.workUnits.total} assigned`,
      );
    });

  program
    .command('services')
    .description('virtual services')
    .action(async () => {
      const services = await client(globals()).call<{ name: string; vip: string; port: number; protocol: string; activeFlows: number; servers: ServerRow[] }[]>('GET', '/api/services');
      print(services, () =>
        formatTable(
          ['service', 'listen', 'servers', 'active', 'connections'],
          services.map((s) => [s.name, `${s.vip}:${s.port}/${s.protocol}`, s.servers.length, s.servers.filter((x) => x.state === 'active').length, s.activeFlows]),
        ),
      );
    });

  const servers = program.command('servers').description('servers of the services: list, add, remove (changes apply on every member)');
  servers
    .command('list', { isDefault: true })
    .description('servers of all services (or one), cluster-wide')
    .option('-s, --service <name>', 'only this service')
    .action(async (options: { service?: string }) => {
      const query = options.service ? `?service=${encodeURIComponent(options.service)}` : '';
      const rows = await client(globals()).call<ServerRow[]>('GET', `/api/servers${query}`);
      print(rows, () => serverRows(rows));
    });
  servers
    .command('add')
    .description('add a server to a service on every member')
    .argument('<service>', 'service name')
    .argument('<server>', 'server address:port', endpointArgument)
    .addOption(new Option('-w, --weight <weight>', 'its weight 0..65535').argParser(integer(0, 65535)).default(1))
    .action(async (service: string, server: string, options: { weight: number }) => {
      const row = await client(globals()).call<ServerRow>('POST', `/api/services/${encodeURIComponent(service)}/servers`, { server, weight: options.weight });
      print(row, () => `${service} ${server}: added with weight ${row.weight} on ${(row.applied ?? []).filter((a) => a.ok).map((a) => a.unit).join(', ')}`);
      checkApplied(row, io);
    });
  servers
    .command('remove')
    .description('remove a server from a service on every member (its connections keep it until they end)')
    .argument('<service>', 'service name')
    .argument('<server>', 'server address:port', endpointArgument)
    .action(async (service: string, server: string) => {
      const row = await client(globals()).call<ServerRow>('DELETE', `/api/services/${encodeURIComponent(service)}/servers/${encodeURIComponent(server)}`);
      print(row, () => `${service} ${server}: removed on ${(row.applied ?? []).filter((a) => a.ok).map((a) => a.unit).join(', ')}`);
      checkApplied(row, io);
    });

  const flows = program.command('flows').description('client connections: list, count, kill');
  const filterOptions = (command: Command) =>
    command
      .option('-s, --service <name>', 'only this service')
      .option('--server <address:port>', 'only to this server', endpointArgument)
      .option('--client <address[:port]>', 'only from this client')
      .addOption(new Option('--state <state>', 'only in this TCP state').choices(['syn', 'established', 'fin', 'rst', 'none']));
  const flowQuery = (options: Record<string, string | number | undefined>) =>
    new URLSearchParams(Object.entries(options).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, v]) => [k, String(v)])).toString();
  filterOptions(flows.command('list', { isDefault: true }).description('list connections'))
    .addOption(new Option('-n, --limit <count>', 'most rows shown').argParser(integer(0, 10000)).default(100))
    .action(async (options: Record<string, string | number | undefined>) => {
      const result = await client(globals()).call<{ count: number; flows: { service: string; client: string; server: string; state: string; packets: number; bytes: number; killed: boolean }[] }>(
        'GET',
        `/api/flows?${flowQuery(options)}`,
      );
      print(result, () =>
        `${formatTable(
          ['service', 'client', 'server', 'state', 'packets', 'bytes', 'killed'],
          result.flows.map((f) => [f.service, f.client, f.server, f.state, f.packets, f.bytes, f.killed ? 'yes' : '']),
        )}\n${result.flows.length} of ${result.count} connection(s)`,
      );
    });
  filterOptions(flows.command('count').description('count connections')).action(async (options: Record<string, string | undefined>) => {
    const result = await client(globals()).call<{ count: number }>('GET', `/api/flows?${flowQuery({ ...options, limit: 0 })}`);
    print({ count: result.count }, () => String(result.count));
  });
  flows
    .command('kill')
    .description('drop one connection in both directions')
    .argument('<service>', 'service name')
    .argument('<client>', 'client address:port', endpointArgument)
    .action(async (service: string, clientEndpoint: string) => {
      const killed = await client(globals()).call<{ client: string; server: string }>('DELETE', '/api/flows', { service, client: clientEndpoint });
      print(killed, () => `killed ${killed.client} -> ${killed.server}`);
    });

  const weightChange = (name: string, description: string) =>
    program.command(name).description(description).argument('<service>', 'service name').argument('<server>', 'server address:port', endpointArgument);
  const serverPath = (service: string, server: string, action: string) =>
    `/api/services/${encodeURIComponent(service)}/servers/${encodeURIComponent(server)}/${action}`;

  weightChange('drain', 'stop sending new connections to a server; established ones stay')
    .option('-w, --wait', 'wait until its last connection has ended (progress on stderr)', false)
    .addOption(new Option('--wait-timeout <seconds>', 'give up waiting after this long').argParser(integer(1, 86400)).default(300))
    .action(async (service: string, server: string, options: { wait: boolean; waitTimeout: number }) => {
      const api = client(globals());
      const drained = await api.call<ServerRow>('POST', serverPath(service, server, 'drain'));
      if (options.wait) await waitForDrain(api, drained, options.waitTimeout, io);
      const final = options.wait ? await serverRow(api, service, server) : drained;
      print(final, () => `${service} ${server}: ${final.state}, weight ${final.weight}, ${final.activeFlows} connection(s) left`);
      checkApplied(drained, io);
    });
  weightChange('undrain', 'give a drained server its configured weight back').action(async (service: string, server: string) => {
    const row = await client(globals()).call<ServerRow>('POST', serverPath(service, server, 'undrain'));
    print(row, () => `${service} ${server}: ${row.state}, weight ${row.weight}`);
    checkApplied(row, io);
  });
  weightChange('weight', "set a server's weight (0 drains)")
    .argument('<weight>', 'new weight 0..65535', integer(0, 65535))
    .action(async (service: string, server: string, weight: number) => {
      const row = await client(globals()).call<ServerRow>('PUT', serverPath(service, server, 'weight'), { weight });
      print(row, () => `${service} ${server}: ${row.state}, weight ${row.weight}`);
      checkApplied(row, io);
    });

  program
    .command('counters')
    .description('data plane counters (JSON)')
    .action(async () => io.out(JSON.stringify(await client(globals()).call('GET', '/api/counters'), null, 2)));

  program
    .command('events')
    .description('events the unit asked saw: drains and other changes (via: the member an operator asked), members joining and leaving, new masters')
    .addOption(new Option('--since <sequence>', 'only events after this sequence number').argParser(integer(0, Number.MAX_SAFE_INTEGER)).default(0))
    .action(async (options: { since: number }) => {
      const events = await client(globals()).call<{ sequence: number; time: string; kind: string; by: string; detail: Record<string, string | number> }[]>('GET', `/api/events?since=${options.since}`);
      print(events, () =>
        formatTable(
          ['#', 'time', 'event', 'by', 'detail'],
          events.map((e) => [e.sequence, e.time, e.kind, e.by, Object.entries(e.detail).map(([k, v]) => `${k}=${v}`).join(' ')]),
        ),
      );
    });

  program
    .command('logs')
    .description("the appliance's last log lines")
    .addOption(new Option('-n, --lines <count>', 'how many').argParser(integer(1, 2000)).default(50))
    .option('--unit <id>', "another cluster member's log, through the unit asked")
    .action(async (options: { lines: number; unit?: string }) => {
      const unit = options.unit ? `&unit=${encodeURIComponent(options.unit)}` : '';
      const lines = await client(globals()).call<{ time: number; level: number; msg: string }[]>('GET', `/api/logs?lines=${options.lines}${unit}`);
      print(lines, () => lines.map((l) => `${new Date(l.time).toISOString()} ${l.level} ${l.msg}`).join('\n'));
    });

  program
    .command('operator-cert')
    .description('issue an operator certificate from the offline cluster authority')
    .requiredOption('--authority <dir>', 'authority directory (flash-config authority init)')
    .requiredOption('--name <name>', 'operator name (A-Za-z0-9._-)')
    .addOption(new Option('--role <role>', 'what the certificate may do').choices([...ROLES]).makeOptionMandatory())
    .requiredOption('--out <dir>', `writes ${OPERATOR_FILES.certificate}, ${OPERATOR_FILES.key} (0600), ${OPERATOR_FILES.ca}`)
    .addOption(new Option('--valid-days <days>', 'validity').argParser(integer(1, 3650)).default(365))
    .action(async (options: { authority: string; name: string; role: string; out: string; validDays: number }) => {
      if (!OPERATOR_NAME.test(options.name)) throw new InvalidArgumentError(`--name "${options.name}" must be 1-64 of A-Za-z0-9._-`);
      if (!isRole(options.role)) throw new InvalidArgumentError(`--role must be one of ${ROLES.join(', ')}`);
      const credentials = await issueOperatorCertificate(options.authority, { name: options.name, role: options.role }, { validDays: options.validDays });
      await writeOperatorCredentials(options.out, credentials);
      print({ serial: credentials.serial, out: options.out }, () => `issued ${options.role} certificate for ${options.name} (serial ${credentials.serial}) in ${options.out}`);
    });

  program
    .command('provision')
    .description('the flash-config tool: authority, unit, policy, verify (edgeplane provision --help)')
    .helpOption(false)
    .allowUnknownOption()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const code = await runFlashConfig(args, { out: io.out, err: io.err });
      if (code !== 0) throw new CommanderError(code === 2 ? EXIT.usage : EXIT.failed, 'edgeplane.provision', '');
    });

  const image = program.command('image').description('appliance images');
  image
    .command('build')
    .description('build the firmware image with image/build.sh (root, mmdebstrap; takes long): progress here, full output in a log')
    .option('--out <dir>', 'output directory (absolute)', '/var/tmp/edgeplane-image/out')
    .option('--without-app', 'boot-chain-only image without the control application', false)
    .option('--log <file>', 'where the build output goes (default: <out>.build.log)')
    .addOption(new Option('--script <file>', 'the build script').env('EDGEPLANE_IMAGE_BUILD_SCRIPT').default(DEFAULT_BUILD_SCRIPT).hideHelp())
    .action(async (options: { out: string; withoutApp: boolean; log?: string; script: string }) => {
      const problems = imageBuildProblems(options, process.getuid?.() === 0);
      if (problems.length > 0) throw new CommanderError(EXIT.usage, 'edgeplane.imageBuild', problems.map((p) => `error: ${p}`).join('\n'));
      const log = options.log ?? `${options.out.replace(/\/+$/, '')}.build.log`;
      const bar = new ProgressBar('image');
      try {
        const built = await buildImage({ script: options.script, out: options.out, withoutApp: options.withoutApp, log }, (step) => bar.update(step.done, step.total, `${step.done + 1}/${step.total} ${step.title}`));
        bar.finish(`image built in ${built.out}`);
        print(built, () => `image in ${built.out} (build log ${built.log})`);
      } catch (error) {
        if (error instanceof ImageBuildError) throw new CommanderError(EXIT.failed, 'edgeplane.imageBuild', `error: ${error.message}`);
        throw error;
      }
    });
  image
    .command('flash')
    .description('write an image to a disk (or file) and verify it read back')
    .requiredOption('--image <file>', 'disk image (.img)')
    .requiredOption('--device <path>', 'target block device or file')
    .action(async (options: { image: string; device: string }) => {
      const bar = new ProgressBar('flash');
      const result = await flashImage(options.image, options.device, (done, total, phase) => bar.update(done, total, `${phase} ${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`));
      bar.finish(`flashed ${result.bytes} bytes, sha256 ${result.sha256} verified`);
      print(result, () => `${options.device}: ${result.bytes} bytes written and verified`);
    });

  return program;
}

async function serverRow(api: ApiClient, service: string, server: string): Promise<ServerRow> {
  const rows = await api.call<ServerRow[]>('GET', `/api/servers?service=${encodeURIComponent(service)}`);
  const row = rows.find((r) => r.server === server);
  if (!row) throw new ApiError(404, `service "${service}" has no server ${server}`);
  return row;
}

async function waitForDrain(api: ApiClient, start: ServerRow, timeoutSeconds: number, io: CliIo): Promise<void> {
  const bar = new ProgressBar(`drain ${start.server}`);
  const total = Math.max(start.activeFlows, 1);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const row = await serverRow(api, start.service, start.server);
    bar.update(total - Math.min(row.activeFlows, total), total, `${row.activeFlows} connection(s) left`);
    if (row.activeFlows === 0) return bar.finish(`drain ${start.server}: no connections left`);
    if (Date.now() > deadline) {
      io.err(`still ${row.activeFlows} connection(s) after ${timeoutSeconds}s`);
      throw new CommanderError(EXIT.failed, 'edgeplane.drainTimeout', '');
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it in-process too. */
export async function runEdgeplane(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return EXIT.ok;
      if (error.code.startsWith('edgeplane.')) {
        if (error.message) io.err(error.message);
        return error.exitCode;
      }
      return EXIT.usage;
    }
    if (error instanceof InvalidArgumentError) {
      io.err(`error: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof UnreachableError) {
      io.err(`error: ${error.message}`);
      return EXIT.unreachable;
    }
    if (error instanceof CertificateError) {
      io.err(`error: ${error.message}`);
      return EXIT.certificate;
    }
    if (error instanceof ApiError) {
      io.err(`error: ${error.message}`);
      return EXIT.failed;
    }
    io.err(`error: ${(error as Error).message}`);
    return EXIT.failed;
  }
}

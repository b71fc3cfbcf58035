/* A cluster of appliance units in network namespaces, each unit the real control application
 * (app/control/main.ts) started from a config file with a `cluster` section and its own flash
 * config made by the flash-config tool. Used by the cluster operations test and by `npm start`.
 *
 * The data side is test/cluster-dp's shared LAN (units side by side behind hub bridges, a client and
 * two nginx servers); the management network is its control bridge brm, where every unit's cluster
 * address 10.77.0.1<k> also serves its management API on :8443. Operators reach it from their own
 * namespace on brm (<prefix>-op, 10.77.0.2) and, when asked, from the root namespace (a veth with
 * hostAddress). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli as flashConfig } from '../../flash-config/cli-program.js';
import { issueOperatorCertificate, writeOperatorCredentials } from '../../app/mgmt/operator-certificate.js';
import { CLIENT_IP, SERVER_GATEWAY, SERVER_IPS, SHARED_GATEWAY_MAC, SHARED_VIP_MAC, VIP, createSharedLan, type SharedLan } from '../cluster-dp/support/shared-lan.js';
import { startNginx, type NginxServer } from './nginx.js';
import { inNamespace, run } from './run.js';

export { CLIENT_IP, SERVER_GATEWAY, SERVER_IPS, VIP };

export const MANAGEMENT_PORT = 8443;
/** The VIP port of the least-load service (same servers, port 80). */
export const LEAST_LOAD_PORT = 8080;
/** A full-NAT service: the members share its source address (the servers' gateway), each with its own block of source ports. */
export const FULLNAT_PORT = 8081;
const OPERATOR_ADDRESS = '10.77.0.2';
const ROOT = path.resolve(import.meta.dirname, '../..');

export interface ClusterLabOptions {
  /** Namespace, interface and DPDK file prefix: 4-6 letters, unique per test file. */
  prefix: string;
  /** Scratch directory for flash configs, credentials, configs and logs (emptied first). */
  dir: string;
  units: number;
  /** An address on the management network for the root namespace (npm start), e.g. 10.77.0.1. */
  hostAddress?: string;
  /** How units run: from the sources (tests) or the build (npm start). */
  entry: 'sources' | 'build';
  /** Cluster timing in the signed policy. */
  timing?: { keepaliveIntervalMs: number; memberDeadAfterMs: number; masterSilenceMs: number; rebalanceIntervalMs: number };
}

export interface UnitProcess {
  slot: number;
  id: string;
  address: string;
  url: string;
  log: string;
  child: ChildProcess;
  alive(): boolean;
  /** Resolves when a log line matches (checked every 100 ms), rejects when the unit exits first. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<number | null>;
}

export interface ClusterLab {
  lan: SharedLan;
  dir: string;
  /** Operators' namespace on the management network. */
  operatorNamespace: string;
  credentials: { admin: string; viewer: string; foreign: string };
  unitId(slot: number): string;
  managementUrl(slot: number): string;
  configFile(slot: number): string;
  nginx: NginxServer[];
  /** `env`: extra environment for the unit (e.g. NOTIFY_SOCKET). */
  startUnit(slot: number, env?: Record<string, string>): UnitProcess;
  units: UnitProcess[];
  destroy(): Promise<void>;
}

// Generous on a loaded 2-core machine (three polling data planes, wrk, Chromium): a member that
// misses keepalives for 3 s is gone.
const DEFAULT_TIMING = { keepaliveIntervalMs: 100, memberDeadAfterMs: 3000, masterSilenceMs: 300, rebalanceIntervalMs: 5000 };

async function provision(tool: string[]): Promise<void> {
  const output: string[] = [];
  const code = await flashConfig(tool, { out: (line) => output.push(line), err: (line) => output.push(line) });
  if (code !== 0) throw new Error(`flash-config ${tool.join(' ')} failed (${code}): ${output.join('\n')}`);
}

function unitConfig(prefix: string, slot: number, flashConfigDir: string): object {
  return {
    eal: { lcores: [0, 1], memoryMb: 256, noHuge: true, filePrefix: `${prefix}-u${slot}`, vdevs: ['net_af_packet0,iface=dc', 'net_af_packet1,iface=ds'] },
    dataplane: { affinityCapacity: 4096, flowCapacityPerWorker: 16_384, missPolicy: 'drop' },
    ports: [
      { device: 'net_af_packet0', address: '10.0.1.1', prefixLength: 24 },
      { device: 'net_af_packet1', address: '10.0.2.1', prefixLength: 24 },
    ],
    services: [
      { name: 'web', vip: VIP, port: 80, protocol: 'tcp', mode: 'nat', algorithm: 'maglev', servers: SERVER_IPS.map((address) => ({ address, port: 80 })) },
      // The service manager recomputes least-load weights as response times move: an operator's
      // drain must outlast that.
      { name: 'web-ll', vip: VIP, port: LEAST_LOAD_PORT, protocol: 'tcp', mode: 'nat', algorithm: 'least-load', servers: SERVER_IPS.map((address) => ({ address, port: 80 })) },
      {
        name: 'web-fullnat', vip: VIP, port: FULLNAT_PORT, protocol: 'tcp', mode: 'fullnat', algorithm: 'maglev',
        snat: { ip: SERVER_GATEWAY, portMin: 1024, portMax: 65535 }, servers: SERVER_IPS.map((address) => ({ address, port: 80 })),
      },
    ],
    http: { host: '127.0.0.1', port: 9180 },
    cluster: {
      flashConfigDir,
      managementPort: MANAGEMENT_PORT,
      announce: [
        { device: 'net_af_packet0', mac: SHARED_VIP_MAC, addresses: [VIP] },
        { device: 'net_af_packet1', mac: SHARED_GATEWAY_MAC, addresses: [SERVER_GATEWAY] },
      ],
    },
    log: { level: 'info' },
  };
}

/** The root namespace's end of the management veth: the kernel removes it with the switch
 * namespace, asynchronously; whatever is left after 5 s goes by hand. */
async function removeHostLink(prefix: string): Promise<void> {
  const link = `/sys/class/net/${prefix}-host`;
  const deadline = Date.now() + 5000;
  while (existsSync(link) && Date.now() < deadline) await sleep(50);
  if (existsSync(link)) await run('ip', ['link', 'del', `${prefix}-host`]).catch(() => undefined);
}

/** A veth from the management bridge brm (in <prefix>-sw) to a namespace, or to the root namespace. */
async function plugManagement(prefix: string, name: string, namespace: string | undefined, address: string): Promise<void> {
  const sw = `${prefix}-sw`;
  const outer = `${prefix}-${name}`;
  if (namespace) {
    await inNamespace(sw, 'ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', namespace]);
    await inNamespace(namespace, 'ip', ['addr', 'add', `${address}/24`, 'dev', 'mgmt0']);
    await inNamespace(namespace, 'ip', ['link', 'set', 'mgmt0', 'up']);
  } else {
    await removeHostLink(prefix);
    await inNamespace(sw, 'ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', outer, 'netns', '1']);
    await run('ip', ['addr', 'add', `${address}/24`, 'dev', outer]);
    await run('ip', ['link', 'set', outer, 'up']);
  }
  await inNamespace(sw, 'ip', ['link', 'set', name, 'master', 'brm', 'up']);
}

export async function createClusterLab(options: ClusterLabOptions): Promise<ClusterLab> {
  const { prefix, dir } = options;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const lan = await createSharedLan(prefix);
  const slots = Array.from({ length: options.units }, (_, i) => i + 1);
  for (const slot of slots) await lan.addUnit(slot);
  const operatorNamespace = `${prefix}-op`;
  await run('ip', ['netns', 'add', operatorNamespace]);
  await inNamespace(operatorNamespace, 'ip', ['link', 'set', 'lo', 'up']);
  await plugManagement(prefix, 'op', operatorNamespace, OPERATOR_ADDRESS);
  if (options.hostAddress) await plugManagement(prefix, 'host', undefined, options.hostAddress);

  // The cluster authority, its policy and one flash config per unit, as an operator makes them.
  const authority = path.join(dir, 'authority');
  await provision(['authority', 'init', '--out', authority, '--cluster', 'lab']);
  const policy = path.join(dir, 'policy.json');
  writeFileSync(
    policy,
    `${JSON.stringify(
      {
        configVersion: 1,
        cluster: options.timing ?? DEFAULT_TIMING,
        services: [
          { name: 'web', vip: VIP, protocol: 'tcp', port: 80, algorithm: 'maglev', mode: 'nat', servers: SERVER_IPS.map((address) => ({ address, port: 80, weight: 1 })) },
          { name: 'web-ll', vip: VIP, protocol: 'tcp', port: LEAST_LOAD_PORT, algorithm: 'least-load', mode: 'nat', servers: SERVER_IPS.map((address) => ({ address, port: 80, weight: 1 })) },
          { name: 'web-fullnat', vip: VIP, protocol: 'tcp', port: FULLNAT_PORT, algorithm: 'maglev', mode: 'fullnat', servers: SERVER_IPS.map((address) => ({ address, port: 80, weight: 1 })) },
        ],
      },
      null,
      2,
    )}\n`,
  );
  const unitId = (slot: number) => `unit-${slot}`;
  const configFile = (slot: number) => path.join(dir, `unit-${slot}.json`);
  for (const slot of slots) {
    const flash = path.join(dir, 'flash', unitId(slot));
    await provision([
      'unit', 'create', '--authority', authority, '--unit-id', unitId(slot), '--mgmt-addr', lan.unitAddress(slot),
      '--data-addr', '10.0.1.1', '--data-addr', '10.0.2.1', '--cluster-addr', VIP, '--policy', policy, '--out', flash,
    ]);
    writeFileSync(configFile(slot), `${JSON.stringify(unitConfig(prefix, slot, flash), null, 2)}\n`);
  }
  const foreignAuthority = path.join(dir, 'foreign-authority');
  await provision(['authority', 'init', '--out', foreignAuthority, '--cluster', 'elsewhere']);
  const credentials = { admin: path.join(dir, 'operator'), viewer: path.join(dir, 'viewer'), foreign: path.join(dir, 'foreign-operator') };
  await writeOperatorCredentials(credentials.admin, await issueOperatorCertificate(authority, { name: 'alice', role: 'operator' }));
  await writeOperatorCredentials(credentials.viewer, await issueOperatorCertificate(authority, { name: 'victor', role: 'read-only' }));
  await writeOperatorCredentials(credentials.foreign, await issueOperatorCertificate(foreignAuthority, { name: 'mallory', role: 'operator' }));

  const nginx = await Promise.all(lan.servers.map((namespace, i) => startNginx(namespace, SERVER_IPS[i]!)));
  const units: UnitProcess[] = [];

  const startUnit = (slot: number, env: Record<string, string> = {}): UnitProcess => {
    const log = path.join(dir, `unit-${slot}.log`);
    const program = options.entry === 'build' ? [path.join(ROOT, 'dist/app/control/main.js')] : ['--import', 'tsx', path.join(ROOT, 'app/control/main.ts')];
    const child = spawn('ip', ['netns', 'exec', lan.unitNamespace(slot), process.execPath, ...program, '--config', configFile(slot)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a terminal's Ctrl-C goes to the demo, which stops the units in order.
      detached: true,
    });
    const out = createWriteStream(log, { flags: 'a' });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const alive = () => child.exitCode === null && child.signalCode === null;
    const unit: UnitProcess = {
      slot,
      id: unitId(slot),
      address: lan.unitAddress(slot),
      url: `https://${lan.unitAddress(slot)}:${MANAGEMENT_PORT}`,
      log,
      child,
      alive,
      async waitForLog(pattern, timeoutMs = 60_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const line = (existsSync(log) ? readFileSync(log, 'utf8') : '').split('\n').find((text) => pattern.test(text));
          if (line !== undefined) return line;
          if (!alive()) throw new Error(`${unit.id} exited (${child.exitCode ?? child.signalCode}) before logging ${pattern}; see ${log}`);
          if (Date.now() > deadline) throw new Error(`${unit.id} did not log ${pattern} within ${timeoutMs} ms; see ${log}`);
          await sleep(100);
        }
      },
      async stop() {
        if (alive()) child.kill('SIGTERM');
        const code = await Promise.race([exited, sleep(15_000).then(() => 'late' as const)]);
        if (code !== 'late') return code;
        child.kill('SIGKILL');
        return exited;
      },
    };
    units.push(unit);
    return unit;
  };

  return {
    lan,
    dir,
    operatorNamespace,
    credentials,
    unitId,
    managementUrl: (slot) => `https://${lan.unitAddress(slot)}:${MANAGEMENT_PORT}`,
    configFile,
    nginx,
    startUnit,
    units,
    async destroy() {
      await Promise.all(units.map((unit) => unit.stop()));
      for (const server of nginx) await server.stop();
      await lan.destroy();
      await removeHostLink(prefix);
    },
  };
}

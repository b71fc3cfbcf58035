/* Operating a running cluster: three units in network namespaces, each the real control
 * application (app/control/main.ts --config with a cluster section and its own flash config), in
 * front of two nginx servers. The `edgeplane` CLI runs as an operator's process on the management
 * network and talks to different members; the dashboard is loaded from a member in a real headless
 * Chromium while wrk loads the VIP. Screenshots go to out/screenshots/. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterLab, FULLNAT_PORT, LEAST_LOAD_PORT, SERVER_IPS, VIP, type ClusterLab } from '../netns/cluster-lab.js';
import { BIG_FILE_URL_PATH, serverBody } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';

const PREFIX = 'epco';
const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRATCH = path.join('/tmp', `${PREFIX}-lab`);
const SCREENSHOTS = path.join(ROOT, 'out/screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const [SERVER_1, SERVER_2] = SERVER_IPS.map((ip) => `${ip}:80`) as [string, string];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface MemberRow {
  id: string;
  role: string;
  health: string;
  ownedUnits: number;
  self: boolean;
}

interface ClusterView {
  mode: string;
  masterId: string;
  members: MemberRow[];
  workUnits: { total: number; unassigned: number; owners?: (string | null)[] };
}

interface ServerRow {
  service: string;
  server: string;
  state: string;
  weight: number;
  activeFlows: number;
  flows: number;
  bytes: number;
  units: { unit: string; weight: number; activeFlows: number; flows: number }[];
  applied?: { unit: string; ok: boolean }[];
}

let lab: ClusterLab;
let browser: Browser | undefined;
const children: ChildProcess[] = [];
/** What unit-1 told systemd's notify socket (a python3 listener stands in: Node cannot bind one). */
const notified: string[] = [];

function notifySocket(file: string): Promise<void> {
  const listener = spawn('python3', ['-c', `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    message = s.recv(4096).decode()
    if message != "BARRIER=1":
        print(json.dumps(message), flush=True)
`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(listener);
  return new Promise((resolve) => {
    createInterface({ input: listener.stdout! }).on('line', (line) => (line === 'bound' ? resolve() : notified.push(JSON.parse(line) as string)));
  });
}

/** The CLI as an operator runs it, from the operators' namespace on the management network. */
function cli(args: string[], options: { member?: number; as?: string; credentials?: string[] } = {}): Promise<CliResult> {
  const credentials = options.credentials ?? ['--credentials', options.as ?? lab.credentials.admin];
  const target = ['--url', lab.managementUrl(options.member ?? 1)];
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', lab.operatorNamespace, process.execPath, '--import', 'tsx', path.join(ROOT, 'app/cli/edgeplane.ts'), ...target, ...credentials, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

async function cliJson<T>(args: string[], options: { member?: number; as?: string } = {}): Promise<T> {
  const result = await cli(['--json', ...args], options);
  expect(result.code, `edgeplane ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** `count` requests through the VIP, one connection each; the bodies name the server that answered. */
async function requests(count: number, port = 80): Promise<string[]> {
  const urls = Array.from({ length: count }, () => `http://${VIP}:${port}/`);
  const output = await inNamespace(lab.lan.client, 'curl', ['-sS', '--max-time', '20', '-H', 'Connection: close', ...urls], { timeoutMs: 90_000 });
  return output.match(/server [0-9.]+\n/g) ?? [];
}

const server = (rows: ServerRow[], id: string, service = 'web') => rows.find((row) => row.service === service && row.server === id);

beforeAll(async () => {
  // The root namespace gets an address on the management network too: Playwright's client
  // certificate support connects from this process on Chromium's behalf.
  lab = await createClusterLab({ prefix: PREFIX, dir: SCRATCH, units: 3, entry: 'sources', hostAddress: '10.77.0.3' });
  // Unit 1 first, so it is the master the others join; it reports to a notify socket as under systemd.
  const socket = path.join(SCRATCH, 'notify.sock');
  await notifySocket(socket);
  const first = lab.startUnit(1, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '1000000' });
  await first.waitForLog(/management API \(mutual TLS\) on/, 120_000);
  await until('unit-1 master', async () => ((await cli(['--json', 'members'], { member: 1 })).stdout.includes('"role": "master"') ? true : undefined), 60_000);
  for (const slot of [2, 3]) lab.startUnit(slot);
  for (const unit of lab.units.slice(1)) await unit.waitForLog(/management API \(mutual TLS\) on/, 120_000);
  await until(
    'three healthy members',
    async () => {
      const result = await cli(['--json', 'members'], { member: 2 });
      if (result.code !== 0) return undefined;
      const view = JSON.parse(result.stdout) as ClusterView;
      return view.members.length === 3 && view.members.every((m) => m.health === 'ok') ? view : undefined;
    },
    90_000,
  );
  mkdirSync(SCREENSHOTS, { recursive: true });
}, 360_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await browser?.close();
  await lab?.destroy();
}, 120_000);

describe('operating a three-unit cluster of control applications', () => {
  it('shows every member, its health and the work-unit map from any member', async () => {
    // Traffic makes the members ask the master for the work units of the connections.
    const bodies = await requests(30);
    expect(bodies).toHaveLength(30);
    for (const member of [1, 2, 3]) {
      const members = await cliJson<ClusterView>(['members'], { member });
      expect(members.mode).toBe('cluster');
      expect(members.members.map((m) => m.id).sort()).toEqual(['unit-1', 'unit-2', 'unit-3']);
      expect(members.members.every((m) => m.health === 'ok')).toBe(true);
      expect(members.members.filter((m) => m.role === 'master').map((m) => m.id)).toEqual(['unit-1']);
      expect(members.members.find((m) => m.self)?.id).toBe(`unit-${member}`);
    }
    // Every member's count of its work units agrees with the map (asked twice: units may still be
    // handed out between the two answers, so until they agree).
    const units = await until('the members list and the work-unit map agreeing', async () => {
      const map = await cliJson<{ total: number; unassigned: number; owners: { owner: string; count: number }[] }>(['units'], { member: 3 });
      const members = await cliJson<ClusterView>(['members'], { member: 3 });
      return members.members.every((m) => m.ownedUnits === (map.owners.find((o) => o.owner === m.id)?.count ?? 0)) ? map : undefined;
    });
    expect(units.total).toBe(1024);
    expect(units.owners.reduce((sum, o) => sum + o.count, 0)).toBe(1024);
    expect(1024 - units.unassigned).toBeGreaterThan(0);
    for (const row of units.owners) expect(['unit-1', 'unit-2', 'unit-3', '(unassigned)']).toContain(row.owner);

    const status = await cli(['status'], { member: 2 });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/cluster: 3 member\(s\), 3 healthy, master unit-1, this unit member/);
    for (const id of ['unit-1', 'unit-2', 'unit-3']) expect(status.stdout).toMatch(new RegExp(`${id}.*10\\.77\\.0\\.1\\d\\s+(master|member)\\s+ok`));
    console.log(`edgeplane status on unit-2:\n${status.stdout}`);
    const table = await cli(['units'], { member: 1 });
    console.log(`edgeplane units on unit-1:\n${table.stdout}`);
    // Cluster-wide counters add up every member's: the 30 connections are there once each.
    const rows = await cliJson<ServerRow[]>(['servers'], { member: 3 });
    expect(rows.reduce((sum, row) => sum + row.flows, 0)).toBeGreaterThanOrEqual(30);
    expect(rows.every((row) => row.units.length === 3)).toBe(true);
  }, 120_000);

  it('drains a server through one member; another member shows it draining, then drained; new connections avoid it', async () => {
    const download = spawn('ip', ['netns', 'exec', lab.lan.client, 'curl', '-s', '-o', '/dev/null', '--limit-rate', '200k', `http://${VIP}${BIG_FILE_URL_PATH}`], { stdio: 'ignore' });
    children.push(download);
    const flow = await until('the slow download listed cluster-wide', async () => {
      const listed = await cliJson<{ flows: { client: string; server: string; unit: string }[] }>(['flows', '--service', 'web', '--state', 'established'], { member: 3 });
      return listed.flows[0];
    });
    const drained = flow.server;
    const other = drained === SERVER_1 ? SERVER_2 : SERVER_1;
    console.log(`slow download ${flow.client} -> ${drained}, owned by ${flow.unit}`);

    const drain = await cliJson<ServerRow>(['drain', 'web', drained], { member: 1 });
    expect(drain).toMatchObject({ server: drained, weight: 0, state: 'draining', activeFlows: 1 });
    expect(drain.applied?.map((a) => [a.unit, a.ok]).sort()).toEqual([['unit-1', true], ['unit-2', true], ['unit-3', true]]);

    const draining = await cli(['status'], { member: 2 });
    expect(draining.code, draining.stderr).toBe(0);
    expect(draining.stdout).toMatch(new RegExp(`web\\s+${drained.replace(/\./g, '\\.')}\\s+draining\\s+0\\s+1`));
    console.log(`edgeplane status on unit-2 while draining:\n${draining.stdout}`);
    const onUnit2 = server(await cliJson<ServerRow[]>(['servers'], { member: 2 }), drained)!;
    expect(onUnit2.units.map((u) => u.weight)).toEqual([0, 0, 0]);

    const before = onUnit2.flows;
    const bodies = await requests(20);
    expect(bodies).toEqual(Array.from({ length: 20 }, () => serverBody(other.split(':')[0]!)));
    expect(server(await cliJson<ServerRow[]>(['servers'], { member: 3 }), drained)!.flows).toBe(before);

    download.kill('SIGTERM');
    const after = await until('the drained server without connections', async () => {
      const result = await cli(['status'], { member: 2 });
      return new RegExp(`web\\s+${drained.replace(/\./g, '\\.')}\\s+drained\\s+0\\s+0`).test(result.stdout) ? result.stdout : undefined;
    });
    console.log(`edgeplane status on unit-2 after the drain:\n${after}`);

    const undrain = await cliJson<ServerRow>(['undrain', 'web', drained], { member: 3 });
    expect(undrain).toMatchObject({ weight: 1, state: 'active' });
    const events = await cliJson<{ kind: string; by: string; detail: Record<string, string> }[]>(['events'], { member: 2 });
    expect(events.filter((e) => e.kind === 'drain' || e.kind === 'undrain').map((e) => [e.kind, e.by, e.detail['via']])).toEqual([
      ['drain', 'alice', 'unit-1'],
      ['undrain', 'alice', 'unit-3'],
    ]);
  }, 120_000);

  it('keeps a drain of a least-load server while the service manager recomputes its weights', async () => {
    const drain = await cliJson<ServerRow>(['drain', 'web-ll', SERVER_2], { member: 2 });
    expect(drain).toMatchObject({ service: 'web-ll', server: SERVER_2, weight: 0 });
    // Every tick (500 ms) the service manager weighs the servers by their response times again;
    // connections keep coming for four seconds and none may reach the drained server.
    const bodies: string[] = [];
    for (let round = 0; round < 8; round += 1) {
      bodies.push(...(await requests(5, LEAST_LOAD_PORT)));
      await sleep(500);
    }
    expect(bodies).toEqual(Array.from({ length: 40 }, () => serverBody(SERVER_IPS[0]!)));
    const rows = await cliJson<ServerRow[]>(['servers', '--service', 'web-ll'], { member: 3 });
    expect(server(rows, SERVER_2, 'web-ll')!.units.map((u) => u.weight)).toEqual([0, 0, 0]);
    expect(server(rows, SERVER_1, 'web-ll')!.units.every((u) => u.weight > 0)).toBe(true);
    const undrain = await cliJson<ServerRow>(['undrain', 'web-ll', SERVER_2], { member: 1 });
    expect(undrain.weight).toBeGreaterThan(0);
  }, 60_000);

  it('removes and adds a server on every member', async () => {
    const removed = await cli(['servers', 'remove', 'web', SERVER_2], { member: 3 });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/removed on unit-3, unit-\d, unit-\d/);
    for (const member of [1, 2]) expect(server(await cliJson<ServerRow[]>(['servers'], { member }), SERVER_2)).toBeUndefined();
    expect(await requests(20)).toEqual(Array.from({ length: 20 }, () => serverBody(SERVER_IPS[0]!)));

    const again = await cli(['servers', 'remove', 'web', SERVER_2], { member: 1 });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/404 service "web" has no server 10\.0\.2\.12:80/);

    const added = await cliJson<ServerRow>(['servers', 'add', 'web', SERVER_2, '--weight', '1'], { member: 2 });
    expect(added).toMatchObject({ server: SERVER_2, weight: 1, state: 'active' });
    expect(added.units).toHaveLength(3);
    const bodies = await requests(30);
    expect(new Set(bodies)).toEqual(new Set(SERVER_IPS.map(serverBody)));
  }, 120_000);

  it('refuses a read-only certificate to drain, and clients without a certificate of the cluster CA', async () => {
    const viewer = await cli(['drain', 'web', SERVER_1], { member: 2, as: lab.credentials.viewer });
    expect(viewer.code).toBe(1);
    expect(viewer.stderr).toMatch(/403 victor has role read-only; POST \/api\/services\/:service\/servers\/:server\/drain needs operator/);
    expect(server(await cliJson<ServerRow[]>(['servers'], { member: 1, as: lab.credentials.viewer }), SERVER_1)!.units.map((u) => u.weight)).toEqual([1, 1, 1]);

    const foreign = (file: string) => path.join(lab.credentials.foreign, file);
    const wrongCa = await cli(['status'], { member: 2, credentials: ['--cert', foreign('operator.crt'), '--key', foreign('operator.key'), '--ca', path.join(lab.credentials.admin, 'ca.crt')] });
    expect(wrongCa.code, wrongCa.stderr).toBe(4);
    expect(wrongCa.stderr).toMatch(/refused our certificate/);

    // No client certificate at all: the TLS handshake is refused.
    const anonymous = await inNamespace(lab.operatorNamespace, 'curl', ['-sS', '--cacert', path.join(lab.credentials.admin, 'ca.crt'), '-o', '/dev/null', '-w', '%{http_code}', `${lab.managementUrl(3)}/api/status`]).then(
      (code) => ({ refused: false, code }),
      (error: Error) => ({ refused: true, code: error.message }),
    );
    expect(anonymous.refused, anonymous.code).toBe(true);

    // A member's unit certificate may read its peers' internal routes, not operate; an operator may not call those.
    const flash = path.join(SCRATCH, 'flash/unit-1');
    const asUnit = (urlPath: string, method = 'GET') =>
      inNamespace(lab.operatorNamespace, 'curl', ['-sS', '-X', method, '--cacert', path.join(flash, 'ca.crt'), '--cert', path.join(flash, 'unit.crt'), '--key', path.join(flash, 'unit.key'), '-w', '\n%{http_code}', `${lab.managementUrl(2)}${urlPath}`]);
    expect(await asUnit('/api/peer/unit')).toMatch(/"role":"member"[\s\S]*\n200$/);
    expect(await asUnit(`/api/services/web/servers/${SERVER_1}/drain`, 'POST')).toMatch(/names no operator role[\s\S]*\n403$/);
    const operatorOnPeer = await cli(['counters'], { member: 1 }).then(() =>
      inNamespace(lab.operatorNamespace, 'curl', ['-sS', '--cacert', path.join(lab.credentials.admin, 'ca.crt'), '--cert', path.join(lab.credentials.admin, 'operator.crt'), '--key', path.join(lab.credentials.admin, 'operator.key'), '-w', '\n%{http_code}', `${lab.managementUrl(1)}/api/peer/unit`]),
    );
    expect(operatorOnPeer).toMatch(/for cluster members' unit certificates[\s\S]*\n403$/);
  }, 60_000);

  it("tells systemd its cluster role, members and work units in the status line", async () => {
    expect(notified[0]).toMatch(/^READY=1\nSTATUS=ports up 2\/2, services 3, flows \d+; cluster (discovering|offering|master)/);
    const status = await until('a watchdog status naming the three-member cluster', async () => notified.find((message) => /cluster master, master unit-1, 3 member\(s\), \d+ work unit\(s\) owned/.test(message)));
    expect(status).toMatch(/^WATCHDOG=1\nSTATUS=ports up 2\/2, services 3, flows \d+; cluster master/);
    // As the new master it announced the cluster addresses at the shared MACs (cluster.announce).
    const announced = readFileSync(lab.units[0]!.log, 'utf8').split('\n').filter((line) => line.includes('"msg":"gratuitous arp sent"'));
    expect(announced.map((line) => (JSON.parse(line) as { addresses: string[] }).addresses)).toEqual(expect.arrayContaining([[VIP], ['10.0.2.1']]));
  });

  it('gives each member its own block of full-NAT source ports on the shared source address', async () => {
    const leased = (slot: number) =>
      readFileSync(lab.units[slot - 1]!.log, 'utf8')
        .split('\n')
        .filter((line) => line.includes('"msg":"full-NAT source ports leased"'))
        .map((line) => JSON.parse(line) as { start: number; size: number; services: string[] });
    const leases = await until('a full-NAT port lease on every member', async () => {
      const found = [1, 2, 3].map((slot) => leased(slot)[0]);
      return found.every((lease) => lease !== undefined) ? found.map((lease) => lease!) : undefined;
    });
    expect(leases.every((lease) => lease.size === 4096 && lease.services.includes('web-fullnat'))).toBe(true);
    expect(new Set(leases.map((lease) => lease.start)).size).toBe(3);
    // The servers see the shared source address; every member's connections are answered.
    const bodies = await requests(12, FULLNAT_PORT);
    expect(bodies).toHaveLength(12);
    expect(new Set(bodies)).toEqual(new Set(SERVER_IPS.map(serverBody)));
  });

  it("tails any member's log through another member", async () => {
    const lines = await cliJson<{ msg: string; component?: string }[]>(['logs', '--unit', 'unit-3', '-n', '2000'], { member: 1 });
    expect(lines.filter((line) => line.component === 'cluster').map((line) => line.msg)).toContain('joined');
    const unknown = await cli(['logs', '--unit', 'unit-9'], { member: 1 });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 unit-9 is not a member of this unit's cluster/);
  });

  it('describes the cluster routes in its OpenAPI document', async () => {
    const document = JSON.parse(
      await inNamespace(lab.operatorNamespace, 'curl', ['-sS', '--cacert', path.join(lab.credentials.viewer, 'ca.crt'), '--cert', path.join(lab.credentials.viewer, 'operator.crt'), '--key', path.join(lab.credentials.viewer, 'operator.key'), `${lab.managementUrl(3)}/api/openapi.json`]),
    ) as { paths: Record<string, Record<string, { 'x-edgeplane-role': string }>> };
    const role = (route: string, method: string) => document.paths[route]?.[method]?.['x-edgeplane-role'];
    expect(role('/api/cluster', 'get')).toBe('read-only');
    expect(role('/api/services/{service}/servers', 'post')).toBe('operator');
    expect(role('/api/services/{service}/servers/{server}', 'delete')).toBe('operator');
    expect(role('/api/peer/changes', 'post')).toBe('peer');
  });

  it('serves Prometheus metrics with data plane and cluster figures on every member', async () => {
    for (const member of [1, 2, 3]) {
      const metrics = await inNamespace(lab.operatorNamespace, 'curl', [
        '-sS', '--cacert', path.join(lab.credentials.viewer, 'ca.crt'), '--cert', path.join(lab.credentials.viewer, 'operator.crt'), '--key', path.join(lab.credentials.viewer, 'operator.key'),
        `${lab.managementUrl(member)}/metrics`,
      ]);
      expect(metrics).toMatch(/edgeplane_server_flows_total\{service="web",server="10\.0\.2\.1[12]:80"\} \d+/);
      expect(metrics).toMatch(/edgeplane_cluster_members 3/);
      expect(metrics).toMatch(new RegExp(`edgeplane_cluster_role\\{role="${member === 1 ? 'master' : 'member'}"\\} 1`));
      expect(metrics).toMatch(/edgeplane_cluster_owned_work_units \d+/);
    }
  });

  it('shows the cluster and live throughput in the dashboard in Chromium, with the numbers the API gives, and a failover on its timeline', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const admin = (file: string) => path.join(lab.credentials.admin, file);
    const url = lab.managementUrl(2);
    const context = await browser.newContext({
      clientCertificates: [{ origin: new URL(url).origin, certPath: admin('operator.crt'), keyPath: admin('operator.key') }],
      ignoreHTTPSErrors: true,
      viewport: { width: 1400, height: 1600 },
    });
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/`);
    await page.waitForSelector('#members tbody tr');
    await page.waitForSelector('#servers tbody tr');

    const wrk = spawn('ip', ['netns', 'exec', lab.lan.client, 'wrk', '-t1', '-c4', '-d15s', `http://${VIP}${BIG_FILE_URL_PATH}`], { stdio: 'ignore' });
    children.push(wrk);
    const wrkDone = new Promise((resolve) => wrk.once('exit', resolve));
    await until(
      'throughput shown while wrk runs',
      async () => {
        const bits = await page.$$eval('#servers tbody tr td[data-field=throughput]', (cells) => cells.map((c) => Number((c as HTMLElement).dataset.bitsPerSecond)));
        return bits.reduce((a, b) => a + b, 0) > 1_000_000 ? bits : undefined;
      },
      9000,
    );
    // Each poll asks every member, so on a loaded machine samples come slower than once a second.
    const points = (selector: string) => page.$$eval(selector, (lines) => lines.map((l) => l.getAttribute('points') ?? '').join(' ').trim().split(' ').filter(Boolean).length);
    const charted = await until(
      'three charts with a line of 3+ samples',
      async () => {
        const counts = await Promise.all(['#chart-throughput', '#chart-server-throughput', '#chart-members'].map((chart) => points(`${chart} polyline`)));
        return counts.every((count) => count > 2) ? counts : undefined;
      },
      12_000,
    );
    console.log(`dashboard chart points while wrk runs (service, server, member throughput): ${charted.join(', ')}`);
    const throughputMax = await page.$eval('#chart-throughput text.label', (label) => label.textContent ?? '');
    expect(throughputMax).toMatch(/[kMG]bit\/s/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cluster-dashboard-under-load.png'), fullPage: true });
    await wrkDone;

    // Once traffic stops the counters are still: what is shown must be what the API says.
    // The rebalancer may move work units between two polls: wait for a page that shows what the API says.
    const readMembers = () =>
      page.$$eval('#members tbody tr', (rows) =>
        rows.map((row) => ({ id: (row as HTMLElement).dataset.unit, health: row.querySelector('[data-field=health]')!.textContent, ownedUnits: Number(row.querySelector('[data-field=ownedUnits]')!.textContent) })),
      );
    const readLegend = () => page.$$eval('#legend-workunits span', (spans) => Object.fromEntries(spans.map((s) => [(s as HTMLElement).dataset.owner, Number((s as HTMLElement).dataset.count)])));
    let last = '';
    const agreed = await until(
      'the dashboard showing the members and work units the API gives',
      async () => {
        const cluster = await cliJson<ClusterView>(['members'], { member: 2 });
        const count = await page.$eval('#cluster-note', (note) => Number((note as HTMLElement).dataset.members));
        const rows = await readMembers();
        const legend = await readLegend();
        const expected = cluster.members.map((m) => ({ id: m.id, health: m.health, ownedUnits: m.ownedUnits }));
        last = JSON.stringify({ count, rows, legend, expected });
        const same = count === cluster.members.length && JSON.stringify(rows) === JSON.stringify(expected) && cluster.members.every((m) => (legend[m.id] ?? 0) === m.ownedUnits);
        return same ? cluster : undefined;
      },
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last seen ${last}`);
    });
    expect(agreed.members).toHaveLength(3);
    const readServers = () =>
      page.$$eval('#servers tbody tr', (rows) =>
        rows.map((row) => {
          const field = (name: string) => (row.querySelector(`[data-field=${name}]`) as HTMLElement).textContent;
          return { server: (row as HTMLElement).dataset.server, state: field('state'), weight: Number(field('weight')), flows: Number(field('flows')) };
        }),
      );
    const fromApi = await until('the server table showing what the API gives', async () => {
      const api = (await cliJson<ServerRow[]>(['servers'], { member: 2 })).map((s) => ({ server: s.server, state: s.state, weight: s.weight, flows: s.flows }));
      return JSON.stringify(await readServers()) === JSON.stringify(api) ? api : undefined;
    });
    expect(fromApi.reduce((sum, s) => sum + s.flows, 0)).toBeGreaterThan(0);
    const events = await cliJson<unknown[]>(['events'], { member: 2 });
    await until('the event table as long as the API list', async () => ((await page.locator('#events tbody tr').count()) === events.length ? true : undefined), 5000);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cluster-dashboard-after-load.png'), fullPage: true });

    // A member dies: the others see it leave, the timeline marks the failover, the VIP still answers.
    lab.units[2]!.child.kill('SIGKILL');
    const survivors = await until(
      'unit-3 gone from the members unit-2 lists',
      async () => {
        const view = await cliJson<ClusterView>(['members'], { member: 2 });
        return view.members.length === 2 ? view : undefined;
      },
      30_000,
    );
    expect(survivors.members.map((m) => [m.id, m.health])).toEqual([['unit-2', 'ok'], ['unit-1', 'ok']]);
    const left = await cliJson<{ kind: string; detail: Record<string, string> }[]>(['events'], { member: 2 });
    expect(left.filter((e) => e.kind === 'member-left').map((e) => e.detail['unit'])).toContain('unit-3');
    expect(await requests(10)).toHaveLength(10);
    const gone = await cli(['status'], { member: 3 });
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/cannot reach the appliance at https:\/\/10\.77\.0\.13:8443/);
    await until('the failover on the dashboard timeline', async () => ((await page.locator('#events tbody tr.failover[data-kind=member-left]', { hasText: 'unit=unit-3' }).count()) > 0 ? true : undefined), 15_000);
    await until('two members on the dashboard', async () => ((await page.locator('#members tbody tr').count()) === 2 ? true : undefined), 15_000);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cluster-dashboard-after-failover.png'), fullPage: true });
    await context.close();
  }, 150_000);
});

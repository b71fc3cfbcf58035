/* The management plane end to end: the Appliance runs in this process in front of two nginx
 * servers in namespaces, the management server serves it over mutual TLS, the `edgeplane` CLI runs
 * as a separate process, and the dashboard is loaded in a real headless Chromium while wrk loads
 * the VIP. Screenshots go to out/screenshots/. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Appliance } from '../../app/control/appliance.js';
import { parseConfig } from '../../app/control/config.js';
import { apiRoutes, digestConfig } from '../../app/mgmt/api-routes.js';
import { LogTail } from '../../app/mgmt/log-tail.js';
import { startManagementServer, type ManagementServer } from '../../app/mgmt/server.js';
import { natConfig } from '../netns/nat-config.js';
import { BIG_FILE_URL_PATH, serverBody, startNginx, type NginxServer } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';
import { VIP, buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { createTestCredentials, type TestCredentials } from './credentials.js';

const PREFIX = 'epmgmt';
const ROOT = path.resolve(import.meta.dirname, '../..');
const SCREENSHOTS = path.join(ROOT, 'out/screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface ServerRow {
  service: string;
  server: string;
  state: string;
  weight: number;
  activeFlows: number;
  flows: number;
  bytes: number;
}

/** The CLI as its own process, as an operator runs it. */
function cli(args: string[], credentials?: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'app/cli/edgeplane.ts'), ...(credentials ?? []), ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** A raw HTTPS GET with the given client material (or none), resolving to status and body. */
function rawGet(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function requests(count: number): Promise<string[]> {
  const urls = Array.from({ length: count }, () => `http://${VIP}/`);
  const output = await inNamespace(`${PREFIX}-client`, 'curl', ['-sS', '--max-time', '20', '-H', 'Connection: close', ...urls], { timeoutMs: 60_000 });
  return output.match(/server [0-9.]+\n/g) ?? [];
}

/** A download throttled so it lasts, keeping one established connection open until stopped. */
function slowDownload(): ChildProcess {
  return spawn('ip', ['netns', 'exec', `${PREFIX}-client`, 'curl', '-s', '-o', '/dev/null', '--limit-rate', '200k', `http://${VIP}${BIG_FILE_URL_PATH}`], { stdio: 'ignore' });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('management API, CLI and dashboard on a running appliance', () => {
  let topology: Topology;
  let nginx: NginxServer[] = [];
  let appliance: Appliance;
  let mgmt: ManagementServer;
  let creds: TestCredentials;
  let browser: Browser | undefined;
  const children: ChildProcess[] = [];
  const as = (dir: string) => ['--url', mgmt.url, '--credentials', dir];
  const getAsAdmin = async <T>(urlPath: string): Promise<T> => {
    const admin = (file: string) => readFileSync(path.join(creds.admin, file), 'utf8');
    const response = await rawGet(`${mgmt.url}${urlPath}`, { ca: admin('ca.crt'), cert: admin('operator.crt'), key: admin('operator.key') });
    expect(response.status, response.body).toBe(200);
    return JSON.parse(response.body) as T;
  };
  const serverRow = async (server: string) => (await getAsAdmin<ServerRow[]>('/api/servers?service=web')).find((row) => row.server === server)!;

  beforeAll(async () => {
    creds = await createTestCredentials();
    topology = await buildTopology({ prefix: PREFIX, servers: 2 });
    nginx = await Promise.all(topology.servers.map((s) => startNginx(s.namespace, s.ip)));
    const config = parseConfig('mgmt-test', JSON.stringify(natConfig(topology, { filePrefix: PREFIX, httpPort: 0 })));
    const logs = new LogTail();
    const logger = pino({ level: 'info' }, pino.multistream([{ stream: logs, level: 'info' }]));
    appliance = new Appliance(logger);
    appliance.start(config);
    mgmt = await startManagementServer(
      appliance,
      { host: '127.0.0.1', port: 0, tls: creds.server, unitId: 'unit1', configDigest: digestConfig(config), killSeconds: config.dataplane.timeouts.establishedSeconds + 1, logs },
      logger,
    );
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    await mgmt?.close();
    appliance?.stop();
    for (const server of nginx) await server.stop();
    await teardownTopology(PREFIX);
    creds?.cleanup();
  });

  it('refuses clients without a certificate, with a foreign CA, or without an operator role', async () => {
    await expect(rawGet(`${mgmt.url}/api/status`, { ca: creds.server.ca })).rejects.toThrow(/certificate required|alert|ECONNRESET|socket hang up/i);

    const foreign = (file: string) => path.join(creds.foreign, file);
    const wrongCa = await cli(['status'], ['--url', mgmt.url, '--cert', foreign('operator.crt'), '--key', foreign('operator.key'), '--ca', path.join(creds.admin, 'ca.crt')]);
    expect(wrongCa.code, wrongCa.stderr).toBe(4);
    expect(wrongCa.stderr).toMatch(/refused our certificate/);

    const untrustedServer = await cli(['status'], as(creds.foreign));
    expect(untrustedServer.code).toBe(4);
    expect(untrustedServer.stderr).toMatch(/certificate we do not trust/);

    const unit = await rawGet(`${mgmt.url}/api/status`, creds.unitAsClient);
    expect(unit.status).toBe(403);
    expect(JSON.parse(unit.body).message).toMatch(/names no operator role/);

    const unreachable = await cli(['status'], ['--url', 'https://127.0.0.1:1', '--credentials', creds.admin]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/cannot reach the appliance/);
  });

  it('lets a read-only certificate look but not drain', async () => {
    const server = `${topology.servers[0]!.ip}:80`;
    const status = await cli(['--json', 'status'], as(creds.viewer));
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).unit).toMatchObject({ id: 'unit1', state: 'running' });

    const drain = await cli(['drain', 'web', server], as(creds.viewer));
    expect(drain.code).toBe(1);
    expect(drain.stderr).toMatch(/403 victor has role read-only; POST \/api\/services\/:service\/servers\/:server\/drain needs operator/);
    expect((await serverRow(server)).weight).toBe(1);
  });

  it('drains a server through the CLI: status shows it draining, then drained, and new connections avoid it', async () => {
    const download = slowDownload();
    children.push(download);
    const flow = await until('the slow download in /api/flows', async () => {
      const { flows } = await getAsAdmin<{ flows: { client: string; server: string; state: string }[] }>('/api/flows?service=web&state=established');
      return flows[0];
    });
    const drained = flow.server;
    const other = topology.servers.map((s) => `${s.ip}:80`).find((s) => s !== drained)!;

    const listed = await cli(['flows', '--service', 'web', '--server', drained], as(creds.admin));
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(flow.client);

    const drain = await cli(['--json', 'drain', 'web', drained], as(creds.admin));
    expect(drain.code, drain.stderr).toBe(0);
    expect(JSON.parse(drain.stdout)).toMatchObject({ server: drained, weight: 0, state: 'draining', activeFlows: 1 });

    const draining = await cli(['status'], as(creds.admin));
    expect(draining.code).toBe(0);
    expect(draining.stdout).toMatch(new RegExp(`web\\s+${drained.replace(/\./g, '\\.')}\\s+draining\\s+0\\s+1`));
    console.log(`edgeplane status while draining:\n${draining.stdout}`);

    // New connections all go to the other server; the drained one gets none.
    const before = (await serverRow(drained)).flows;
    const bodies = await requests(20);
    expect(bodies).toEqual(Array.from({ length: 20 }, () => serverBody(other.split(':')[0]!)));
    expect((await serverRow(drained)).flows).toBe(before);

    // The established download stays pinned to the drained server until it ends.
    const { flows: pinned } = await getAsAdmin<{ flows: { server: string; state: string }[] }>(`/api/flows?client=${flow.client}`);
    expect(pinned).toEqual([expect.objectContaining({ server: drained, state: 'established' })]);
    const wait = cli(['--json', 'drain', '--wait', 'web', drained], as(creds.admin));
    await sleep(1500);
    download.kill('SIGTERM');
    const waited = await wait;
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ state: 'drained', activeFlows: 0 });
    expect(waited.stderr).toMatch(/no connections left/);

    const after = await cli(['status'], as(creds.admin));
    expect(after.stdout).toMatch(new RegExp(`web\\s+${drained.replace(/\./g, '\\.')}\\s+drained\\s+0\\s+0`));
    console.log(`edgeplane status after the drain:\n${after.stdout}`);

    const undrain = await cli(['--json', 'undrain', 'web', drained], as(creds.admin));
    expect(JSON.parse(undrain.stdout)).toMatchObject({ weight: 1, state: 'active' });
    const events = await getAsAdmin<{ kind: string; by: string }[]>('/api/events');
    expect(events.map((e) => [e.kind, e.by])).toEqual([
      ['drain', 'alice'],
      ['drain', 'alice'],
      ['undrain', 'alice'],
    ]);
  }, 90_000);

  it('kills a connection: both directions dropped, listed as killed', async () => {
    const download = slowDownload();
    children.push(download);
    const flow = await until('a download to kill', async () => {
      const { flows } = await getAsAdmin<{ flows: { client: string; server: string }[] }>('/api/flows?service=web&state=established');
      return flows[0];
    });
    const killed = await cli(['flows', 'kill', 'web', flow.client], as(creds.admin));
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toBe(`killed ${flow.client} -> ${flow.server}\n`);
    const affinities = await getAsAdmin<{ key: { srcIp: string; srcPort: number }; action: { type: string } }[]>('/api/affinities');
    expect(affinities.filter((a) => a.action.type === 'drop').map((a) => `${a.key.srcIp}:${a.key.srcPort}`).sort()).toEqual([flow.client, flow.server].sort());
    const bytes = (await serverRow(flow.server)).bytes;
    await sleep(1500);
    expect((await serverRow(flow.server)).bytes).toBe(bytes);
    const { flows } = await getAsAdmin<{ flows: { client: string; killed: boolean }[] }>(`/api/flows?client=${flow.client}`);
    expect(flows).toEqual([expect.objectContaining({ client: flow.client, killed: true })]);
    download.kill('SIGKILL');
  }, 60_000);

  it('describes every route in OpenAPI and exposes data plane metrics to read-only clients', async () => {
    const document = await getAsAdmin<{ paths: Record<string, Record<string, { 'x-edgeplane-role': string }>> }>('/api/openapi.json');
    for (const route of apiRoutes) {
      expect(document.paths[route.url.replace(/:([A-Za-z]+)/g, '{$1}')]?.[route.method.toLowerCase()]?.['x-edgeplane-role']).toBe(route.role);
    }
    const viewer = (file: string) => readFileSync(path.join(creds.viewer, file), 'utf8');
    const metrics = await rawGet(`${mgmt.url}/metrics`, { ca: viewer('ca.crt'), cert: viewer('operator.crt'), key: viewer('operator.key') });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(new RegExp(`edgeplane_server_flows_total\\{service="web",server="${topology.servers[1]!.ip.replace(/\./g, '\\.')}:80"\\} [1-9]`));
    const logs = await getAsAdmin<{ msg: string }[]>('/api/logs?lines=50');
    expect(logs.map((l) => l.msg)).toContain('server weight changed');
  });

  it('shows live throughput in the dashboard in Chromium, with the numbers the API gives', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const admin = (file: string) => path.join(creds.admin, file);
    const context = await browser.newContext({
      clientCertificates: [{ origin: new URL(mgmt.url).origin, certPath: admin('operator.crt'), keyPath: admin('operator.key') }],
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 1100 },
    });
    const page = await context.newPage();
    await page.goto(`${mgmt.url}/dashboard/`);
    await page.waitForSelector('#servers tbody tr');

    const wrk = spawn('ip', ['netns', 'exec', `${PREFIX}-client`, 'wrk', '-t1', '-c2', '-d8s', `http://${VIP}${BIG_FILE_URL_PATH}`], { stdio: 'ignore' });
    children.push(wrk);
    const wrkDone = new Promise((resolve) => wrk.once('exit', resolve));
    await sleep(4000);
    const bits = await page.$$eval('#servers tbody tr td[data-field=throughput]', (cells) => cells.map((c) => Number((c as HTMLElement).dataset.bitsPerSecond)));
    expect(bits.reduce((a, b) => a + b, 0)).toBeGreaterThan(1_000_000);
    // The chart gains a point per poll; a loaded host polls late, so wait for the third point
    // while wrk still runs rather than expecting it at a fixed time.
    await page.waitForFunction(() => (document.querySelector('#chart-ports polyline')?.getAttribute('points') ?? '').trim().split(' ').length > 2, undefined, { timeout: 4000 }).catch(() => undefined);
    const polyline = await page.$eval('#chart-ports polyline', (line) => line.getAttribute('points') ?? '');
    expect(polyline.split(' ').length).toBeGreaterThan(2);
    // wrk's connections were set up through the data plane, which timed their handshakes
    const setup = await page.$$eval('#chart-response polyline', (lines) => lines.map((l) => l.getAttribute('points') ?? '').join(' ').trim());
    expect(setup.split(' ').length).toBeGreaterThan(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-under-load.png'), fullPage: true });
    await wrkDone;

    // Once traffic stops the counters are still: the table must show exactly what the API says.
    await sleep(2500);
    const shown = await page.$$eval('#servers tbody tr', (rows) =>
      rows.map((row) => {
        const field = (name: string) => (row.querySelector(`[data-field=${name}]`) as HTMLElement).textContent;
        const element = row as HTMLElement;
        return { server: element.dataset.server, state: field('state'), weight: Number(field('weight')), flows: Number(field('flows')) };
      }),
    );
    const fromApi = (await getAsAdmin<ServerRow[]>('/api/servers')).map((s) => ({ server: s.server, state: s.state, weight: s.weight, flows: s.flows }));
    expect(shown).toEqual(fromApi);
    const events = await getAsAdmin<unknown[]>('/api/events');
    expect(events.length).toBeGreaterThan(0);
    expect(await page.locator('#events tbody tr').count()).toBe(events.length);
    expect(await page.locator('#members tbody tr').textContent()).toContain('unit1');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-after-load.png'), fullPage: true });
    await context.close();
  }, 90_000);
});

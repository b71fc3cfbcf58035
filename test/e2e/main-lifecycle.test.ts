/* The entry point as a service manager runs it, on DPDK's null devices (no network needed): it says
 * when it is ready, serves health, stops cleanly on SIGTERM, and explains a device it cannot find. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { request as httpsRequest } from 'node:https';
import { describe, expect, it } from 'vitest';
import { createTestCredentials } from '../mgmt/credentials.js';

const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'app/control/main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'ep-main-'));

function nullDeviceConfig(name: string, devices: string[], httpPort = 0, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      eal: { lcores: [0, 1], memoryMb: 256, noHuge: true, filePrefix: `ep-main-${name}`, vdevs: ['net_null0', 'net_null1'] },
      ports: devices.map((device, i) => ({ device, address: `10.9.${i}.1`, prefixLength: 24 })),
      http: { port: httpPort },
      ...extra,
    }),
  );
  return file;
}

/* GET over mutual TLS; resolves the status and body, or rejects when the handshake fails. */
function tlsGet(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...tls, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface LogLine {
  msg: string;
  url?: string;
  level: number;
}

function startControl(config: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    if (!text.startsWith('{')) return; // DPDK prints its own lines to stdout too
    const line = JSON.parse(text) as LogLine;
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.match(line))) waiter.resolve(line);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exit,
    stderr: () => stderr,
    waitFor: (match: (line: LogLine) => boolean) => new Promise<LogLine>((resolve) => waiters.push({ match, resolve })),
  };
}

describe('main.ts lifecycle', () => {
  it('announces its HTTP address, serves health and stops with exit code 0 on SIGTERM', async () => {
    const control = startControl(nullDeviceConfig('good', ['net_null0', 'net_null1']));
    const ready = await Promise.race([
      control.waitFor((line) => line.msg.startsWith('ready')),
      control.exit.then((code) => Promise.reject(new Error(`exited with ${code}: ${control.stderr()}`))),
    ]);
    expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${ready.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', state: 'running', ports: [{ device: 'net_null0' }, { device: 'net_null1' }] });

    control.child.kill('SIGTERM');
    expect(await control.exit).toBe(0);
    expect(control.lines.map((line) => line.msg).slice(-2)).toEqual(['stopping', 'data plane stopped']);
  });

  it('serves the mutual-TLS management API when configured, to operators of the cluster CA only', async () => {
    const creds = await createTestCredentials();
    try {
      const pem = (name: string, text: string) => {
        const file = path.join(dir, name);
        writeFileSync(file, text);
        return file;
      };
      const management = {
        host: '127.0.0.1',
        port: 0,
        unitId: 'unit1',
        caFile: pem('ca.pem', creds.server.ca),
        certFile: pem('unit.pem', creds.server.cert),
        keyFile: pem('unit-key.pem', creds.server.key),
      };
      const control = startControl(nullDeviceConfig('mgmt', ['net_null0', 'net_null1'], 0, { management }));
      const announced = await Promise.race([
        control.waitFor((line) => line.msg.startsWith('management API')),
        control.exit.then((code) => Promise.reject(new Error(`exited with ${code}: ${control.stderr()}`))),
      ]);
      const url = `${announced.url}/api/status`;
      const admin = (file: string) => readFileSync(path.join(creds.admin, file), 'utf8');
      const status = await tlsGet(url, { ca: admin('ca.crt'), cert: admin('operator.crt'), key: admin('operator.key') });
      expect(status.status).toBe(200);
      expect(JSON.parse(status.body)).toMatchObject({ unit: { id: 'unit1', state: 'running' } });
      await expect(tlsGet(url, { ca: admin('ca.crt') })).rejects.toThrow();
      control.child.kill('SIGTERM');
      expect(await control.exit).toBe(0);
    } finally {
      creds.cleanup();
    }
  });

  it('exits 1 naming the missing device and the ports DPDK found', async () => {
    const control = startControl(nullDeviceConfig('unknown', ['net_null0', 'net_af_packet7']));
    expect(await control.exit).toBe(1);
    const fatal = control.lines.find((line) => line.level === 60);
    expect(fatal?.msg).toMatch(
      /^cannot start the appliance: ports\[1\]\.device: "net_af_packet7" is not a DPDK port \(DPDK found: net_null0 \(port 0, net_null, [0-9a-f:]{17}\), net_null1 \(port 1, net_null, [0-9a-f:]{17}\)\)$/,
    );
  });

  it('exits 1 and releases the data plane when its HTTP port is taken', async () => {
    const squatter = createServer().listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    const { port } = squatter.address() as AddressInfo;
    try {
      const control = startControl(nullDeviceConfig('busy', ['net_null0', 'net_null1'], port));
      expect(await control.exit).toBe(1);
      const messages = control.lines.map((line) => line.msg);
      expect(messages.slice(-2)).toEqual([
        `cannot serve HTTP on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
        'data plane stopped',
      ]);
    } finally {
      squatter.close();
    }
  });
});

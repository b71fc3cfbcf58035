/* Real HTTP servers for the topology: one nginx per server namespace, each answering "/" with a body
 * that names it and serving one large random file whose SHA-256 is known. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inNamespace } from './run.js';

export const BIG_FILE_BYTES = 100 * 1024 * 1024;
export const BIG_FILE_URL_PATH = '/data/random-100MiB.bin';
const DATA_DIR = path.join(tmpdir(), 'edgeplane-testdata');
const BIG_FILE = path.join(DATA_DIR, 'random-100MiB.bin');

export interface BigFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Random (incompressible, not sparse) bytes, generated once per machine and reused by later runs. */
export function bigFile(): BigFile {
  const hashFile = `${BIG_FILE}.sha256`;
  if (existsSync(hashFile)) return { path: BIG_FILE, bytes: BIG_FILE_BYTES, sha256: readFileSync(hashFile, 'utf8').trim() };
  mkdirSync(DATA_DIR, { recursive: true, mode: 0o755 });
  const partial = `${BIG_FILE}.${process.pid}.partial`;
  const hash = createHash('sha256');
  const fd = openSync(partial, 'w', 0o644);
  const chunk = 1024 * 1024;
  for (let written = 0; written < BIG_FILE_BYTES; written += chunk) {
    const bytes = randomBytes(chunk);
    hash.update(bytes);
    writeSync(fd, bytes);
  }
  closeSync(fd);
  const sha256 = hash.digest('hex');
  // Rename last: a concurrent or interrupted run never sees a file without its matching hash.
  renameSync(partial, BIG_FILE);
  writeFileSync(`${hashFile}.${process.pid}`, `${sha256}\n`);
  renameSync(`${hashFile}.${process.pid}`, hashFile);
  return { path: BIG_FILE, bytes: BIG_FILE_BYTES, sha256 };
}

export function serverBody(ip: string): string {
  return `server ${ip}\n`;
}

/** The top of a test nginx's configuration: foreground, one worker, every file under dir. The
 * caller continues inside the open `http {` block and closes it. */
export function nginxConfigHead(dir: string, workerConnections: number): string {
  return `
daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;`;
}

function nginxConfig(dir: string, ip: string, data: BigFile, listen: string): string {
  return `${nginxConfigHead(dir, 256)}
  access_log ${dir}/access.log;
  sendfile on;
  server {
    listen ${listen};
    location = / {
      default_type text/plain;
      return 200 "${serverBody(ip).replace('\n', '\\n')}";
    }
    location = ${BIG_FILE_URL_PATH} {
      default_type application/octet-stream;
      alias ${data.path};
    }
  }
}
`;
}

export interface NginxServer {
  namespace: string;
  ip: string;
  dir: string;
  /** Requests nginx has logged so far (one access-log line each). */
  requests(): number;
  stop(): Promise<void>;
}

async function waitUntilServing(namespace: string, ip: string, child: ChildProcess, dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, 'utf8') : '';
      throw new Error(`nginx in ${namespace} exited with ${child.exitCode}: ${log}`);
    }
    try {
      const body = await inNamespace(namespace, 'curl', ['-sf', '--max-time', '2', `http://${urlHost(ip)}/`]);
      if (body === serverBody(ip)) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(50);
  }
}

/** An address as the host part of a URL: IPv6 in brackets. */
export function urlHost(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

export interface NginxOptions {
  /** Listen on port 80 of every local address, e.g. a VIP on lo for direct server return. */
  everyAddress?: boolean;
}

/** Starts nginx inside a server namespace, listening on the server's address (or on all of them). */
export async function startNginx(namespace: string, ip: string, options: NginxOptions = {}): Promise<NginxServer> {
  const data = bigFile();
  const dir = mkdtempSync(path.join(tmpdir(), `ep-nginx-${namespace}-`));
  chmodSync(dir, 0o755);
  const v6 = ip.includes(':');
  const listen = options.everyAddress ? (v6 ? '[::]:80' : '80') : `${urlHost(ip)}:80`;
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, ip, data, listen));
  const child = spawn('ip', ['netns', 'exec', namespace, 'nginx', '-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`], {
    stdio: 'ignore',
    // Its own process group: Ctrl-C on a demo's foreground process must not take the servers down.
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // The requests made here are logged too; access counts in tests start after them.
    await waitUntilServing(namespace, ip, child, dir);
    writeFileSync(`${dir}/access.log`, '');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    namespace,
    ip,
    dir,
    requests: () => readFileSync(`${dir}/access.log`, 'utf8').split('\n').filter(Boolean).length,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

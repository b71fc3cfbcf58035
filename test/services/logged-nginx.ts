/* nginx for the service tests: listens on port 80 of every address of its namespace (the data
 * address for client traffic, the management address for health checks) and logs one line per
 * request with the time, the connection serial number and the client, so a test can tell when a
 * server last accepted a new connection from the client. */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nginxConfigHead, serverBody } from '../netns/nginx.js';
import { inNamespace } from '../netns/run.js';

export interface LogLine {
  /** Seconds since the epoch, millisecond resolution. */
  time: number;
  connection: number;
  client: string;
  clientPort: number;
}

export interface LoggedNginx {
  ip: string;
  lines(): LogLine[];
  stop(): Promise<void>;
}

function config(dir: string, ip: string): string {
  return `${nginxConfigHead(dir, 1024)}
  log_format conn '$msec $connection $remote_addr $remote_port';
  access_log ${dir}/access.log conn;
  server {
    listen 80;
    location = / {
      default_type text/plain;
      return 200 "${serverBody(ip).replace('\n', '\\n')}";
    }
  }
}
`;
}

export async function startLoggedNginx(namespace: string, ip: string): Promise<LoggedNginx> {
  const dir = mkdtempSync(path.join(tmpdir(), `ep-svc-nginx-${namespace}-`));
  chmodSync(dir, 0o755);
  writeFileSync(path.join(dir, 'nginx.conf'), config(dir, ip));
  const child = spawn('ip', ['netns', 'exec', namespace, 'nginx', '-p', dir, '-c', `${dir}/nginx.conf`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx in ${namespace} exited: ${readFileSync(`${dir}/error.log`, 'utf8')}`);
    try {
      if ((await inNamespace(namespace, 'curl', ['-sf', '--max-time', '1', `http://${ip}/`])) === serverBody(ip)) break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(50);
  }
  return {
    ip,
    lines: () =>
      readFileSync(`${dir}/access.log`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [time, connection, client, clientPort] = line.split(' ');
          return { time: Number(time), connection: Number(connection), client: client ?? '', clientPort: Number(clientPort) };
        }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

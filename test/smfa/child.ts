/* Test harness: agents and managers run as child processes (one DPDK EAL per process; a manager
 * can be killed like a crashed one). The parent sends requests over IPC and gets one reply each. */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Child {
  pid: number;
  /** The child's unicast SMFA port. */
  port: number;
  request<T = Record<string, unknown>>(kind: string, body?: unknown): Promise<T>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

export async function startChild(script: 'agent-process.ts' | 'manager-process.ts', config: unknown): Promise<Child> {
  const child: ChildProcess = fork(path.join(here, script), [JSON.stringify(config)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  let next = 0;
  const pending = new Map<number, (reply: Reply) => void>();
  child.on('message', (m) => pending.get((m as Reply).id)?.(m as Reply));
  const request = <T>(kind: string, body?: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, (reply) => {
        pending.delete(id);
        if (reply.error) reject(new Error(reply.error));
        else resolve(reply.result as T);
      });
      child.send({ id, kind, body });
    });
  return {
    pid: child.pid!,
    port,
    request,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await request('stop').catch(() => undefined);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The child side: answers requests with `handlers[kind](body)`; "stop" runs `stop` and exits. */
export function serveRequests(port: number, handlers: Record<string, (body: unknown) => unknown>, stop: () => Promise<void>): void {
  process.on('message', async (m: { id: number; kind: string; body: unknown }) => {
    if (m.kind === 'stop') {
      await stop();
      process.send!({ id: m.id, result: {} }, () => process.exit(0));
      return;
    }
    try {
      const handler = handlers[m.kind];
      if (!handler) throw new Error(`no handler for "${m.kind}"`);
      process.send!({ id: m.id, result: await handler(m.body) });
    } catch (error) {
      process.send!({ id: m.id, error: String(error) });
    }
  });
  process.send!({ port });
}

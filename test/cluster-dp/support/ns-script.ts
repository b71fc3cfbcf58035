/* A TypeScript helper script run by Node inside a namespace, with a request/reply IPC channel. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export class NamespaceScript {
  readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();
  private readonly kinds = new Map<string, () => void>();

  constructor(namespace: string, script: string, env: Record<string, string> = {}) {
    const file = fileURLToPath(new URL(`./${script}`, import.meta.url));
    this.child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', file], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env },
    });
    this.child.on('message', (raw) => {
      const message = raw as { kind: string; id?: number; result?: unknown };
      if (message.kind === 'reply' && message.id !== undefined) this.waiting.get(message.id)?.(message.result);
      else this.kinds.get(message.kind)?.();
    });
  }

  /** Resolves when the script sends a message of this kind (e.g. 'ready'). */
  once(kind: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${kind}' within ${timeoutMs} ms`)), timeoutMs);
      this.kinds.set(kind, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  ask<T>(cmd: string, extra: object = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    if (!this.child.connected) return Promise.reject(new Error(`cannot ask ${cmd}: the script has exited (${this.child.exitCode ?? this.child.signalCode})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${cmd}`)), timeoutMs);
      this.waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result as T);
      });
      this.child.send({ id, cmd, ...extra });
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

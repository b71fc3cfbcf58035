/* Starts a unit's member process inside its namespace and follows its events. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { OwnershipChange } from '../../../app/cluster/work-units.js';
import type { UnitConfig } from './units.js';

const SCRIPT = fileURLToPath(new URL('./member-process.ts', import.meta.url));

export interface UnitEvent {
  at: number;
  kind: 'log' | 'ownership' | 'role' | 'reply' | 'started';
  unit: string;
  level?: string;
  event?: string;
  fields?: Record<string, unknown>;
  units?: OwnershipChange[];
  role?: string;
  id?: number;
  result?: unknown;
}

export interface UnitState {
  role: string;
  masterId?: string;
  members: string[];
  owned: number[];
  leases: { space: string; start: number; size: number; holder: string; graceUntil: number | null }[];
  lastRefusal?: string;
  configVersion: number;
  services: string[];
  accepted: number;
  rejected: Record<string, number>;
}

export class UnitProcess {
  readonly child: ChildProcess;
  readonly events: UnitEvent[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  constructor(
    readonly config: UnitConfig,
    namespace: string,
    address: string,
    options: { veto?: string; silenceMs?: number; onEvent?: (event: UnitEvent) => void } = {},
  ) {
    const settings = { dir: config.dir, address, ...(config.flashNow ? { flashNow: config.flashNow } : {}), ...(config.forgeVersion !== undefined ? { forgeVersion: config.forgeVersion } : {}), ...(options.veto ? { veto: options.veto } : {}), ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}) };
    this.child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, CLUSTER_UNIT: JSON.stringify(settings) },
    });
    this.child.on('message', (raw) => {
      const event = { ...(raw as UnitEvent), unit: config.unitId };
      this.events.push(event);
      options.onEvent?.(event);
      if (event.kind === 'reply' && event.id !== undefined) this.waiting.get(event.id)?.(event.result);
    });
  }

  get unitId(): string {
    return this.config.unitId;
  }

  private ask(cmd: string, extra: object = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.unitId}: no answer to ${cmd}`)), 5000);
      this.waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.child.send({ id, cmd, ...extra });
    });
  }

  state(): Promise<UnitState> {
    return this.ask('state') as Promise<UnitState>;
  }

  lease(space: string): Promise<{ lease?: UnitState['leases'][number]; error?: string }> {
    return this.ask('lease', { space }) as Promise<{ lease?: UnitState['leases'][number]; error?: string }>;
  }

  logged(event: string): UnitEvent[] {
    return this.events.filter((entry) => entry.kind === 'log' && entry.event === event);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Freezes the process (SIGSTOP) for `ms`: its sockets keep queueing what peers send. */
  async freeze(ms: number): Promise<void> {
    this.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.child.kill('SIGKILL');
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/* Starts an appliance unit (unit-main.ts) inside its namespace and follows its IPC events. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Delivery } from './shared-lan.js';

const SCRIPT = fileURLToPath(new URL('./unit-main.ts', import.meta.url));

export interface UnitEvent {
  at: number;
  kind: 'log' | 'role' | 'reply' | 'started';
  level?: string;
  event?: string;
  fields?: Record<string, unknown>;
  role?: string;
  id?: number;
  result?: unknown;
}

export interface UnitSettings {
  dir: string;
  address: string;
  slot: number;
  /** The failure detection interval D (default 500 ms). */
  detectionMs?: number;
  /** The DPDK file prefix's start (default 'epcd'). */
  prefix?: string;
  /** Flow-state replication (default on). */
  replication?: boolean;
  /** How the shared addresses reach the units (default unicast-mac). */
  delivery?: Delivery;
  /** Run the services of the flash config's signed policy instead of the fixed test services. */
  servicesFromPolicy?: boolean;
  /** IPv6 data addresses and an IPv6 NAT service on VIP6 besides the IPv4 ones. */
  ipv6?: boolean;
  /** The data plane's established-connection timeout (default 300 s). */
  establishedSeconds?: number;
}

export interface UnitState {
  role: string;
  masterId?: string;
  members: string[];
  owned: number[];
  replication: Record<string, number>;
  replicatingTo: string[];
  book: number;
  imported: number;
  held: number;
  heldOverflow: number;
  forgotten: number;
  released: { packets: number; lastAt: number };
  /** Records sent again to refresh the peers' copies of this unit's connections. */
  refreshesSent: number;
  learnedFlows: number;
  eventsLost: number;
  drops: Record<string, number>;
  /** The full-NAT source-port block this member leased. */
  snatLease?: { start: number; size: number; holder: string };
  /** Forwarding delivery: frames of other members' units this unit (as master) passed on. */
  unitForwarded: number;
  /** Connections this unit's data plane created (chose a server for). */
  flowsCreated: number;
  /** Frames its client-side data port received. */
  clientPortRx: number;
  /** Its data ports' MACs, client side first. */
  dataMacs: string[];
  /** The configuration version of the signed policy the member runs. */
  configVersion: number;
  /** The addresses it answers for and a new master announces (configured, and its services' VIPs). */
  sharedAddresses: string[];
  /** The services installed in the data plane now, with their servers' addresses. */
  services: { name: string; id: number; vip: string; port: number; servers: string[] }[];
  /** New flows the data plane gave each server of each service id. */
  serverFlows: { serviceId: number; ip: string; flows: number }[];
}

export class ClusterUnit {
  readonly child: ChildProcess;
  readonly events: UnitEvent[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  constructor(
    readonly unitId: string,
    namespace: string,
    settings: UnitSettings,
  ) {
    this.child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, CLUSTER_DP_UNIT: JSON.stringify(settings) },
    });
    this.child.on('message', (raw) => {
      const event = raw as UnitEvent;
      this.events.push(event);
      if (event.kind === 'reply' && event.id !== undefined) this.waiting.get(event.id)?.(event.result);
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private ask(cmd: string, extra: object = {}, timeoutMs = 30_000): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.unitId}: no answer to ${cmd}`)), timeoutMs);
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

  /** The work units of client connections, as the data plane computes them. */
  unitsOf(clients: [string, number][]): Promise<number[]> {
    return this.ask('units', { clients }) as Promise<number[]>;
  }

  /** Diagnostics: the member's view of these units and its recent log lines. */
  view(units: number[]): Promise<unknown> {
    return this.ask('view', { units });
  }

  /** Benchmark: records streamed to the peers and acknowledged in `seconds` (unit-main.ts). */
  benchReplication(seconds: number): Promise<{ records: number; acked: number; batchRecords: number; ms: number; error?: string }> {
    return this.ask('bench-replication', { seconds }, (seconds + 30) * 1000) as Promise<{ records: number; acked: number; batchRecords: number; ms: number; error?: string }>;
  }

  logged(event: string): UnitEvent[] {
    return this.events.filter((entry) => entry.kind === 'log' && entry.event === event);
  }

  kill(): number {
    const at = Date.now();
    this.child.kill('SIGKILL');
    return at;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ id: 0, cmd: 'stop' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (this.alive) this.child.kill('SIGKILL');
  }
}

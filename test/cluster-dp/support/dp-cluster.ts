/* The test bench of the cluster data-plane tests: the shared LAN with its client and servers, the
 * flash configs, and the appliance units started on it, with the steps the tests share (form a
 * cluster, open long-lived connections, check that every stream stayed intact). */
import { expect } from 'vitest';
import { provisionUnits } from '../../cluster/support/units.js';
import { waitFor } from '../../cluster/support/unit-process.js';
import { startNginx, type NginxServer } from '../../netns/nginx.js';
import { NamespaceScript } from './ns-script.js';
import { CLIENT_IP, SERVER_IP6S, SERVER_IPS, VIP, createSharedLan, type Delivery, type SharedLan } from './shared-lan.js';
import { CHUNK } from './stream-pattern.js';
import { ClusterUnit, type UnitState } from './unit-process.js';

export interface ConnectionReport {
  localPort: number;
  received: number;
  sent: number;
  bad: boolean;
  error?: string;
  closed: boolean;
  maxGapMs: number;
  resumedAt: number;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
export { waitFor };

export interface UnitOptions {
  /** The failure detection interval D (default 500 ms). */
  detectionMs?: number;
  /** How the shared addresses reach the units (default unicast-mac, shared-lan.ts). */
  delivery?: Delivery;
  /** Units run their signed policy's services (unit-main.ts) instead of the fixed test services. */
  servicesFromPolicy?: boolean;
  /** The client and servers speak IPv6 too, and the units run an IPv6 NAT service on VIP6
   * (forwarding delivery's IPv6 test). */
  ipv6?: boolean;
  /** The data plane's established-connection timeout (default 300 s). */
  establishedSeconds?: number;
}

export interface BenchOptions {
  /** The signed policy in each slot's flash config (default: the cluster tests' version 3). */
  policyOf?: (slot: number) => object;
}

/** What answers on the servers' port 80: the streaming servers of the failover tests, or nginx. */
export type ServerKind = 'stream' | 'nginx';

export class DpCluster {
  units: ClusterUnit[] = [];
  private streamServers: NamespaceScript[] = [];
  private nginx: NginxServer[] = [];
  private nginx6: NginxServer[] = [];

  private constructor(
    readonly lan: SharedLan,
    private readonly provisioned: Awaited<ReturnType<typeof provisionUnits>>,
    readonly client: NamespaceScript,
    readonly unitOptions: UnitOptions,
  ) {}

  static async create(slots: number[], servers: ServerKind, unitOptions: UnitOptions = {}, benchOptions: BenchOptions = {}): Promise<DpCluster> {
    const lan = await createSharedLan('epcd', unitOptions.delivery, unitOptions.ipv6);
    for (const slot of slots) await lan.addUnit(slot);
    const provisioned = await provisionUnits((slot) => lan.unitAddress(slot), benchOptions.policyOf);
    const client = new NamespaceScript(lan.client, 'stream-client.ts');
    const clientReady = client.once('ready');
    const bench = new DpCluster(lan, provisioned, client, unitOptions);
    if (servers === 'stream') {
      bench.streamServers = lan.servers.map((namespace) => new NamespaceScript(namespace, 'stream-server.ts'));
      await Promise.all(bench.streamServers.map((server) => server.once('ready')));
    } else {
      bench.nginx = await Promise.all(lan.servers.map((namespace, i) => startNginx(namespace, SERVER_IPS[i] as string)));
      if (unitOptions.ipv6) bench.nginx6 = await Promise.all(lan.servers.map((namespace, i) => startNginx(namespace, SERVER_IP6S[i] as string)));
    }
    await clientReady;
    return bench;
  }

  /** Requests the nginx servers answered so far. */
  serverRequests(): number[] {
    return this.nginx.map((server) => server.requests());
  }

  /** Requests the IPv6 nginx servers (ipv6 option) answered so far. */
  serverRequests6(): number[] {
    return this.nginx6.map((server) => server.requests());
  }

  startUnit(slot: number): ClusterUnit {
    const config = this.provisioned.units.good[slot - 1];
    if (!config) throw new Error(`no flash config for slot ${slot}`);
    const unit = new ClusterUnit(config.unitId, this.lan.unitNamespace(slot), { dir: config.dir, address: this.lan.unitAddress(slot), slot, ...this.unitOptions });
    this.units.push(unit);
    return unit;
  }

  slotOf(unit: ClusterUnit): number {
    return Number(unit.unitId.replace('unit-', ''));
  }

  states(list: ClusterUnit[] = this.units.filter((unit) => unit.alive)): Promise<UnitState[]> {
    return Promise.all(list.map((unit) => unit.state()));
  }

  /** Slot `slots[0]` first (it becomes master), then the others; resolves when all replicate to all. */
  async startCluster(slots: number[]): Promise<ClusterUnit[]> {
    const first = this.startUnit(slots[0] as number);
    await waitFor('the first unit is master', async () => (first.events.some((e) => e.kind === 'started') ? (await first.state()).role === 'master' || undefined : undefined), 60_000);
    const list = [first, ...slots.slice(1).map((slot) => this.startUnit(slot))];
    const formed = await this.formed(list, 60_000);
    expect(formed.filter((s) => s.role === 'master')).toHaveLength(1);
    return list;
  }

  /** Waits until every unit of the list is started, counts all of them as members, agrees on one
   * master and replicates to every other. */
  formed(list: ClusterUnit[], timeoutMs: number): Promise<UnitState[]> {
    return waitFor(
      `${list.length} members with one master, replicating to each other`,
      async () => {
        if (!list.every((unit) => unit.events.some((e) => e.kind === 'started'))) return undefined;
        const all = await this.states(list);
        const masters = all.filter((s) => s.role === 'master');
        const agreed = masters.length === 1 && all.every((s) => s.masterId === masters[0]?.masterId);
        return agreed && all.every((s) => s.members.length === list.length && s.replicatingTo.length === list.length - 1) ? all : undefined;
      },
      timeoutMs,
    );
  }

  async openConnections(count: number, list: ClusterUnit[]) {
    const opened = await this.client.ask<{ ports?: number[]; error?: string }>('open', { host: VIP, port: 80, count }, 180_000);
    expect(opened.error).toBeUndefined();
    const ports = opened.ports ?? [];
    expect(ports).toHaveLength(count);
    const workUnits = await this.unitsOf(ports, list);
    // Both directions of every connection are replicated: every unit holds all of them. Each
    // connection's unit has exactly one owner (a unit moving in a rebalance round has none for a
    // moment, so this waits for a state between moves).
    const oneOwner = (all: UnitState[]) => workUnits.every((unit) => all.filter((s) => s.owned.includes(unit)).length === 1);
    const replicated = await waitFor(
      'every connection known to every unit, one owner each',
      async () => {
        const all = await this.states(list);
        return all.every((s) => s.learnedFlows >= 2 * count) && oneOwner(all) ? all : undefined;
      },
      30_000,
    );
    if (this.unitOptions.delivery === 'master-forwarding') {
      // Only the master receives the client's packets: it passes other members' on to them.
      expect(replicated.reduce((sum, s) => sum + s.unitForwarded, 0)).toBeGreaterThan(0);
    } else {
      // Non-owners drop silently (a member's count may still be 0: packets that arrived while it held
      // a unit and were discarded when the unit went to another member are not drops).
      expect(replicated.reduce((sum, s) => sum + (s.drops.foreign_unit ?? 0), 0)).toBeGreaterThan(0);
    }
    console.log(
      `${count} connections: ${list.map((unit, u) => `${unit.unitId} (${replicated[u]?.role}) owns ${replicated[u]?.owned.length} units / ${ports.filter((_, i) => replicated[u]?.owned.includes(workUnits[i] as number)).length} connections, dropped ${replicated[u]?.drops.foreign_unit} foreign, forwarded ${replicated[u]?.unitForwarded}`).join('; ')}; ` +
        `replication batches sent/acked ${replicated.map((s) => `${s.replication.batchesSent}/${s.replication.batchesAcked}`).join(' ')}`,
    );
    return { ports, workUnits, replicated };
  }

  /** The work units of the client's connections from these ports; every unit computes the same. */
  async unitsOf(ports: number[], list: ClusterUnit[]): Promise<number[]> {
    const clients = ports.map((port): [string, number] => [CLIENT_IP, port]);
    const workUnits = await (list[0] as ClusterUnit).unitsOf(clients);
    for (const unit of list.slice(1)) expect(await unit.unitsOf(clients)).toEqual(workUnits);
    return workUnits;
  }

  report(): Promise<ConnectionReport[]> {
    return this.client.ask<ConnectionReport[]>('report');
  }

  /** Marks the start of a disturbance in the client's pause records; returns the streams as they are. */
  async mark(): Promise<Map<number, ConnectionReport>> {
    const before = new Map((await this.report()).map((c) => [c.localPort, c]));
    await this.client.ask('mark');
    return before;
  }

  /** Waits until every connection received at least 4 more chunks than in `before`. */
  async receivingAgain(before: Map<number, ConnectionReport>, what: string, timeoutMs = 60_000): Promise<void> {
    const stalled = (now: ConnectionReport[]) => now.filter((c) => c.received < (before.get(c.localPort)?.received ?? 0) + 4 * CHUNK);
    try {
      await waitFor(what, async () => stalled(await this.report()).length === 0 || undefined, timeoutMs);
    } catch (error) {
      const stuck = stalled(await this.report());
      const survivors = this.units.filter((unit) => unit.alive);
      const stuckUnits = await (survivors[0] as ClusterUnit).unitsOf(stuck.map((c): [string, number] => [CLIENT_IP, c.localPort]));
      console.log(`stalled: ${JSON.stringify(stuck.slice(0, 5))} units ${JSON.stringify(stuckUnits)}`);
      for (const unit of survivors) console.log(`${unit.unitId}: ${JSON.stringify(await unit.state())}\n${JSON.stringify(await unit.view([...new Set(stuckUnits)].slice(0, 10)), null, 1)}`);
      throw error;
    }
  }

  /** Every connection open, never reset, every byte as sent, and moving on since `before`. */
  async expectIntact(before: Map<number, ConnectionReport>): Promise<ConnectionReport[]> {
    const after = await this.report();
    for (const c of after) {
      const was = before.get(c.localPort);
      expect({ port: c.localPort, error: c.error, closed: c.closed, bad: c.bad }).toEqual({ port: c.localPort, error: undefined, closed: false, bad: false });
      expect(c.received).toBeGreaterThan((was?.received ?? 0) + 4 * CHUNK);
    }
    console.log(`streams: ${after.length} connections intact, no reset; ${after.reduce((sum, c) => sum + c.received, 0)} bytes received and checked, ${after.reduce((sum, c) => sum + c.sent, 0)} sent and checked by the servers`);
    return after;
  }

  async stopAll(): Promise<void> {
    await this.client.ask('close', {}, 15_000).catch(() => undefined);
    await Promise.all(this.units.map((unit) => unit.stop()));
    this.units = [];
  }

  async destroy(): Promise<void> {
    await this.stopAll();
    this.client.kill();
    for (const server of this.streamServers) server.kill();
    await Promise.all([...this.nginx, ...this.nginx6].map((server) => server.stop()));
    await this.lan.destroy();
    await this.provisioned.cleanup();
  }
}

export function ownedPorts(state: UnitState, ports: number[], workUnits: number[]): number[] {
  return ports.filter((_, i) => state.owned.includes(workUnits[i] as number));
}

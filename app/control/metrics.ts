/* Prometheus exposition of the data plane's counters. The workers keep per-lcore counters that the
 * native side sums on read; a scrape takes one snapshot (update) and publishes it, so all series of
 * one scrape come from the same instant. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { DataplaneStats } from '../../firmware/dataplane.js';

/** Turns the numeric ids the data plane uses into the names the configuration uses. */
export interface MetricNames {
  portDevice(id: number): string;
  serviceName(id: number): string;
}

type Labels<L extends string> = Record<L, string>;

/** A data plane counter as a Prometheus counter: replaced, not incremented, by each snapshot. */
class MirroredCounter<L extends string> {
  readonly #counter: Counter<L>;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    this.#counter = new Counter({ name, help, labelNames, registers: [registry] });
  }

  publish(rows: [Labels<L>, number][]): void {
    this.#counter.reset();
    for (const [labels, value] of rows) this.#counter.inc(labels, value);
  }
}

export class DataplaneMetrics {
  readonly registry = new Registry();
  readonly #names: MetricNames;
  readonly #port = new Map<keyof DataplaneStats['ports'][number], MirroredCounter<'port'>>();
  readonly #lcore = new Map<keyof DataplaneStats['lcores'][number], MirroredCounter<'lcore'>>();
  readonly #actions: MirroredCounter<'action'>;
  readonly #drops: MirroredCounter<'reason'>;
  readonly #lookups: MirroredCounter<'result'>;
  readonly #flows: Gauge<'origin'>;
  readonly #flowEvents: MirroredCounter<'event'>;
  readonly #punted: MirroredCounter<never>;
  readonly #injected: MirroredCounter<never>;
  readonly #unitForwarded: MirroredCounter<never>;
  readonly #server = new Map<'flows' | 'packets' | 'bytes', MirroredCounter<'service' | 'server'>>();

  constructor(names: MetricNames) {
    this.#names = names;
    const r = this.registry;
    const portCounters = {
      rxPackets: 'edgeplane_port_rx_packets_total',
      rxBytes: 'edgeplane_port_rx_bytes_total',
      txPackets: 'edgeplane_port_tx_packets_total',
      txBytes: 'edgeplane_port_tx_bytes_total',
      rxMissed: 'edgeplane_port_rx_missed_total',
      rxErrors: 'edgeplane_port_rx_errors_total',
      txErrors: 'edgeplane_port_tx_errors_total',
    } as const;
    for (const [field, name] of Object.entries(portCounters) as [keyof typeof portCounters, string][]) {
      this.#port.set(field, new MirroredCounter(r, name, `Port ${field} as counted by the DPDK driver`, ['port']));
    }
    const lcoreCounters = {
      rxPackets: 'edgeplane_lcore_rx_packets_total',
      rxBytes: 'edgeplane_lcore_rx_bytes_total',
      txPackets: 'edgeplane_lcore_tx_packets_total',
      txBytes: 'edgeplane_lcore_tx_bytes_total',
      busyPolls: 'edgeplane_lcore_busy_polls_total',
      idlePolls: 'edgeplane_lcore_idle_polls_total',
    } as const;
    for (const [field, name] of Object.entries(lcoreCounters) as [keyof typeof lcoreCounters, string][]) {
      this.#lcore.set(field, new MirroredCounter(r, name, `Worker lcore ${field}`, ['lcore']));
    }
    this.#actions = new MirroredCounter(r, 'edgeplane_actions_total', 'Packets by the action applied', ['action']);
    this.#drops = new MirroredCounter(r, 'edgeplane_drops_total', 'Dropped packets by reason', ['reason']);
    this.#lookups = new MirroredCounter(r, 'edgeplane_lookups_total', 'Affinity lookups by result', ['result']);
    this.#flows = new Gauge({
      name: 'edgeplane_flows',
      help: 'Affinities installed now, by origin (manager-installed or learned by workers)',
      labelNames: ['origin'],
      registers: [r],
    });
    this.#flowEvents = new MirroredCounter(r, 'edgeplane_flow_events_total', 'Learned flows created and expired', [
      'event',
    ]);
    this.#punted = new MirroredCounter(r, 'edgeplane_punted_packets_total', 'Packets sent up to the control application', []);
    this.#injected = new MirroredCounter(r, 'edgeplane_injected_packets_total', 'Packets the control application sent out', []);
    this.#unitForwarded = new MirroredCounter(r, 'edgeplane_cluster_forwarded_packets_total', 'Packets of other members\' work units this master passed on to them (forwarding delivery)', []);
    for (const field of ['flows', 'packets', 'bytes'] as const) {
      this.#server.set(
        field,
        new MirroredCounter(r, `edgeplane_server_${field}_total`, `Per-server ${field} of a virtual service`, [
          'service',
          'server',
        ]),
      );
    }
  }

  update(stats: DataplaneStats): void {
    for (const [field, counter] of this.#port) {
      counter.publish(stats.ports.map((p) => [{ port: this.#names.portDevice(p.id) }, p[field]]));
    }
    for (const [field, counter] of this.#lcore) {
      counter.publish(stats.lcores.map((l) => [{ lcore: String(l.lcore) }, l[field]]));
    }
    this.#actions.publish(Object.entries(stats.actions).map(([action, n]) => [{ action }, n]));
    this.#drops.publish(Object.entries(stats.drops).map(([reason, n]) => [{ reason }, n]));
    const { managerHits, learnedHits, wildcardHits, misses } = stats.lookups;
    this.#lookups.publish([
      [{ result: 'manager_hit' }, managerHits],
      [{ result: 'learned_hit' }, learnedHits],
      [{ result: 'wildcard_hit' }, wildcardHits],
      [{ result: 'miss' }, misses],
    ]);
    this.#flows.set({ origin: 'manager' }, stats.flows.manager);
    this.#flows.set({ origin: 'learned' }, stats.flows.learned);
    this.#flowEvents.publish([
      [{ event: 'created' }, stats.flows.created],
      [{ event: 'expired' }, stats.flows.expired],
    ]);
    this.#punted.publish([[{}, stats.punted]]);
    this.#injected.publish([[{}, stats.injected]]);
    this.#unitForwarded.publish([[{}, stats.unitForwarded]]);
    for (const [field, counter] of this.#server) {
      counter.publish(
        stats.servers.map((s) => [
          { service: this.#names.serviceName(s.serviceId), server: `${s.ip}:${s.port}` },
          s[field],
        ]),
      );
    }
  }
}

import { describe, expect, it } from 'vitest';
import type { DataplaneStats } from '../../firmware/dataplane.js';
import { DataplaneMetrics } from './metrics.js';

function snapshot(scale: number): DataplaneStats {
  return {
    ports: [
      { id: 0, rxPackets: 10 * scale, rxBytes: 1000 * scale, txPackets: 9 * scale, txBytes: 900 * scale, rxMissed: 0, rxErrors: 0, txErrors: 0 },
      { id: 1, rxPackets: 8 * scale, rxBytes: 800 * scale, txPackets: 7 * scale, txBytes: 700 * scale, rxMissed: 1, rxErrors: 2, txErrors: 3 },
    ],
    lcores: [{ lcore: 1, rxPackets: 18 * scale, rxBytes: 1800 * scale, txPackets: 16 * scale, txBytes: 1600 * scale, busyPolls: 5, idlePolls: 500 }],
    actions: { forward: 1, drop: 2, punt: 0, service: 15 * scale, local: 4 },
    drops: { no_route: 2, bad_checksum: 0 },
    lookups: { managerHits: 0, learnedHits: 14 * scale, wildcardHits: 2, misses: 3 },
    flows: { manager: 0, learned: 2, created: 2, expired: 0 },
    punted: 0,
    injected: 6,
    unitForwarded: 9,
    servers: [
      { serviceId: 1, ip: '10.0.2.11', port: 80, flows: 1, packets: 7 * scale, bytes: 700 * scale },
      { serviceId: 1, ip: '10.0.2.12', port: 80, flows: 1, packets: 8 * scale, bytes: 800 * scale },
    ],
  };
}

const names = {
  portDevice: (id: number) => `net_af_packet${id}`,
  serviceName: (id: number) => (id === 1 ? 'web' : `service-${id}`),
};

describe('DataplaneMetrics', () => {
  it('publishes every counter of a snapshot under configured names', async () => {
    const metrics = new DataplaneMetrics(names);
    metrics.update(snapshot(1));
    const text = await metrics.registry.metrics();
    const lines = text.split('\n');
    for (const expected of [
      'edgeplane_port_rx_packets_total{port="net_af_packet0"} 10',
      'edgeplane_port_tx_bytes_total{port="net_af_packet1"} 700',
      'edgeplane_port_tx_errors_total{port="net_af_packet1"} 3',
      'edgeplane_lcore_idle_polls_total{lcore="1"} 500',
      'edgeplane_actions_total{action="service"} 15',
      'edgeplane_drops_total{reason="no_route"} 2',
      'edgeplane_drops_total{reason="bad_checksum"} 0',
      'edgeplane_lookups_total{result="learned_hit"} 14',
      'edgeplane_flows{origin="learned"} 2',
      'edgeplane_flow_events_total{event="created"} 2',
      'edgeplane_injected_packets_total 6',
      'edgeplane_cluster_forwarded_packets_total 9',
      'edgeplane_server_flows_total{service="web",server="10.0.2.12:80"} 1',
      'edgeplane_server_bytes_total{service="web",server="10.0.2.11:80"} 700',
    ]) {
      expect(lines).toContain(expected);
    }
    expect(lines).toContain('# TYPE edgeplane_port_rx_packets_total counter');
    expect(lines).toContain('# TYPE edgeplane_flows gauge');
  });

  it('replaces values on each snapshot instead of adding them up', async () => {
    const metrics = new DataplaneMetrics(names);
    metrics.update(snapshot(1));
    metrics.update(snapshot(3));
    const lines = (await metrics.registry.metrics()).split('\n');
    expect(lines).toContain('edgeplane_port_rx_packets_total{port="net_af_packet0"} 30');
    expect(lines).toContain('edgeplane_server_packets_total{service="web",server="10.0.2.12:80"} 24');
  });
});

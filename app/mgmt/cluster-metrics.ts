/* Prometheus gauges of a cluster member, next to its data plane counters: its role, the members it
 * knows, the work units it owns and those nobody owns yet, and how long ago it last heard each
 * member it watches. Read from the cluster control plane at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import type { ClusterSource } from './cluster-source.js';

const ROLES = ['discovering', 'offering', 'joining', 'member', 'master', 'refused', 'stopped'];

export function registerClusterMetrics(registry: Registry, cluster: ClusterSource): void {
  new Gauge({
    name: 'edgeplane_cluster_role',
    help: "1 for this unit's cluster role, 0 for the others",
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const role = cluster.role();
      for (const name of ROLES) this.set({ role: name }, name === role ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgeplane_cluster_members',
    help: 'Members of the cluster as this unit knows them, itself included',
    registers: [registry],
    collect() {
      this.set(cluster.members().length);
    },
  });
  new Gauge({
    name: 'edgeplane_cluster_owned_work_units',
    help: 'Work units this unit owns (of 1024)',
    registers: [registry],
    collect() {
      this.set(cluster.owners().filter((owner) => owner === cluster.unitId).length);
    },
  });
  new Gauge({
    name: 'edgeplane_cluster_unassigned_work_units',
    help: 'Work units nobody owns yet, as this unit knows it',
    registers: [registry],
    collect() {
      this.set(cluster.owners().filter((owner) => owner === null).length);
    },
  });
  new Gauge({
    name: 'edgeplane_cluster_keepalive_age_seconds',
    help: 'Since this unit last heard a member it watches (the master watches all, a member the master)',
    labelNames: ['member'],
    registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const [member, at] of cluster.lastHeard()) this.set({ member }, (now - at) / 1000);
    },
  });
}
